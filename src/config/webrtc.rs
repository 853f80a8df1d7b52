//! `[webrtc]`: browsers as phones. SIP over WebSocket is served at `/sip` on
//! the HTTP listener; browsers' media (ICE-lite, DTLS-SRTP) uses one UDP port.

use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// Off: `/sip` answers 404 and browsers' offers get 488.
    pub enabled: bool,
    /// The one UDP port all browser legs' media uses.
    pub media_listen: SocketAddr,
    /// The address browsers are told to send media to (their ICE
    /// candidate); default: `media_listen`'s, or `sip.advertise`.
    pub advertise: Option<IpAddr>,
    /// Pages from these origins (shops' sites) may open `/sip` and embed the
    /// "call us" page (`"*"`: any); the engine's own pages always may.
    pub origins: Vec<String>,
    /// HMAC key (at least 32 characters) a shop's site signs its logged-in
    /// customer's number with for the "call us" page. Unset: browser callers
    /// are anonymous whatever their page claims.
    pub customer_key: Option<String>,
    /// The number the "call us" page dials (a flow must serve it).
    pub call_number: String,
    /// WebSocket connections per source address.
    pub connections_per_source: usize,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            enabled: true,
            media_listen: "127.0.0.1:5062".parse().expect("valid"),
            advertise: None,
            origins: Vec::new(),
            customer_key: None,
            call_number: "100".into(),
            connections_per_source: 20,
        }
    }
}

impl WebRtcConfig {
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for o in &self.origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                out.push(format!(
                    "webrtc.origins: \"{o}\" is no origin (write it as https://host[:port])"
                ));
            }
        }
        if self.customer_key.as_ref().is_some_and(|k| k.len() < 32) {
            out.push("webrtc.customer_key must be at least 32 characters (make one with `openssl rand -hex 32`)".into());
        }
        if self.media_listen.ip().is_unspecified() && self.advertise.is_none() {
            out.push("webrtc.media_listen is a wildcard address: set webrtc.advertise to the address browsers reach".into());
        }
        if self.call_number.is_empty()
            || !self
                .call_number
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#' | '+'))
        {
            out.push(format!(
                "webrtc.call_number \"{}\": digits, *, # and + only",
                self.call_number
            ));
        }
        if self.connections_per_source == 0 {
            out.push("webrtc.connections_per_source must be at least 1".into());
        }
        out
    }
}
