//! The SDP of a browser's leg: ICE (RFC 8839: `ice-ufrag`, `ice-pwd`,
//! `candidate`, `ice-lite`), DTLS-SRTP (RFC 8842: `fingerprint`, `setup`),
//! RTP/RTCP multiplexing (RFC 8035 `rtcp-mux`), `mid` and `BUNDLE` (RFC 9143),
//! over the `UDP/TLS/RTP/SAVPF` profile (RFC 5764).
//!
//! The engine is ICE-lite on one shared UDP port: its answer and its offer
//! carry one host candidate, that port, and the fingerprint of the one
//! certificate all legs share; it is always the DTLS server when it answers
//! (`setup:passive`) and lets the browser choose when it offers (`actpass`).
//! Pure: text in, text out; it never sees a key (those are derived by DTLS
//! in the runtime and never leave it).

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::{Direction, Negotiated, SdpError};
use crate::media::g711::Codec;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// Whether a profile is a DTLS-SRTP one (RFC 5764 §8; `RTP/SAVPF` alone is
/// SDES keying, which browsers no longer offer and we do not take).
pub fn is_secure_proto(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVPF")
        || proto.eq_ignore_ascii_case("UDP/TLS/RTP/SAVP")
}

/// The ICE, DTLS and RTP attributes of one level (session or media).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// `sha-256 AB:CD:…`, as written.
    pub fingerprint: Option<String>,
    pub setup: Option<Setup>,
    pub mid: Option<String>,
    /// The first `a=ssrc` (the browser's audio stream).
    pub ssrc: Option<u32>,
    pub rtcp_mux: bool,
}

/// RFC 4145 `a=setup`: who opens the DTLS association.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    Active,
    Passive,
    ActPass,
}

impl Attributes {
    /// Takes the attribute if it is one of ours; true when taken.
    pub(super) fn take(&mut self, name: &str, value: &str) -> bool {
        // Bounded: a credential or fingerprint longer than this is garbage.
        let short = |v: &str| (!v.is_empty() && v.len() <= 256).then(|| v.trim().to_string());
        match name {
            "ice-ufrag" => self.ice_ufrag = short(value),
            "ice-pwd" => self.ice_pwd = short(value),
            "fingerprint" => self.fingerprint = short(value),
            "mid" => self.mid = short(value),
            "rtcp-mux" => self.rtcp_mux = true,
            "setup" => {
                self.setup = match value.trim() {
                    "active" => Some(Setup::Active),
                    "passive" => Some(Setup::Passive),
                    "actpass" => Some(Setup::ActPass),
                    _ => None,
                }
            }
            "ssrc" => {
                if self.ssrc.is_none() {
                    self.ssrc = value.split(' ').next().and_then(|s| s.parse().ok());
                }
            }
            _ => return false,
        }
        true
    }
}

/// What the runtime needs of the browser's side to run ICE and DTLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secure {
    pub ice_ufrag: String,
    pub ice_pwd: String,
    pub fingerprint: String,
    pub setup: Setup,
    pub mid: Option<String>,
    pub ssrc: Option<u32>,
}

impl Secure {
    /// The browser's attributes, media level first (RFC 8839 §5.4).
    pub(super) fn from_offer(session: &Attributes, media: &Attributes) -> Result<Secure, SdpError> {
        let pick = |m: &Option<String>, s: &Option<String>| m.clone().or_else(|| s.clone());
        Ok(Secure {
            ice_ufrag: pick(&media.ice_ufrag, &session.ice_ufrag)
                .ok_or(SdpError::IncompleteSecure)?,
            ice_pwd: pick(&media.ice_pwd, &session.ice_pwd).ok_or(SdpError::IncompleteSecure)?,
            fingerprint: pick(&media.fingerprint, &session.fingerprint)
                .ok_or(SdpError::IncompleteSecure)?,
            setup: media.setup.or(session.setup).unwrap_or(Setup::ActPass),
            mid: media.mid.clone(),
            ssrc: media.ssrc,
        })
    }

