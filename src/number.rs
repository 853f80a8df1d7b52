//! Phone numbers in E.164 (`+46701234567`), the one form the customer store
//! keys on. Callers arrive as `0701234567`, `+46 70-123 45 67`,
//! `0046701234567` or `46701234567` depending on the trunk; all become the same
//! key. Pure.

/// Normalises `raw` (a SIP user part or a CSV cell) with the default country
/// calling code `cc` (`46`). `None` when it is not a phone number.
pub fn e164(raw: &str, cc: &str) -> Option<String> {
    let raw = raw.trim();
    // A SIP user part may carry parameters (`;phone-context=…`).
    let raw = raw.split(';').next().unwrap_or("");
    let plus = raw.starts_with('+');
    let mut digits = String::with_capacity(raw.len());
    for c in raw.chars().skip(usize::from(plus)) {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '(' | ')' | '.' | '/' => {}
            _ => return None,
        }
    }
    let full = if plus {
        digits
    } else if let Some(intl) = digits.strip_prefix("00") {
        intl.to_string()
    } else if let Some(national) = digits.strip_prefix('0') {
        format!("{cc}{national}")
    } else if digits.starts_with(cc) && digits.len() >= 10 {
        digits
    } else {
        return None;
    };
    // E.164: at most 15 digits; shorter than 8 is no subscriber number.
    (8..=15).contains(&full.len()).then(|| format!("+{full}"))
}

#[cfg(test)]
mod tests {
    use super::e164;

    #[test]
    fn the_same_caller_in_every_spelling() {
        for raw in [
            "0701234567",
            "070-123 45 67",
            "+46701234567",
            "+46 70 123 45 67",
            "0046701234567",
            "46701234567",
            "+46701234567;phone-context=example.com",
        ] {
            assert_eq!(e164(raw, "46").as_deref(), Some("+46701234567"), "{raw}");
        }
        assert_eq!(e164("+4520123456", "46").as_deref(), Some("+4520123456"));
        assert_eq!(e164("alice", "46"), None);
        assert_eq!(e164("112", "46"), None);
        assert_eq!(e164("", "46"), None);
        assert_eq!(e164("+1234567890123456", "46"), None);
    }
}
