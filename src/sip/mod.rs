//! SIP (RFC 3261) as a pure core: the codec ([`parse`], [`message`], [`header`]),
//! the transaction state machines ([`transaction`]), SDP offer/answer ([`sdp`]),
//! and helpers shared by the UAS core in `engine`. Nothing here does I/O or reads
//! the clock.

pub mod dialog;
pub mod header;
pub mod message;
pub mod multipart;
pub mod parse;
pub mod sdp;
pub mod transaction;

use header::{NameAddr, Via};
use message::{reason_phrase, HeaderName, Headers, Method, Request, Response};
use std::net::SocketAddr;

/// RFC 3261 §8.1.1.7: branches that start with this are RFC 3261 branches.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// The transport a message came over, and for streams which connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp(ConnId),
    /// SIP over WebSocket (RFC 7118): one message per frame, on the HTTP
    /// listener's `/sip`. Browsers are reached only over the connection they
    /// registered on (their Contact host is a made-up `….invalid`).
    Ws(ConnId),
}

impl Transport {
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }

    pub fn via_name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp(_) => "TCP",
            Transport::Ws(_) => "WS",
        }
    }

    /// The connection a stream transport's message came over.
    pub fn conn(self) -> Option<ConnId> {
        match self {
            Transport::Udp => None,
            Transport::Tcp(c) | Transport::Ws(c) => Some(c),
        }
    }

    /// The `transport` URI parameter that reaches us over this transport.
    pub fn uri_param(self) -> &'static str {
        match self {
            Transport::Udp => "",
            Transport::Tcp(_) => ";transport=tcp",
            Transport::Ws(_) => ";transport=ws",
        }
    }
}

/// A TCP or WebSocket connection, numbered by the runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Server transaction key (RFC 3261 §17.2.3): the top Via's branch and sent-by
/// and the method (ACK and CANCEL match their INVITE by branch, so callers pass
/// `INVITE` for them). Requests without the magic cookie fall back to the
/// RFC 2543 style: Call-ID, CSeq number, From tag and top Via (§17.2.3 ¶1).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransactionKey {
    pub id: String,
    pub method: String,
}

impl TransactionKey {
    pub fn server(req: &Request, method: &Method) -> Option<TransactionKey> {
        let top_raw = req.headers.list(&HeaderName::Via).next()?;
        let via = Via::parse(top_raw).ok()?;
        let sent_by = format!("{}:{}", via.host, via.port.unwrap_or(5060));
        let id = match via.branch() {
            Some(b) if b.starts_with(MAGIC_COOKIE) && b.len() > MAGIC_COOKIE.len() => {
                format!("{b}|{sent_by}")
            }
            _ => {
                let call_id = req.headers.get(&HeaderName::CallId)?;
                let cseq = req
                    .headers
                    .get(&HeaderName::CSeq)?
                    .split_whitespace()
                    .next()?;
                let from_tag = NameAddr::parse(req.headers.get(&HeaderName::From)?)
                    .ok()
                    .and_then(|n| n.tag().map(str::to_string))
                    .unwrap_or_default();
                format!("2543|{call_id}|{cseq}|{from_tag}|{top_raw}")
            }
        };
        Some(TransactionKey {
            id,
            method: method.as_str().to_string(),
        })
    }

    /// Client transaction key (§17.1.3): our branch and the CSeq method.
    pub fn client(branch: &str, method: &str) -> TransactionKey {
        TransactionKey {
            id: branch.to_string(),
            method: method.to_string(),
        }
    }
}

/// Where to send a response (RFC 3261 §18.2.2, RFC 3581 §4): over the same
/// connection for streams; for UDP to the source address when `rport` was
/// asked for, otherwise to the source IP and the Via's sent-by port.
pub fn response_destination(req: &Request, transport: Transport, source: SocketAddr) -> SocketAddr {
    if transport.is_reliable() {
        return source;
    }
    let Some(via) = req
        .headers
        .list(&HeaderName::Via)
        .next()
        .and_then(|v| Via::parse(v).ok())
    else {
        return source;
    };
    if header::param(&via.params, "rport").is_some() {
        return source;
    }
    // A `maddr` (multicast) is ignored: the engine answers where the request
    // came from, never to a group or a third address.
    SocketAddr::new(source.ip(), via.port.unwrap_or(5060))
}