    /// Whether we open the DTLS association (the browser chose passive).
    pub fn we_are_dtls_client(&self) -> bool {
        self.setup == Setup::Passive
    }
}

/// Our side of a browser leg: the shared port's address, this leg's ICE
/// credentials, and the shared certificate's fingerprint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalIce {
    pub addr: SocketAddr,
    pub ufrag: String,
    pub pwd: String,
    pub fingerprint: String,
    /// The SSRC we send with, signalled (`a=ssrc`): a receiver that maps
    /// streams by SSRC (no `mid` header extension) needs it.
    pub ssrc: u32,
}

/// The answer to a browser's offer (the engine is the DTLS server).
pub fn write_answer(
    neg: &Negotiated,
    secure: &Secure,
    local: &LocalIce,
    session_id: u64,
    version: u64,
    direction: Direction,
) -> String {
    let mut s = header(local.addr.ip(), session_id, version);
    if let Some(mid) = &secure.mid {
        let _ = write!(s, "a=group:BUNDLE {mid}\r\n");
    }
    for (i, (kind, proto, formats)) in neg.media_kinds.iter().enumerate() {
        if i == neg.audio_index {
            let dtmf = neg.dtmf_payload_type;
            let _ = write!(
                s,
                "m=audio {} UDP/TLS/RTP/SAVPF {}",
                local.addr.port(),
                neg.payload_type
            );
            if let Some(d) = dtmf {
                let _ = write!(s, " {d}");
            }
            s.push_str("\r\n");
            media_attributes(&mut s, local, "passive", secure.mid.as_deref());
            let _ = write!(
                s,
                "a=rtpmap:{} {}/8000\r\n",
                neg.payload_type,
                neg.codec.name()
            );
            if let Some(d) = dtmf {
                let _ = write!(
                    s,
                    "a=rtpmap:{d} telephone-event/8000\r\na=fmtp:{d} 0-16\r\n"
                );
            }
            let _ = write!(s, "a=ptime:20\r\na={}\r\n", direction.attr());
        } else {
            let f = formats.first().map(String::as_str).unwrap_or("0");
            let _ = write!(s, "m={kind} 0 {proto} {f}\r\n");
        }
    }
    s
}

/// An offer to a browser agent's phone: PCMU and PCMA (`first` preferred)
/// and telephone-event at 101; the browser picks the DTLS role.
pub fn write_offer(local: &LocalIce, session_id: u64, version: u64, first: Codec) -> String {
    let mut s = header(local.addr.ip(), session_id, version);
    let order = match first {
        Codec::Pcma => "8 0",
        Codec::Pcmu => "0 8",
    };
    let _ = write!(
        s,
        "a=group:BUNDLE 0\r\nm=audio {} UDP/TLS/RTP/SAVPF {order} 101\r\n",
        local.addr.port()
    );
    media_attributes(&mut s, local, "actpass", Some("0"));
    s.push_str(
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n",
    );
    s
}

fn header(ip: IpAddr, session_id: u64, version: u64) -> String {
    let ipv = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut s = String::with_capacity(768);
    let _ = write!(
        s,
        "v=0\r\no=vaxel {session_id} {version} IN {ipv} {ip}\r\ns=vaxel\r\nt=0 0\r\na=ice-lite\r\n"
    );
    s
}

