//! `vaxel customers import FILE.csv`: a header row names the columns
//! (`number` required; `name`, `language`, `tier`, `value`, `notes`
//! optional, in any order). Good rows are kept, bad rows are reported by line
//! and skipped. Parsing is pure; [`import`] writes through the store.

use super::{Store, StoreError};
use std::path::Path;

/// One customer as imported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CustomerRow {
    pub number: String,
    pub name: Option<String>,
    pub language: Option<String>,
    pub tier: Option<String>,
    pub value: Option<i64>,
    pub notes: Option<String>,
}

/// Parses CSV text: the good rows, and `line: reason` for each bad one.
pub fn parse(text: &str, country_code: &str) -> (Vec<CustomerRow>, Vec<(u64, String)>) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = vec![];
    let mut bad = vec![];
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect(),
        Err(e) => return (rows, vec![(1, format!("cannot read the header row: {e}"))]),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let Some(number_col) = col("number") else {
        return (
            rows,
            vec![(1, "the header row has no \"number\" column".into())],
        );
    };
    for h in &headers {
        if !["number", "name", "language", "tier", "value", "notes"].contains(&h.as_str()) {
            bad.push((
                1,
                format!("unknown column \"{h}\" (number, name, language, tier, value, notes)"),
            ));
        }
    }
    let (name, lang, tier, value, notes) = (
        col("name"),
        col("language"),
        col("tier"),
        col("value"),
        col("notes"),
    );
    for rec in rdr.records() {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad.push((line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: Option<usize>| {
            i.and_then(|i| rec.get(i))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let raw = rec.get(number_col).unwrap_or("");
        let Some(number) = crate::number::e164(raw, country_code) else {
            bad.push((line, format!("\"{raw}\" is not a phone number")));
            continue;
        };
        let language = field(lang).map(|l| l.to_ascii_lowercase());
        if let Some(l) = &language {
            if l.len() != 2 || !l.chars().all(|c| c.is_ascii_lowercase()) {
                bad.push((
                    line,
                    format!("language \"{l}\" is not a two-letter code (sv, en)"),
                ));
                continue;
            }
        }
        let value = match field(value).map(|v| v.parse::<i64>()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => {
                bad.push((
                    line,
                    format!(
                        "value \"{}\" is not a whole number",
                        field(value).unwrap_or_default()
                    ),
                ));
                continue;
            }
        };
        rows.push(CustomerRow {
            number,
            name: field(name),
            language,
            tier: field(tier).map(|t| t.to_ascii_lowercase()),
            value,
            notes: field(notes),
        });
    }
    (rows, bad)
}

/// Imports a CSV file; returns how many rows were kept and the bad ones.
pub async fn import(
    store: &Store,
    path: &Path,
    country_code: &str,
    now: jiff::Timestamp,
) -> Result<(usize, Vec<(u64, String)>), StoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| StoreError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let (rows, bad) = parse(&text, country_code);
    for r in &rows {
        store.upsert_customer(r, now).await?;
    }
    Ok((rows.len(), bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_rows_kept_bad_rows_reported_by_line() {
        let text = "number,name,language,tier,value\n\
                    070-123 45 67,Anna Svensson,sv,gold,12000\n\
                    not-a-number,Bo,sv,,\n\
                    +4520123456,Mette,dansk,,\n\
                    0031612345678,Joost,en,silver,abc\n\
                    08-123 456 78,Nordkorgen AB,,,\n";
        let (rows, bad) = parse(text, "46");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].number, "+46701234567");
        assert_eq!(rows[0].tier.as_deref(), Some("gold"));
        assert_eq!(rows[0].value, Some(12000));
        assert_eq!(rows[1].number, "+46812345678");
        let lines: Vec<u64> = bad.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, vec![3, 4, 5], "{bad:?}");
        assert!(bad[1].1.contains("two-letter"));
    }

    #[test]
    fn a_file_without_a_number_column_is_refused() {
        let (rows, bad) = parse("name\nAnna\n", "46");
        assert!(rows.is_empty());
        assert_eq!(bad[0].0, 1);
    }
}