/// Adds `received` and `rport` to the top Via (RFC 3261 §18.2.1, RFC 3581 §4).
pub fn stamp_via(headers: &mut Headers, source: SocketAddr) {
    let Some(pos) = headers.0.iter().position(|(n, _)| *n == HeaderName::Via) else {
        return;
    };
    let value = headers.0[pos].1.clone();
    let mut items: Vec<&str> = message::split_list(&value).collect();
    let Some(top) = items.first().copied() else {
        return;
    };
    let Ok(via) = Via::parse(top) else { return };
    let mut new_top = String::new();
    let wants_rport = header::param(&via.params, "rport").is_some();
    let host_is_source = via.host.trim_matches(|c| c == '[' || c == ']') == source.ip().to_string();
    // Rebuild only the params we touch; others keep their text.
    let base = top.split(';').next().unwrap_or(top).trim();
    new_top.push_str(base);
    for (n, v) in &via.params {
        if n == "rport" || n == "received" {
            continue;
        }
        new_top.push(';');
        new_top.push_str(n);
        if let Some(v) = v {
            new_top.push('=');
            new_top.push_str(v);
        }
    }
    if wants_rport || !host_is_source {
        new_top.push_str(&format!(";received={}", source.ip()));
    }
    if wants_rport {
        new_top.push_str(&format!(";rport={}", source.port()));
    }
    let rest: Vec<String> = items.drain(1..).map(str::to_string).collect();
    let mut joined = new_top;
    for r in rest {
        joined.push_str(", ");
        joined.push_str(&r);
    }
    headers.0[pos].1 = joined;
}

/// Builds a response to `req` (RFC 3261 §8.2.6): Via (stamped), From, Call-ID,
/// CSeq copied; To copied with `to_tag` added when it has none.
pub fn make_response(
    req: &Request,
    status: u16,
    to_tag: Option<&str>,
    source: SocketAddr,
) -> Response {
    make_response_from_headers(&req.headers, status, to_tag, source)
}

/// Same as [`make_response`] from raw headers (for requests that failed to parse).
pub fn make_response_from_headers(
    h: &Headers,
    status: u16,
    to_tag: Option<&str>,
    source: SocketAddr,
) -> Response {
    let mut headers = Headers::default();
    for (n, v) in &h.0 {
        if *n == HeaderName::Via {
            headers.push(HeaderName::Via, v.clone());
        }
    }
    stamp_via(&mut headers, source);
    if let Some(v) = h.get(&HeaderName::From) {
        headers.push(HeaderName::From, v);
    }
    if let Some(v) = h.get(&HeaderName::To) {
        let has_tag = NameAddr::parse(v)
            .map(|n| n.tag().is_some())
            .unwrap_or(true);
        match to_tag {
            Some(t) if !has_tag && status > 100 => {
                headers.push(HeaderName::To, format!("{v};tag={t}"))
            }
            _ => headers.push(HeaderName::To, v),
        }
    }
    for name in [HeaderName::CallId, HeaderName::CSeq] {
        if let Some(v) = h.get(&name) {
            headers.push(name, v);
        }
    }
    let server = server_header();
    if !server.is_empty() {
        headers.push(HeaderName::Server, server);
    }
    Response {
        status,
        reason: reason_phrase(status).to_string(),
        headers,
        body: Vec::new(),
    }
}

/// Whether a raw header section carries what a stateless response needs: a
/// top Via to copy (the other headers are copied when present, so that a
/// request missing Call-ID or From still learns why it was refused). A Via that
/// does not parse (RFC 4475 `badinv01`, port 0) is copied as it came and the
/// answer goes to the packet's source, as [`response_destination`] does.
pub fn can_answer(h: &Headers) -> bool {
    h.list(&HeaderName::Via).next().is_some()
}

/// The product token in `Server` headers (RFC 3261 §20.35): set once at start
/// from the configuration; no version by default, so a scanner learns nothing
/// it could match against known bugs. Empty means no header.
static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the `Server` header value for this process (first call wins).
pub fn set_server_header(value: &str) {
    let _ = SERVER.set(value.to_string());
}

fn server_header() -> &'static str {
    SERVER.get().map(String::as_str).unwrap_or("vaxel")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_stamping_and_destination() {
        let raw = "OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKx;rport, SIP/2.0/UDP p;branch=z9hG4bKy\r\nFrom: <sip:b@c>;tag=1\r\nTo: <sip:a@d>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let message::Message::Request(req) = parse::parse_datagram(raw.as_bytes()).unwrap() else {
            panic!()
        };
        let src: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        assert_eq!(response_destination(&req, Transport::Udp, src), src);
        let resp = make_response(&req, 200, Some("t1"), src);
        let via = resp.headers.get(&HeaderName::Via).unwrap();
        assert!(via.starts_with("SIP/2.0/UDP 10.0.0.9:5070;branch=z9hG4bKx;received=192.0.2.1;rport=40000, SIP/2.0/UDP p"), "{via}");
        assert_eq!(resp.headers.get(&HeaderName::To), Some("<sip:a@d>;tag=t1"));
        let no_rport = raw.replace(";rport", "");
        let message::Message::Request(req) = parse::parse_datagram(no_rport.as_bytes()).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            response_destination(&req, Transport::Udp, src),
            "192.0.2.1:5070".parse().unwrap()
        );
    }
}
