//! One direction of a bridged call's media: RTP from one leg rewritten for the
//! other (RFC 3550 §5.1, §8.2; RFC 3551; RFC 4733 §2.3).
//!
//! The far side must see one continuous stream across the switch from hold
//! music to the agent's voice (and across an SSRC change on the sending side):
//! the relay sends with the receiving leg's own SSRC and carries on its
//! sequence numbers and timestamps from where that leg's player stopped
//! ([`StreamPosition`]), with the marker bit set on the first packet of each
//! talk spurt it splices in. When the legs negotiated different G.711 laws the
//! payload is transcoded (μ-law ↔ A-law through linear); telephone events are
//! passed through with the receiving leg's payload type, and dropped when that
//! leg negotiated none. Everything else (other payload types, RTCP, CSRC lists
//! and header extensions) is not forwarded.
//!
//! Pure: bytes in, bytes out; the leg's [`MediaSession`] guards who may send.
//!
//! [`MediaSession`]: super::session::MediaSession

use super::g711::Codec;

/// Where a leg's outgoing stream stands: its SSRC and the sequence number and
/// timestamp its next packet takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamPosition {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
}

/// What a leg negotiated, as the relay needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegFormat {
    pub codec: Codec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
}

#[derive(Clone, Debug)]
pub struct Relay {
    from: LegFormat,
    to: LegFormat,
    ssrc: u32,
    /// The SSRC arriving now, and the offsets that map it onto the output.
    source: Option<(u32, u16, u32)>,
    /// The next output sequence number and timestamp (continuity on a switch).
    next: (u16, u32),
    pub forwarded: u64,
    /// Packets not forwarded (unknown payload type, no event type on the far side).
    pub dropped: u64,
}

/// RTP header without CSRCs or extension.
const HEADER: usize = 12;

impl Relay {
    /// A relay from a leg sending `from` to a leg receiving `to`, whose stream
    /// carries on at `at`.
    pub fn new(from: LegFormat, to: LegFormat, at: StreamPosition) -> Relay {
        Relay {
            from,
            to,
            ssrc: at.ssrc,
            source: None,
            next: (at.seq, at.timestamp),
            forwarded: 0,
            dropped: 0,
        }
    }

    /// Where the output stream stands (to hand back to the leg's player).
    pub fn position(&self) -> StreamPosition {
        StreamPosition {
            ssrc: self.ssrc,
            seq: self.next.0,
            timestamp: self.next.1,
        }
    }

    /// Rewrites one packet into `out`; `false` when it is not to be forwarded.
    pub fn forward(&mut self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let Ok(rtp) = rtp_rs::RtpReader::new(data) else {
            self.dropped += 1;
            return false;
        };
        let pt = rtp.payload_type();
        let (out_pt, audio) = if pt == self.from.payload_type {
            (self.to.payload_type, true)
        } else if Some(pt) == self.from.dtmf_payload_type {
            match self.to.dtmf_payload_type {
                Some(p) => (p, false),
                None => {
                    self.dropped += 1;
                    return false;
                }
            }
        } else {
            self.dropped += 1;
            return false;
        };
        let (in_seq, in_ts) = (u16::from(rtp.sequence_number()), rtp.timestamp());
        let mut marker = rtp.mark();
        let (seq_off, ts_off) = match self.source {
            Some((ssrc, s, t)) if ssrc == rtp.ssrc() => (s, t),
            _ => {
                // A new stream is spliced in: it carries on from the output's
                // last position, and starts a talk spurt.
                let s = self.next.0.wrapping_sub(in_seq);
                let t = self.next.1.wrapping_sub(in_ts);
                self.source = Some((rtp.ssrc(), s, t));
                marker = true;
                (s, t)
            }
        };
        let seq = in_seq.wrapping_add(seq_off);
        let ts = in_ts.wrapping_add(ts_off);
        let payload = rtp.payload();
        out.clear();
        out.reserve(HEADER.saturating_add(payload.len()));
        out.push(0x80);
        out.push(out_pt | if marker { 0x80 } else { 0 });
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        if audio && self.from.codec != self.to.codec {
            let (from, to) = (self.from.codec, self.to.codec);
            out.extend(payload.iter().map(|b| to.encode(from.decode(*b))));
        } else {
            out.extend_from_slice(payload);
        }
        // Later packets continue after the newest one sent (reordering keeps
        // the highest); an audio frame's duration is its sample count.
        let dur = if audio { payload.len() as u32 } else { 0 };
        if seq.wrapping_sub(self.next.0) < 0x8000 {
            self.next = (seq.wrapping_add(1), ts.wrapping_add(dur));
        }
        self.forwarded += 1;
        true
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use crate::media::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};

