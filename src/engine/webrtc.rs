//! Browser legs in the engine: which legs are WebRTC, their ICE credentials,
//! and what the runtime's WebRTC stack is told to set up.
//!
//! A browser leg is an ordinary leg to the rest of the engine: it keeps an
//! internal port number as its id, its media session sees plain RTP, and the
//! relay bridges it like any other. Only its SDP differs (ICE-lite, DTLS-SRTP,
//! rtcp-mux: [`crate::sip::sdp::webrtc`]) and where its packets go: to the
//! runtime's WebRTC stack, which encrypts them, instead of a UDP socket.
//!
//! The ICE password is the key of STUN's MESSAGE-INTEGRITY: it is derived
//! with HMAC-SHA256 from a secret the runtime drew from the OS, not from the
//! engine's xorshift (which only needs uniqueness). Pure: no I/O.

use super::Engine;
use crate::media::g711::Codec;
use crate::sip::sdp::{LocalIce, Secure};
use hmac::{KeyInit, Mac};
use std::net::SocketAddr;

/// What the engine knows of the runtime's WebRTC side.
#[derive(Clone, Debug)]
pub struct WebRtcSettings {
    /// The shared UDP port all browser legs use (its advertised address).
    pub addr: SocketAddr,
    /// `sha-256 AB:…` of the certificate all legs share.
    pub fingerprint: String,
    /// Derives the legs' ICE credentials.
    pub secret: [u8; 32],
    /// `[webrtc] customer_key`: browser callers' signed numbers.
    pub customer_key: Option<Vec<u8>>,
}

/// A browser leg for the runtime: our credentials, the browser's (once
/// known: at once for an offer the browser made, at the 2xx for ours), and
/// the payload types the leg carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebRtcMedia {
    pub local: LocalIce,
    pub remote: Option<Secure>,
    pub codecs: Vec<(u8, Codec)>,
    pub dtmf: Option<u8>,
}

impl Engine {
    /// A browser caller's number: the shop-signed one, else `anonymous`.
    pub(super) fn browser_caller(
        &self,
        now: std::time::Instant,
        req: &crate::sip::message::Request,
    ) -> String {
        let key = self
            .cfg
            .webrtc
            .as_ref()
            .and_then(|w| w.customer_key.as_deref());
        let header = crate::sip::message::HeaderName::Other(CUSTOMER_HEADER.into());
        match (key, req.headers.get(&header)) {
            (Some(key), Some(token)) => verify_customer(token, key, self.wall(now).as_second())
                .unwrap_or_else(|| {
                    tracing::info!("browser caller's customer signature refused: anonymous");
                    "anonymous".into()
                }),
            _ => "anonymous".into(),
        }
    }

    /// Fresh credentials for a browser leg (`None`: WebRTC is off).
    pub(super) fn local_ice(&mut self) -> Option<LocalIce> {
        let w = self.cfg.webrtc.clone()?;
        let n = self.random();
        let derive = |label: u8, len: usize| {
            let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&w.secret)
                .expect("any key length");
            m.update(&[label]);
            m.update(&n.to_le_bytes());
            let out = m.finalize().into_bytes();
            let mut s = String::with_capacity(len);
            for b in out.iter().take(len / 2) {
                s.push_str(&format!("{b:02x}"));
            }
            s
        };
        Some(LocalIce {
            addr: w.addr,
            ufrag: derive(b'u', 8),
            pwd: derive(b'p', 32),
            fingerprint: w.fingerprint,
            ssrc: self.random() as u32,
        })
    }
}

/// The header a "call us" page carries the shop's signed customer number in.
pub const CUSTOMER_HEADER: &str = "X-Vaxel-Customer";

/// Checks a shop's signature over its logged-in customer's number:
/// `NUMBER.EXPIRES.SIG`, `SIG` the hex HMAC-SHA256 of `NUMBER.EXPIRES` under
/// `[webrtc] customer_key`, `EXPIRES` in Unix seconds. A browser caller's
/// own claims (From, display name) are never taken as their number: only a
/// valid, unexpired signature is (compared in constant time).
pub fn verify_customer(token: &str, key: &[u8], now_unix: i64) -> Option<String> {
    let (signed, sig) = token.trim().rsplit_once('.')?;
    let (number, expires) = signed.split_once('.')?;
    let expires: i64 = expires.parse().ok()?;
    let plausible = !number.is_empty()
        && number.len() <= 32
        && number.chars().all(|c| c.is_ascii_digit() || c == '+');
    if !plausible || expires < now_unix || sig.len() != 64 {
        return None;
    }
    let mut want = [0u8; 32];
    for (i, w) in want.iter_mut().enumerate() {
        let hex = sig.get(i * 2..i * 2 + 2)?;
        *w = u8::from_str_radix(hex, 16).ok()?;
    }
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).ok()?;
    m.update(signed.as_bytes());
    m.verify_slice(&want).ok()?;
    Some(number.to_string())
}

/// Signs a customer's number (what a shop's site does; here for tests and
/// the README's example).
pub fn sign_customer(number: &str, expires_unix: i64, key: &[u8]) -> String {
    let signed = format!("{number}.{expires_unix}");
    let mut m = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    m.update(signed.as_bytes());
    let sig: String = m
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{signed}.{sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_valid_unexpired_signature_gives_a_number() {
        let key = b"0123456789abcdef0123456789abcdef";
        let t = sign_customer("+46701234567", 2_000, key);
        assert_eq!(
            verify_customer(&t, key, 1_000).as_deref(),
            Some("+46701234567")
        );
        assert_eq!(verify_customer(&t, key, 2_001), None, "expired");
        assert_eq!(
            verify_customer(&t, b"another key, just as long as it", 1_000),
            None
        );
        let forged = t.replace("+46701234567", "+46709999999");
        assert_eq!(verify_customer(&forged, key, 1_000), None);
        for junk in ["", ".", "..", "1.2.3", "a.b.c", "1.9999999999.zz", "é.1.é"] {
            assert_eq!(verify_customer(junk, key, 0), None);
        }
    }
}