fn media_attributes(s: &mut String, local: &LocalIce, setup: &str, mid: Option<&str>) {
    let ip = local.addr.ip();
    let ipv = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let port = local.addr.port();
    let _ = write!(
        s,
        "c=IN {ipv} {ip}\r\na=rtcp:{port} IN {ipv} {ip}\r\na=rtcp-mux\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\n\
a=fingerprint:{}\r\na=setup:{setup}\r\n",
        local.ufrag, local.pwd, local.fingerprint
    );
    if let Some(mid) = mid {
        let _ = write!(s, "a=mid:{mid}\r\n");
    }
    let _ = write!(
        s,
        "a=ssrc:{} cname:vaxel\r\na=candidate:1 1 udp 2130706431 {ip} {port} typ host\r\na=end-of-candidates\r\n",
        local.ssrc
    );
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::super::{negotiate, SessionDescription};
    use super::*;

    /// Chromium's audio offer, as a JsSIP page sends it (trimmed of
    /// extmaps and the candidates' variety).
    pub const CHROME: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS 6bd2\r\n\
m=audio 50123 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\nc=IN IP4 127.0.0.1\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\na=candidate:1 1 udp 2113937151 127.0.0.1 50123 typ host generation 0\r\n\
a=ice-ufrag:Xk9a\r\na=ice-pwd:h4v8fVQ3PdzIxnZ6rkc2VqZa\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 0F:74:31:25:CB:A2:13:EC:28:6F:6D:2C:61:FF:5D:C2:BC:B9:DB:3D:98:14:8D:1A:BB:EA:33:0C:A4:60:A8:8E\r\n\
a=setup:actpass\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=rtpmap:9 G722/8000\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
a=ssrc:3735928559 cname:abc\r\na=ssrc:3735928559 msid:6bd2 a1\r\n";

    fn local() -> LocalIce {
        LocalIce {
            addr: "127.0.0.1:5062".parse().unwrap(),
            ufrag: "vx01".into(),
            pwd: "p".repeat(24),
            fingerprint: "sha-256 AA:BB".into(),
            ssrc: 42,
        }
    }

    #[test]
    fn chromes_offer_is_taken_with_g711_and_its_dtmf() {
        let n = negotiate(&SessionDescription::parse(CHROME.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.codec, Codec::Pcmu);
        assert_eq!(n.payload_type, 0);
        assert_eq!(n.dtmf_payload_type, Some(126));
        let sec = n.secure.clone().unwrap();
        assert_eq!(sec.ice_ufrag, "Xk9a");
        assert_eq!(sec.setup, Setup::ActPass);
        assert_eq!(sec.mid.as_deref(), Some("0"));
        assert_eq!(sec.ssrc, Some(3735928559));
        assert!(sec.fingerprint.starts_with("sha-256 0F:74"));
        let a = write_answer(&n, &sec, &local(), 1, 1, n.direction);
        for line in [
            "a=ice-lite\r\n",
            "a=group:BUNDLE 0\r\n",
            "m=audio 5062 UDP/TLS/RTP/SAVPF 0 126\r\n",
            "a=setup:passive\r\n",
            "a=mid:0\r\n",
            "a=rtcp-mux\r\n",
            "a=ice-ufrag:vx01\r\n",
            "a=fingerprint:sha-256 AA:BB\r\n",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5062 typ host\r\n",
            "a=rtpmap:126 telephone-event/8000\r\n",
            "a=ssrc:42 cname:vaxel\r\n",
        ] {
            assert!(a.contains(line), "{line:?} missing from\n{a}");
        }
        // Our own answer parses as a secure description again.
        let back = SessionDescription::parse(a.as_bytes()).unwrap();
        assert_eq!(back.media[0].webrtc.setup, Some(Setup::Passive));
    }

    #[test]
    fn a_secure_offer_without_credentials_is_488() {
        let o = CHROME.replace("a=ice-pwd:h4v8fVQ3PdzIxnZ6rkc2VqZa\r\n", "");
        let e = negotiate(&SessionDescription::parse(o.as_bytes()).unwrap()).unwrap_err();
        assert_eq!(e, SdpError::IncompleteSecure);
        assert_eq!(e.status(), 488);
    }

    #[test]
    fn a_placeholder_address_is_no_hold_for_a_browser() {
        let o = CHROME.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
        let n = negotiate(&SessionDescription::parse(o.as_bytes()).unwrap()).unwrap();
        assert_eq!(n.direction, Direction::SendRecv);
    }

    #[test]
    fn our_offer_lets_the_browser_choose_the_dtls_role() {
        let o = write_offer(&local(), 1, 1, Codec::Pcma);
        let sd = SessionDescription::parse(o.as_bytes()).unwrap();
        let n = negotiate(&sd).unwrap();
        assert_eq!(n.codec, Codec::Pcma);
        assert_eq!(n.secure.unwrap().setup, Setup::ActPass);
    }
}