    fn packet(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, pt | if marker { 0x80 } else { 0 }];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn fields(p: &[u8]) -> (bool, u8, u16, u32, u32) {
        let r = rtp_rs::RtpReader::new(p).unwrap();
        (
            r.mark(),
            r.payload_type(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
        )
    }

    const PCMU: LegFormat = LegFormat {
        codec: Codec::Pcmu,
        payload_type: 0,
        dtmf_payload_type: Some(101),
    };
    const PCMA: LegFormat = LegFormat {
        codec: Codec::Pcma,
        payload_type: 8,
        dtmf_payload_type: Some(96),
    };

    #[test]
    fn carries_on_the_hold_music_stream_across_the_switch_and_an_ssrc_change() {
        // Hold music's last packet was seq 999, ts 159840: the agent's audio
        // must continue at 1000 / 160000 with the caller leg's own SSRC.
        let at = StreamPosition {
            ssrc: 0xCAFE,
            seq: 1000,
            timestamp: 160_000,
        };
        let mut r = Relay::new(PCMU, PCMU, at);
        let mut out = Vec::new();
        let frame = [0x55u8; 160];
        assert!(r.forward(&packet(0, 40_000, 7, 0xA1, false, &frame), &mut out));
        assert_eq!(fields(&out), (true, 0, 1000, 160_000, 0xCAFE));
        assert_eq!(&out[12..], &frame[..]);
        assert!(r.forward(&packet(0, 40_001, 167, 0xA1, false, &frame), &mut out));
        assert_eq!(fields(&out), (false, 0, 1001, 160_160, 0xCAFE));
        // The agent's phone restarts its stream (new SSRC, new bases).
        assert!(r.forward(&packet(0, 5, 90_000, 0xB2, false, &frame), &mut out));
        assert_eq!(fields(&out), (true, 0, 1002, 160_320, 0xCAFE));
        assert!(r.forward(&packet(0, 6, 90_160, 0xB2, false, &frame), &mut out));
        assert_eq!(fields(&out), (false, 0, 1003, 160_480, 0xCAFE));
        assert_eq!(
            r.position(),
            StreamPosition {
                ssrc: 0xCAFE,
                seq: 1004,
                timestamp: 160_640
            }
        );
    }

    #[test]
    fn wraps_sequence_and_timestamp() {
        let at = StreamPosition {
            ssrc: 1,
            seq: u16::MAX,
            timestamp: u32::MAX - 100,
        };
        let mut r = Relay::new(PCMU, PCMU, at);
        let mut out = Vec::new();
        r.forward(&packet(0, 10, 0, 9, false, &[0; 160]), &mut out);
        r.forward(&packet(0, 11, 160, 9, false, &[0; 160]), &mut out);
        assert_eq!(fields(&out).2, 0);
        assert_eq!(fields(&out).3, (u32::MAX - 100).wrapping_add(160));
    }

    #[test]
    fn transcodes_between_laws_within_one_quantisation_step() {
        let mut r = Relay::new(
            PCMA,
            PCMU,
            StreamPosition {
                ssrc: 1,
                seq: 0,
                timestamp: 0,
            },
        );
        let linear: Vec<i16> = (0..160)
            .map(|i| ((i as f64 * 0.3).sin() * 12_000.0) as i16)
            .collect();
        let alaw: Vec<u8> = linear.iter().map(|s| linear_to_alaw(*s)).collect();
        let mut out = Vec::new();
        assert!(r.forward(&packet(8, 1, 0, 5, false, &alaw), &mut out));
        assert_eq!(fields(&out).1, 0, "PCMU payload type on the far side");
        for (a, u) in alaw.iter().zip(&out[12..]) {
            let want = alaw_to_linear(*a);
            assert_eq!(*u, linear_to_ulaw(want));
            let got = ulaw_to_linear(*u);
            assert!((i32::from(got) - i32::from(want)).abs() <= i32::from(want).abs() / 16 + 8);
        }
    }

    #[test]
    fn remaps_telephone_events_and_drops_what_the_far_side_cannot_take() {
        let mut r = Relay::new(
            PCMU,
            PCMA,
            StreamPosition {
                ssrc: 1,
                seq: 0,
                timestamp: 0,
            },
        );
        let mut out = Vec::new();
        let ev = [5u8, 0x0a, 0x01, 0x40];
        assert!(r.forward(&packet(101, 1, 0, 5, true, &ev), &mut out));
        assert_eq!(fields(&out).1, 96);
        assert_eq!(&out[12..], &ev);
        // Comfort noise (13) and RTCP are not forwarded.
        assert!(!r.forward(&packet(13, 2, 160, 5, false, &[0]), &mut out));
        assert!(!r.forward(&[0x80, 200, 0, 1], &mut out));
        let no_events = LegFormat {
            dtmf_payload_type: None,
            ..PCMA
        };
        let mut r = Relay::new(
            PCMU,
            no_events,
            StreamPosition {
                ssrc: 1,
                seq: 0,
                timestamp: 0,
            },
        );
        assert!(!r.forward(&packet(101, 1, 0, 5, true, &ev), &mut out));
        assert_eq!(r.dropped, 1);
    }
}
