//! SDP (RFC 4566) offer parsing and answer generation under the offer/answer
//! model (RFC 3264): G.711 in the caller's order of preference, telephone-event
//! (RFC 4733) at the caller's payload type, direction attributes for hold and
//! resume (RFC 3264 §8.4), rejected streams answered with port 0 (§6).
//! Browsers' offers (`UDP/TLS/RTP/SAVPF`: ICE, DTLS-SRTP, rtcp-mux) are
//! parsed here too; [`webrtc`] writes their answers and offers.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

pub mod webrtc;

use crate::media::g711::Codec;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use thiserror::Error;
pub use webrtc::{LocalIce, Secure, Setup};

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP line {0} is malformed")]
    BadLine(usize),
    #[error("SDP has no connection address for audio")]
    NoConnection,
    #[error("SDP offers no audio stream")]
    NoAudio,
    #[error("no common codec (PCMU or PCMA)")]
    NoCommonCodec,
    #[error("a secure (DTLS-SRTP) offer without ICE credentials or a fingerprint")]
    IncompleteSecure,
    #[error("browsers' media (WebRTC) is not enabled here")]
    SecureNotEnabled,
}

impl SdpError {
    /// RFC 3261 §13.3.1: an unacceptable offer gets 488.
    pub fn status(&self) -> u16 {
        match self {
            SdpError::NoAudio
            | SdpError::NoCommonCodec
            | SdpError::IncompleteSecure
            | SdpError::SecureNotEnabled => 488,
            _ => 400,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer takes for an offered direction (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the side holding this direction sends media.
    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaLine {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<IpAddr>,
    pub rtpmap: Vec<(u8, String, u32)>,
    pub ptime: Option<u32>,
    pub direction: Option<Direction>,
    /// ICE, DTLS and RTP attributes a browser's offer carries.
    pub webrtc: webrtc::Attributes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionDescription {
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaLine>,
    /// Session-level ICE and DTLS attributes (Firefox puts them here).
    pub webrtc: webrtc::Attributes,
}

impl SessionDescription {
    pub fn parse(body: &[u8]) -> Result<SessionDescription, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::NotText)?;
        let mut sd = SessionDescription {
            connection: None,
            direction: None,
            media: Vec::new(),
            webrtc: Default::default(),
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() {
                continue;
            }
            let bad = SdpError::BadLine(i.saturating_add(1));
            let (k, v) = line.split_once('=').ok_or(bad.clone())?;
            match k {
                "c" => {
                    let mut it = v.split_whitespace();
                    let (_net, _ty, addr) = (it.next(), it.next(), it.next().ok_or(bad.clone())?);
                    // Multicast TTL suffix ("/127") is dropped.
                    let ip: IpAddr = addr
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| bad.clone())?;
                    match sd.media.last_mut() {
                        Some(m) => m.connection = Some(ip),
                        None => sd.connection = Some(ip),
                    }
                }
                "m" => {
                    let mut it = v.split_whitespace();
                    let kind = it.next().ok_or(bad.clone())?.to_string();
                    let port_s = it.next().ok_or(bad.clone())?;
                    let port: u16 = port_s
                        .split('/')
                        .next()
                        .unwrap_or("")
                        .parse()
                        .map_err(|_| bad.clone())?;
                    let proto = it.next().ok_or(bad.clone())?.to_string();
                    let formats = it.map(str::to_string).collect();
                    sd.media.push(MediaLine {
                        kind,
                        port,
                        proto,
                        formats,
                        connection: None,
                        rtpmap: Vec::new(),
                        ptime: None,
                        direction: None,
                        webrtc: Default::default(),
                    });
                }
                "a" => {
                    let (name, value) = v.split_once(':').unwrap_or((v, ""));
                    let dir = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    if let Some(d) = dir {
                        match sd.media.last_mut() {
                            Some(m) => m.direction = Some(d),
                            None => sd.direction = Some(d),
                        }
                        continue;
                    }
                    let Some(m) = sd.media.last_mut() else {
                        sd.webrtc.take(name, value);
                        continue;
                    };
                    if m.webrtc.take(name, value) {
                        continue;
                    }
                    match name {
                        "rtpmap" => {
                            let (pt, enc) = value.split_once(' ').ok_or(bad.clone())?;
                            let pt: u8 = pt.trim().parse().map_err(|_| bad.clone())?;
                            let mut parts = enc.trim().split('/');
                            let name = parts.next().unwrap_or("").to_string();
                            let rate: u32 = parts
                                .next()
                                .unwrap_or("0")
                                .parse()
                                .map_err(|_| bad.clone())?;
                            m.rtpmap.push((pt, name, rate));
                        }
                        "ptime" => m.ptime = value.trim().parse().ok(),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        Ok(sd)
    }
}

/// What offer/answer settled for the call's audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub codec: Codec,
    pub payload_type: u8,
    pub dtmf_payload_type: Option<u8>,
    /// Where the offer asks for media (until symmetric RTP latches).
    pub remote: SocketAddr,
    /// Our direction, as answered.
    pub direction: Direction,
    /// Index of the audio m-line in the offer, and the number of m-lines.
    pub audio_index: usize,
    /// A browser's leg: what its ICE and DTLS need (None: plain RTP).
    pub secure: Option<Secure>,
    pub media_kinds: Vec<(String, String, Vec<String>)>,
}

/// Picks the first offered format that is PCMU or PCMA (by static PT or rtpmap),
/// and telephone-event/8000 if offered.
pub fn negotiate(sd: &SessionDescription) -> Result<Negotiated, SdpError> {
    let (idx, m) = sd
        .media
        .iter()
        .enumerate()
        .find(|(_, m)| {
            m.kind == "audio"
                && m.port != 0
                && (m.proto.starts_with("RTP/AVP") || webrtc::is_secure_proto(&m.proto))
        })
        .ok_or(SdpError::NoAudio)?;
    let secure = if webrtc::is_secure_proto(&m.proto) {
        Some(Secure::from_offer(&sd.webrtc, &m.webrtc)?)
    } else {
        None
    };
    let mut chosen = None;
    let mut dtmf = None;
    for f in &m.formats {
        let Ok(pt) = f.parse::<u8>() else { continue };
        let map = m.rtpmap.iter().find(|(p, _, _)| *p == pt);
        let codec = match map {
            Some((_, name, 8000)) if name.eq_ignore_ascii_case("PCMU") => Some(Codec::Pcmu),
            Some((_, name, 8000)) if name.eq_ignore_ascii_case("PCMA") => Some(Codec::Pcma),
            Some((_, name, 8000)) if name.eq_ignore_ascii_case("telephone-event") => {
                dtmf = dtmf.or(Some(pt));
                None
            }
            Some(_) => None,
            None if pt == 0 => Some(Codec::Pcmu),
            None if pt == 8 => Some(Codec::Pcma),
            None => None,
        };
        if chosen.is_none() {
            if let Some(c) = codec {
                chosen = Some((c, pt));
            }
        }
    }
    let (codec, payload_type) = chosen.ok_or(SdpError::NoCommonCodec)?;
    let ip = m
        .connection
        .or(sd.connection)
        .or(secure.as_ref().map(|_| IpAddr::from([0, 0, 0, 0])))
        .ok_or(SdpError::NoConnection)?;
    let offered = m.direction.or(sd.direction).unwrap_or(Direction::SendRecv);
    // c=0.0.0.0 is the RFC 2543 way of putting a call on hold (but only
    // a placeholder in a browser's offer: ICE finds the address).
    let offered = if ip.is_unspecified() && offered != Direction::Inactive && secure.is_none() {
        Direction::SendOnly.min_with(offered)
    } else {
        offered
    };
    Ok(Negotiated {
        codec,
        payload_type,
        dtmf_payload_type: dtmf,
        remote: SocketAddr::new(ip, m.port),
        direction: offered.answer(),
        audio_index: idx,
        secure,
        media_kinds: sd
            .media
            .iter()
            .map(|m| (m.kind.clone(), m.proto.clone(), m.formats.clone()))
            .collect(),
    })
}

impl Direction {
    /// Combines an old-style hold with an explicit attribute: the caller sends at
    /// most what both allow.
    fn min_with(self, other: Direction) -> Direction {
        let sends = self.sends() && other.sends();
        let recvs = self.receives() && other.receives();
        match (sends, recvs) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }
}

/// Writes the SDP answer (or, with `offer = None`, an offer for a late-offer
/// INVITE) for a call's audio.
pub fn write_answer(
    neg: Option<&Negotiated>,
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let ipv = if local_ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut s = String::with_capacity(320);
    let _ = write!(
        s,
        "v=0\r\no=vaxel {session_id} {version} IN {ipv} {local_ip}\r\ns=vaxel\r\nc=IN {ipv} {local_ip}\r\nt=0 0\r\n"
    );
    let audio = |s: &mut String, pt: u8, codec: Codec, dtmf: Option<u8>| {
        let _ = write!(s, "m=audio {local_port} RTP/AVP {pt}");
        if let Some(d) = dtmf {
            let _ = write!(s, " {d}");
        }
        let _ = write!(s, "\r\na=rtpmap:{pt} {}/8000\r\n", codec.name());
        if let Some(d) = dtmf {
            let _ = write!(
                s,
                "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
            );
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.attr());
    };
    match neg {
        Some(n) => {
            for (i, (kind, proto, formats)) in n.media_kinds.iter().enumerate() {
                if i == n.audio_index {
                    audio(&mut s, n.payload_type, n.codec, n.dtmf_payload_type);
                } else {
                    // Rejected stream: port 0, first format echoed (RFC 3264 §6).
                    let f = formats.first().map(String::as_str).unwrap_or("0");
                    let _ = write!(s, "m={kind} 0 {proto} {f}\r\n");
                }
            }
        }
        None => {
            let _ = write!(s, "m=audio {local_port} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na={}\r\n", direction.attr());
        }
    }
    s
}

/// An SDP offer for a leg the engine calls out on (an agent's phone): PCMU and
/// PCMA with `first` preferred (the caller's codec: no transcoding when the
/// phone takes it), and telephone-event.
pub fn write_offer(
    local_ip: IpAddr,
    local_port: u16,
    session_id: u64,
    version: u64,
    first: Codec,
) -> String {
    let ipv = if local_ip.is_ipv6() { "IP6" } else { "IP4" };
    let order = match first {
        Codec::Pcma => "8 0",
        Codec::Pcmu => "0 8",
    };
    format!(
        "v=0\r\no=vaxel {session_id} {version} IN {ipv} {local_ip}\r\ns=vaxel\r\nc=IN {ipv} {local_ip}\r\nt=0 0\r\n\
m=audio {local_port} RTP/AVP {order} 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
m=audio 40000 RTP/AVP 8 0 96\r\na=rtpmap:96 telephone-event/8000\r\na=fmtp:96 0-15\r\na=ptime:20\r\n\
m=video 40002 RTP/AVP 31\r\n";

    #[test]
    fn callers_preference_and_dtmf_pt() {
        let n = negotiate(&SessionDescription::parse(OFFER.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.payload_type, 8);
        assert_eq!(n.dtmf_payload_type, Some(96));
        assert_eq!(n.remote, "10.0.0.5:40000".parse().unwrap());
        let ans = write_answer(
            Some(&n),
            "127.0.0.1".parse().unwrap(),
            20000,
            1,
            1,
            n.direction,
        );
        assert!(ans.contains("m=audio 20000 RTP/AVP 8 96\r\n"));
        assert!(ans.contains("a=rtpmap:96 telephone-event/8000"));
        assert!(ans.contains("m=video 0 RTP/AVP 31\r\n"));
    }

    #[test]
    fn no_common_codec_is_488() {
        let o = OFFER.replace("RTP/AVP 8 0 96", "RTP/AVP 18 96");
        let e = negotiate(&SessionDescription::parse(o.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(e.status(), 488);
    }

    #[test]
    fn hold_directions() {
        let o = OFFER.replace("a=ptime:20", "a=ptime:20\r\na=sendonly");
        let n = negotiate(&SessionDescription::parse(o.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.direction, Direction::RecvOnly);
        let o = OFFER.replace("c=IN IP4 10.0.0.5", "c=IN IP4 0.0.0.0");
        let n = negotiate(&SessionDescription::parse(o.as_bytes()).unwrap()).unwrap();
        assert!(!n.direction.sends());
        let o = OFFER.replace("a=ptime:20", "a=inactive");
        assert_eq!(
            negotiate(&SessionDescription::parse(o.as_bytes()).unwrap())
                .unwrap()
                .direction,
            Direction::Inactive
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for junk in [
            &b"m=audio x RTP/AVP 0"[..],
            b"c=IN IP4 nope",
            b"\xff\xfe",
            b"a=rtpmap:abc",
        ] {
            let _ = SessionDescription::parse(junk).map(|s| negotiate(&s));
        }
        assert!(SessionDescription::parse(b"m=audio 1 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\n").is_ok());
    }
}
