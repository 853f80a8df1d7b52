//! Opening hours and holidays, evaluated at a civil date and time in the
//! flow's time zone. The Swedish public holidays (`"se"`) are computed, Easter
//! included, so no yearly list needs keeping. Pure: the time is a parameter.

use super::model::Hours;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::ToSpan;

/// One open interval within a day, minutes after midnight, end exclusive.
pub type Range = (u32, u32);

/// Parses `"08:00-12:00,13:00-22:00"` (`""` is closed all day; `24:00` ends a day).
pub fn parse_ranges(s: &str) -> Result<Vec<Range>, String> {
    let s = s.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("closed") {
        return Ok(vec![]);
    }
    s.split(',')
        .map(|part| {
            let (a, b) = part
                .trim()
                .split_once('-')
                .ok_or_else(|| format!("\"{part}\" is not a range like 08:00-22:00"))?;
            let (a, b) = (parse_hhmm(a)?, parse_hhmm(b)?);
            if a >= b {
                return Err(format!("\"{part}\" ends before it starts"));
            }
            Ok((a, b))
        })
        .collect()
}

/// Minutes after midnight for `HH:MM` (or `HH`), up to 24:00.
pub fn parse_hhmm(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (h, m) = s.split_once(':').unwrap_or((s, "0"));
    let h: u32 = h.parse().map_err(|_| format!("\"{s}\" is not a time"))?;
    let m: u32 = m.parse().map_err(|_| format!("\"{s}\" is not a time"))?;
    if h > 24 || m > 59 || (h == 24 && m > 0) {
        return Err(format!("\"{s}\" is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// Parses a weekday name (`mon`, `måndag`, `monday`, …).
pub fn parse_weekday(s: &str) -> Option<Weekday> {
    let s = s.to_lowercase();
    let w = match s.get(..3)? {
        "mon" | "mån" => Weekday::Monday,
        "tue" | "tis" => Weekday::Tuesday,
        "wed" | "ons" => Weekday::Wednesday,
        "thu" | "tor" => Weekday::Thursday,
        "fri" | "fre" => Weekday::Friday,
        "sat" | "lör" => Weekday::Saturday,
        "sun" | "sön" => Weekday::Sunday,
        _ => return None,
    };
    Some(w)
}

impl Hours {
    fn day(&self, w: Weekday) -> &str {
        match w {
            Weekday::Monday => &self.mon,
            Weekday::Tuesday => &self.tue,
            Weekday::Wednesday => &self.wed,
            Weekday::Thursday => &self.thu,
            Weekday::Friday => &self.fri,
            Weekday::Saturday => &self.sat,
            Weekday::Sunday => &self.sun,
        }
    }

    /// Every problem in the hours, for the validator.
    pub fn problems(&self) -> Vec<String> {
        let mut out = vec![];
        for (name, s) in [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
            ("holiday_hours", &self.holiday_hours),
        ] {
            if let Err(e) = parse_ranges(s) {
                out.push(format!("{name}: {e}"));
            }
        }
        for h in &self.holidays {
            if h != "se" && h.parse::<Date>().is_err() {
                out.push(format!(
                    "holidays: \"{h}\" is neither a calendar (\"se\") nor a date (2026-12-24)"
                ));
            }
        }
        out
    }

    pub fn is_holiday(&self, date: Date) -> bool {
        self.holidays.iter().any(|h| match h.as_str() {
            "se" => swedish_holiday(date).is_some(),
            d => d.parse::<Date>().is_ok_and(|d| d == date),
        })
    }

    /// Whether these hours are open at a local date and time.
    pub fn is_open(&self, at: DateTime) -> bool {
        let spec = if self.is_holiday(at.date()) {
            &self.holiday_hours
        } else {
            self.day(at.weekday())
        };
        let minute = at.hour() as u32 * 60 + at.minute() as u32;
        parse_ranges(spec)
            .unwrap_or_default()
            .iter()
            .any(|(a, b)| (*a..*b).contains(&minute))
    }
}

/// Whether a local time falls within `HH:MM-HH:MM`.
pub fn time_within(spec: &str, t: Time) -> bool {
    let minute = t.hour() as u32 * 60 + t.minute() as u32;
    parse_ranges(spec)
        .unwrap_or_default()
        .iter()
        .any(|(a, b)| (*a..*b).contains(&minute))
}

/// Easter Sunday (the anonymous Gregorian algorithm).
fn easter(year: i16) -> Date {
    let y = year as i32;
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, month as i8, day as i8).expect("Easter is a valid date")
}

/// The Swedish name of a public holiday (or de facto closed day: Midsummer
/// Eve, Christmas Eve, New Year's Eve) on `date`, if it is one.
pub fn swedish_holiday(date: Date) -> Option<&'static str> {
    let y = date.year();
    let (m, d) = (date.month(), date.day());
    let fixed = match (m, d) {
        (1, 1) => Some("nyårsdagen"),
        (1, 6) => Some("trettondedag jul"),
        (5, 1) => Some("första maj"),
        (6, 6) => Some("nationaldagen"),
        (12, 24) => Some("julafton"),
        (12, 25) => Some("juldagen"),
        (12, 26) => Some("annandag jul"),
        (12, 31) => Some("nyårsafton"),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    let e = easter(y);
    let moving = [
        (-2, "långfredagen"),
        (0, "påskdagen"),
        (1, "annandag påsk"),
        (39, "kristi himmelsfärdsdag"),
        (49, "pingstdagen"),
    ];
    for (offset, name) in moving {
        if e.checked_add(offset.days()).ok() == Some(date) {
            return Some(name);
        }
    }
    // Midsummer Eve: the Friday from 19 to 25 June; Midsummer Day the Saturday after.
    if m == 6 && (19..=25).contains(&d) && date.weekday() == Weekday::Friday {
        return Some("midsommarafton");
    }
    if m == 6 && (20..=26).contains(&d) && date.weekday() == Weekday::Saturday {
        return Some("midsommardagen");
    }
    // All Saints' Day: the Saturday from 31 October to 6 November.
    if ((m == 10 && d == 31) || (m == 11 && d <= 6)) && date.weekday() == Weekday::Saturday {
        return Some("alla helgons dag");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn swedish_holidays_2026_and_2027() {
        assert_eq!(easter(2026), date(2026, 4, 5));
        assert_eq!(easter(2027), date(2027, 3, 28));
        assert_eq!(swedish_holiday(date(2026, 4, 3)), Some("långfredagen"));
        assert_eq!(
            swedish_holiday(date(2026, 5, 14)),
            Some("kristi himmelsfärdsdag")
        );
        assert_eq!(swedish_holiday(date(2026, 6, 19)), Some("midsommarafton"));
        assert_eq!(
            swedish_holiday(date(2026, 10, 31)),
            Some("alla helgons dag")
        );
        assert_eq!(swedish_holiday(date(2027, 11, 6)), Some("alla helgons dag"));
        assert_eq!(swedish_holiday(date(2026, 12, 24)), Some("julafton"));
        assert_eq!(swedish_holiday(date(2026, 11, 24)), None);
        assert_eq!(swedish_holiday(date(2026, 6, 26)), None);
    }

    #[test]
    fn open_hours_with_sunday_evening_and_holidays() {
        let h = Hours {
            mon: "08:00-22:00".into(),
            sun: "10:00-14:00, 18:00-22:00".into(),
            holidays: vec!["se".into(), "2026-11-25".into()],
            holiday_hours: "10:00-16:00".into(),
            ..Hours::default()
        };
        assert!(h.problems().is_empty());
        // 2026-11-23 is a Monday, 2026-11-29 a Sunday.
        assert!(h.is_open(date(2026, 11, 23).at(8, 0, 0, 0)));
        assert!(!h.is_open(date(2026, 11, 23).at(22, 0, 0, 0)));
        assert!(!h.is_open(date(2026, 11, 29).at(15, 0, 0, 0)));
        assert!(h.is_open(date(2026, 11, 29).at(21, 30, 0, 0)));
        assert!(
            !h.is_open(date(2026, 11, 24).at(12, 0, 0, 0)),
            "Tuesday closed"
        );
        assert!(
            h.is_open(date(2026, 11, 25).at(12, 0, 0, 0)),
            "explicit date"
        );
        assert!(!h.is_open(date(2026, 12, 24).at(21, 30, 0, 0)), "julafton");
        assert!(h.is_open(date(2026, 12, 24).at(11, 0, 0, 0)));
        let bad = Hours {
            mon: "22-08".into(),
            tue: "8:00".into(),
            holidays: vec!["xx".into()],
            ..Hours::default()
        };
        assert_eq!(bad.problems().len(), 3);
    }
}
