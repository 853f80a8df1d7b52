//! `say` steps: a value read out as prompt names (`digit-4`, `num-40`,
//! `num-2`), which the interpreter plays in the caller's language. Pure.

use super::model::SayKind;

/// The prompts (per-language names) that read out a value.
pub fn say(what: SayKind, value: &str) -> Vec<String> {
    match what {
        SayKind::Digits => value
            .chars()
            .filter_map(|c| match c {
                '0'..='9' => Some(format!("digit-{c}")),
                '*' => Some("digit-star".into()),
                '#' => Some("digit-hash".into()),
                _ => None,
            })
            .collect(),
        SayKind::Number => match value.trim().parse::<u32>() {
            Ok(n) if n < 1_000_000 => number(n),
            _ => say(SayKind::Digits, value),
        },
        SayKind::Time => {
            let (h, m) = value.split_once(':').unwrap_or((value, "0"));
            let (Ok(h), Ok(m)) = (h.trim().parse::<u32>(), m.trim().parse::<u32>()) else {
                return vec![];
            };
            let mut out = number(h);
            if m > 0 {
                if m < 10 {
                    out.push("num-0".into());
                }
                out.extend(number(m));
            }
            out
        }
    }
}

/// Number words as prompt names: `num-0`…`num-19`, tens, `num-100`, `num-1000`.
fn number(n: u32) -> Vec<String> {
    let mut out = vec![];
    if n >= 1000 {
        if n / 1000 > 1 {
            out.extend(number(n / 1000));
        }
        out.push("num-1000".into());
        if n.is_multiple_of(1000) {
            return out;
        }
    }
    let n = n % 1000;
    if n >= 100 {
        if n / 100 > 1 {
            out.push(format!("num-{}", n / 100));
        }
        out.push("num-100".into());
        if n.is_multiple_of(100) {
            return out;
        }
    }
    let n = n % 100;
    if n < 20 {
        if n > 0 || out.is_empty() {
            out.push(format!("num-{n}"));
        }
    } else {
        out.push(format!("num-{}", n / 10 * 10));
        if !n.is_multiple_of(10) {
            out.push(format!("num-{}", n % 10));
        }
    }
    out
}

/// Every prompt name `say` can use (for the validator).
pub fn say_prompts() -> Vec<String> {
    let mut v: Vec<String> = (0..20).map(|n| format!("num-{n}")).collect();
    v.extend((2..10).map(|t| format!("num-{}", t * 10)));
    v.push("num-100".into());
    v.push("num-1000".into());
    v.extend((0..10).map(|d| format!("digit-{d}")));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_out() {
        assert_eq!(number(0), vec!["num-0"]);
        assert_eq!(number(42), vec!["num-40", "num-2"]);
        assert_eq!(number(115), vec!["num-100", "num-15"]);
        assert_eq!(number(2300), vec!["num-2", "num-1000", "num-3", "num-100"]);
        assert_eq!(
            say(SayKind::Time, "14:05"),
            vec!["num-14", "num-0", "num-5"]
        );
        assert_eq!(
            say(SayKind::Digits, "4#2"),
            vec!["digit-4", "digit-hash", "digit-2"]
        );
    }
}
