//! DTMF reception three ways: RFC 4733 telephone-events, SIP INFO bodies
//! (`application/dtmf-relay`, `application/dtmf`), and in-band tones (see
//! [`super::goertzel`]). Pure: packets in, at most one digit per key press out.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

/// A DTMF key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Digit(pub char);

impl Digit {
    /// RFC 4733 §3.2 event codes 0–15.
    pub fn from_event(code: u8) -> Option<Digit> {
        const KEYS: &[u8; 16] = b"0123456789*#ABCD";
        KEYS.get(code as usize).map(|c| Digit(*c as char))
    }

    pub fn to_event(self) -> Option<u8> {
        b"0123456789*#ABCD"
            .iter()
            .position(|c| *c as char == self.0.to_ascii_uppercase())
            .map(|p| p as u8)
    }

    pub fn from_char(c: char) -> Option<Digit> {
        let c = c.to_ascii_uppercase();
        "0123456789*#ABCD".contains(c).then_some(Digit(c))
    }
}

/// One RFC 4733 §2.3 event payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let [event, flags, d0, d1, ..] = *payload else {
            return None;
        };
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3F,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    pub fn write(&self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [
            self.event,
            (if self.end { 0x80 } else { 0 }) | (self.volume & 0x3F),
            d[0],
            d[1],
        ]
    }
}

/// Turns a stream of RFC 4733 packets into key presses. An event is identified
/// by its RTP timestamp (RFC 4733 §2.5.1.2: all packets of one event share the
/// event's start timestamp), so repeated start/update packets and the three end
/// packets of one press yield one digit, and a press whose first packets were
/// lost is still reported once, from whichever packet arrives first.
#[derive(Debug, Default)]
pub struct EventReceiver {
    /// (timestamp, event code) of recent events: a small ring so that a late
    /// retransmitted end packet of an earlier press is not taken for a new one.
    recent: [Option<(u32, u8)>; 4],
    next: usize,
}

impl EventReceiver {
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<Digit> {
        let ev = TelephoneEvent::parse(payload)?;
        let digit = Digit::from_event(ev.event)?;
        let key = (timestamp, ev.event);
        if self.recent.contains(&Some(key)) {
            return None;
        }
        if let Some(slot) = self.recent.get_mut(self.next) {
            *slot = Some(key);
        }
        self.next = self
            .next
            .wrapping_add(1)
            .checked_rem(self.recent.len())
            .unwrap_or(0);
        Some(digit)
    }
}

/// Reads the digit of a SIP INFO body: `application/dtmf-relay` (`Signal=5`)
/// or `application/dtmf` (`5`).
pub fn parse_info_body(content_type: &str, body: &[u8]) -> Option<Digit> {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    match ct.as_str() {
        "application/dtmf-relay" => text.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            if k.trim().eq_ignore_ascii_case("signal") {
                parse_key(v.trim())
            } else {
                None
            }
        }),
        "application/dtmf" => parse_key(text.trim()),
        _ => None,
    }
}

fn parse_key(v: &str) -> Option<Digit> {
    let mut chars = v.chars();
    let c = chars.next()?;
    if chars.next().is_none() {
        return Digit::from_char(c);
    }
    // Some phones send the event code ("10" for '*', "11" for '#').
    v.parse::<u8>().ok().and_then(Digit::from_event)
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .write()
    }

    #[test]
    fn one_digit_per_press_with_repeats_and_three_ends() {
        let mut r = EventReceiver::default();
        let mut got = vec![];
        // Press 5: three start packets (marker retransmits), updates, three ends.
        for (d, end) in [
            (0, false),
            (0, false),
            (0, false),
            (160, false),
            (320, false),
            (480, true),
            (480, true),
            (480, true),
        ] {
            got.extend(r.on_packet(1000, &pkt(5, end, d)));
        }
        // Press 5 again: a new event has a new timestamp.
        for (d, end) in [(160, false), (320, true), (320, true), (320, true)] {
            got.extend(r.on_packet(2000, &pkt(5, end, d)));
        }
        assert_eq!(got, vec![Digit('5'), Digit('5')]);
    }

    #[test]
    fn lost_start_packets_and_late_ends() {
        let mut r = EventReceiver::default();
        // Only end packets arrive for '#'.
        assert_eq!(r.on_packet(500, &pkt(11, true, 800)), Some(Digit('#')));
        assert_eq!(r.on_packet(500, &pkt(11, true, 800)), None);
        // Next press '1', then a late retransmitted end of '#'.
        assert_eq!(r.on_packet(900, &pkt(1, false, 0)), Some(Digit('1')));
        assert_eq!(r.on_packet(500, &pkt(11, true, 800)), None);
        // Garbage and unknown events give nothing.
        assert_eq!(r.on_packet(1200, &[1, 2]), None);
        assert_eq!(r.on_packet(1300, &pkt(200, false, 0)), None);
    }

    #[test]
    fn info_bodies() {
        assert_eq!(
            parse_info_body("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"),
            Some(Digit('5'))
        );
        assert_eq!(
            parse_info_body("application/dtmf-relay", b"Signal= #\r\n"),
            Some(Digit('#'))
        );
        assert_eq!(parse_info_body("Application/DTMF", b"7"), Some(Digit('7')));
        assert_eq!(parse_info_body("application/dtmf", b"11"), Some(Digit('#')));
        assert_eq!(parse_info_body("text/plain", b"7"), None);
        assert_eq!(
            parse_info_body("application/dtmf-relay", b"Duration=160"),
            None
        );
    }
}
