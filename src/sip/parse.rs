//! SIP message parser (RFC 3261 §7, §18.3 framing; RFC 4475 conformance).
//!
//! Two layers: [`frame`] finds a message's extent in a datagram or a TCP byte
//! stream; [`parse_message`] splits start line and headers (unfolding, compact
//! forms) and validates what a UAS must check before acting. Errors are precise
//! ([`ParseError`]) and carry, for requests, the headers needed to answer with a
//! stateless error response. Never panics, never allocates past [`MAX_MESSAGE`].

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::header::{is_token, CSeq, NameAddr, Scheme, Uri, Via};
use super::message::{HeaderName, Headers, Message, Method, Request, Response};
use thiserror::Error;

/// The largest message accepted (UDP datagram or TCP message).
pub const MAX_MESSAGE: usize = 65_535;
/// The most header fields accepted in one message.
pub const MAX_HEADERS: usize = 256;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("Message Too Large")]
    TooLarge,
    #[error("Malformed Start Line")]
    BadStartLine,
    #[error("Bad Request-URI")]
    BadRequestUri,
    #[error("Unsupported URI Scheme")]
    UnsupportedScheme,
    #[error("Version Not Supported")]
    BadVersion,
    #[error("Malformed Header Line")]
    BadHeaderLine,
    #[error("Too Many Headers")]
    TooManyHeaders,
    #[error("Bad {0} Header")]
    BadHeader(&'static str),
    #[error("Missing {0} Header")]
    MissingHeader(&'static str),
    #[error("Duplicate {0} Header")]
    DuplicateHeader(&'static str),
    #[error("Bad Content-Length")]
    BadContentLength,
    #[error("Content-Length Mismatch")]
    ContentLengthMismatch,
    #[error("CSeq Method Mismatch")]
    CSeqMismatch,
    #[error("Bad URI")]
    BadUri,
    #[error("Bad Address")]
    BadNameAddr,
    #[error("Unterminated Quoted String")]
    UnterminatedQuote,
    #[error("Bad Status Code")]
    BadStatus,
}

impl ParseError {
    /// The status code a UAS answers a request with this defect (RFC 3261 §8.2, §21).
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadVersion => 505,
            ParseError::UnsupportedScheme => 416,
            ParseError::TooLarge => 513,
            _ => 400,
        }
    }
}

/// A message that could not be accepted. `headers` is set when it looked like a
/// request and its header section could be split, so a stateless answer can be
/// built from its Via/From/To/Call-ID/CSeq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    pub error: ParseError,
    pub headers: Option<Headers>,
}

impl From<ParseError> for Malformed {
    fn from(error: ParseError) -> Self {
        Malformed {
            error,
            headers: None,
        }
    }
}

/// Where a message ends in a byte stream (TCP), per §18.3.
#[derive(Debug, PartialEq, Eq)]
pub enum Framing {
    /// Bytes `[skip..end]` are one message; the caller drops `..end` afterwards.
    Complete { skip: usize, end: usize },
    /// Keep reading.
    Incomplete,
    /// Only keep-alive CRLFs (RFC 5626 §3.5.1): drop `n` bytes.
    KeepAlive(usize),
    /// The stream cannot be framed (bad Content-Length, oversize): close it.
    Broken(ParseError),
}

fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    // Returns (end of header section, start of body): the first LF followed by
    // LF or CRLF.
    buf.iter().enumerate().find_map(|(i, b)| {
        if *b != b'\n' {
            return None;
        }
        let after = buf.get(i.checked_add(1)?..)?;
        if after.starts_with(b"\n") {
            Some((i, i.checked_add(2)?))
        } else if after.starts_with(b"\r\n") {
            Some((i, i.checked_add(3)?))
        } else {
            None
        }
    })
}

fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| **b == b'\r' || **b == b'\n')
        .count()
}

/// Frames one message at the start of a TCP stream buffer. Content-Length is
/// mandatory on streams (§18.3).
pub fn frame_stream(buf: &[u8]) -> Framing {
    let skip = leading_crlf(buf);
    if skip == buf.len() {
        return if skip >= 2 {
            Framing::KeepAlive(skip)
        } else {
            Framing::Incomplete
        };
    }
    let rest = buf.get(skip..).unwrap_or_default();
    let Some((hdr_end, body_start)) = find_header_end(rest) else {
        return if rest.len() > MAX_MESSAGE {
            Framing::Broken(ParseError::TooLarge)
        } else {
            Framing::Incomplete
        };
    };
    let head = String::from_utf8_lossy(rest.get(..hdr_end).unwrap_or_default());
    let mut cl: Option<usize> = None;
    for line in head.split('\n').skip(1) {
        if let Some((n, v)) = line.split_once(':') {
            if matches!(HeaderName::parse(n.trim()), HeaderName::ContentLength) {
                let v = v.trim();
                match v.parse::<usize>() {
                    Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) && cl.is_none_or(|c| c == n) => {
                        cl = Some(n)
                    }
                    _ => return Framing::Broken(ParseError::BadContentLength),
                }
            }
        }
    }
    let Some(cl) = cl else {
        return Framing::Broken(ParseError::MissingHeader("Content-Length"));
    };
    let Some(len) = body_start.checked_add(cl).filter(|l| *l <= MAX_MESSAGE) else {
        return Framing::Broken(ParseError::TooLarge);
    };
    if rest.len() < len {
        return Framing::Incomplete;
    }
    match skip.checked_add(len) {
        Some(end) => Framing::Complete { skip, end },
        None => Framing::Broken(ParseError::TooLarge),
    }
}

/// Parses one UDP datagram: octets past Content-Length are ignored (RFC 4475
/// §3.1.1.8); a body shorter than Content-Length is an error (§3.1.2.2).
pub fn parse_datagram(buf: &[u8]) -> Result<Message, Malformed> {
    parse_message(buf, false)
}

/// Parses one framed message. `stream` is true for TCP, where Content-Length has
/// already delimited the message.
pub fn parse_message(buf: &[u8], stream: bool) -> Result<Message, Malformed> {
    // An oversized message is still read up to the limit, so that its headers
    // can carry the 513 back.
    let too_large = buf.len() > MAX_MESSAGE;
    let buf = buf.get(..MAX_MESSAGE).unwrap_or(buf);
    let buf = buf.get(leading_crlf(buf)..).unwrap_or_default();
    let (hdr_end, body_start) = match find_header_end(buf) {
        Some(x) => x,
        // A datagram with no blank line: headers only, no body.
        None => (buf.len(), buf.len()),
    };
    let head = String::from_utf8_lossy(buf.get(..hdr_end).unwrap_or_default());
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().ok_or(ParseError::BadStartLine)?;

    // Header fields, unfolding continuation lines (§7.3.1).
    let mut headers = Headers::default();
    let mut header_error = None;
    for line in lines {
        if line.starts_with(' ') || line.starts_with('\t') {
            match headers.0.last_mut() {
                Some((_, v)) => {
                    // Folding is one SP (§7.3.1); none when the value was
                    // empty, or when the continuation is only whitespace (a
                    // trailing SP would not survive printing and parsing).
                    let more = line.trim();
                    if !more.is_empty() {
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(more);
                    }
                }
                None => header_error = header_error.or(Some(ParseError::BadHeaderLine)),
            }
            continue;
        }
        match line.split_once(':') {
            Some((name, value))
                if is_token(name.trim_end()) && !name.starts_with(char::is_whitespace) =>
            {
                let name = HeaderName::parse(name.trim_end());
                if headers.0.len() >= MAX_HEADERS {
                    // Past the limit only what an error response needs is kept
                    // (bounded too), so the sender learns why it was refused.
                    header_error = Some(ParseError::TooManyHeaders);
                    let needed = matches!(
                        name,
                        HeaderName::Via
                            | HeaderName::From
                            | HeaderName::To
                            | HeaderName::CallId
                            | HeaderName::CSeq
                    );
                    if !needed || headers.0.len() >= MAX_HEADERS.saturating_add(8) {
                        continue;
                    }
                }
                headers.push(name, value.trim());
            }
            _ => header_error = header_error.or(Some(ParseError::BadHeaderLine)),
        }
    }

    let body_avail = buf.get(body_start..).unwrap_or_default();
    let is_request = !start.starts_with("SIP/");
    let fail = |error: ParseError, headers: &Headers| Malformed {
        error,
        headers: if is_request {
            Some(headers.clone())
        } else {
            None
        },
    };
    if too_large {
        return Err(fail(ParseError::TooLarge, &headers));
    }
    if let Some(e) = header_error {
        return Err(fail(e, &headers));
    }

    // Body per Content-Length.
    let body = match headers.count(&HeaderName::ContentLength) {
        0 => body_avail.to_vec(),
        1 => {
            let v = headers.get(&HeaderName::ContentLength).unwrap_or("");
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(ParseError::BadContentLength, &headers));
            }
            let n: usize = v
                .parse()
                .map_err(|_| fail(ParseError::BadContentLength, &headers))?;
            if stream && n != body_avail.len() {
                return Err(fail(ParseError::ContentLengthMismatch, &headers));
            }
            match body_avail.get(..n) {
                Some(body) => body.to_vec(),
                None => return Err(fail(ParseError::ContentLengthMismatch, &headers)),
            }
        }
        _ => {
            return Err(fail(
                ParseError::DuplicateHeader("Content-Length"),
                &headers,
            ))
        }
    };

    if is_request {
        let (method, uri) = parse_request_line(start).map_err(|e| fail(e, &headers))?;
        let req = Request {
            method,
            uri,
            headers,
            body,
        };
        validate_request(&req).map_err(|e| fail(e, &req.headers))?;
        Ok(Message::Request(req))
    } else {
        let (status, reason) = parse_status_line(start)?;
        let resp = Response {
            status,
            reason,
            headers,
            body,
        };
        validate_common(&resp.headers)?;
        Ok(Message::Response(resp))
    }
}

fn parse_request_line(line: &str) -> Result<(Method, String), ParseError> {
    // Exactly one SP between the three elements (§7.1; RFC 4475 §3.1.2.9/10).
    let mut parts = line.split(' ');
    let (m, u, v) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(u), Some(v), None) => (m, u, v),
        _ => return Err(ParseError::BadStartLine),
    };
    if !is_token(m) {
        return Err(ParseError::BadStartLine);
    }
    if !v.eq_ignore_ascii_case("SIP/2.0") {
        return Err(
            if v.as_bytes()
                .get(..4)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/"))
                && v.len() > 4
            {
                ParseError::BadVersion
            } else {
                ParseError::BadStartLine
            },
        );
    }
    let uri = Uri::parse(u).map_err(|_| ParseError::BadRequestUri)?;
    if uri.headers.is_some() {
        return Err(ParseError::BadRequestUri);
    }
    Ok((Method::from_token(m), u.to_string()))
}

fn parse_status_line(line: &str) -> Result<(u16, String), ParseError> {
    let rest = line
        .strip_prefix("SIP/2.0 ")
        .ok_or(ParseError::BadVersion)?;
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::BadStatus);
    }
    let status: u16 = code.parse().map_err(|_| ParseError::BadStatus)?;
    if !(100..700).contains(&status) {
        return Err(ParseError::BadStatus);
    }
    Ok((status, reason.to_string()))
}

/// Checks shared by requests and responses: the mandatory headers (§8.1.1) present,
/// once where only one is allowed, and well-formed.
fn validate_common(h: &Headers) -> Result<(), ParseError> {
    for (name, label) in [
        (HeaderName::CallId, "Call-ID"),
        (HeaderName::From, "From"),
        (HeaderName::To, "To"),
        (HeaderName::CSeq, "CSeq"),
    ] {
        match h.count(&name) {
            0 => return Err(ParseError::MissingHeader(label)),
            1 => {}
            _ => return Err(ParseError::DuplicateHeader(label)),
        }
    }
    for (name, label) in [
        (HeaderName::MaxForwards, "Max-Forwards"),
        (HeaderName::ContentType, "Content-Type"),
    ] {
        if h.count(&name) > 1 {
            return Err(ParseError::DuplicateHeader(label));
        }
    }
    let top = h
        .list(&HeaderName::Via)
        .next()
        .ok_or(ParseError::MissingHeader("Via"))?;
    Via::parse(top)?;
    if h.get(&HeaderName::CallId)
        .is_none_or(|c| c.is_empty() || c.contains(char::is_whitespace))
    {
        return Err(ParseError::BadHeader("Call-ID"));
    }
    NameAddr::parse(h.get(&HeaderName::From).unwrap_or(""))?;
    NameAddr::parse(h.get(&HeaderName::To).unwrap_or(""))?;
    CSeq::parse(h.get(&HeaderName::CSeq).unwrap_or(""))?;
    if let Some(mf) = h.get(&HeaderName::MaxForwards) {
        match mf.parse::<u16>() {
            Ok(n) if n <= 255 && mf.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(ParseError::BadHeader("Max-Forwards")),
        }
    }
    if let Some(e) = h.get(&HeaderName::Expires) {
        if !e.bytes().all(|b| b.is_ascii_digit()) || e.parse::<u32>().is_err() {
            return Err(ParseError::BadHeader("Expires"));
        }
    }
    Ok(())
}

fn validate_request(r: &Request) -> Result<(), ParseError> {
    validate_common(&r.headers)?;
    let cseq = CSeq::parse(r.headers.get(&HeaderName::CSeq).unwrap_or(""))?;
    if cseq.method != r.method.as_str() {
        return Err(ParseError::CSeqMismatch);
    }
    for c in r.headers.list(&HeaderName::Contact) {
        if c != "*" {
            let na = NameAddr::parse(c).map_err(|_| ParseError::BadHeader("Contact"))?;
            if let Some(Some(exp)) = super::header::param(&na.params, "expires") {
                if exp.parse::<u32>().is_err() {
                    return Err(ParseError::BadHeader("Contact"));
                }
            }
        }
    }
    // The Request-URI scheme is checked after syntax: unknown schemes get 416.
    let uri = Uri::parse(&r.uri).map_err(|_| ParseError::BadRequestUri)?;
    if matches!(uri.scheme, Scheme::Other(_)) {
        return Err(ParseError::UnsupportedScheme);
    }
    Ok(())
}

/// The Call-ID of a raw message, found without a full parse: the runtime uses it
/// to pick the shard that owns the call. Returns `None` when there is none.
pub fn peek_call_id(buf: &[u8]) -> Option<&[u8]> {
    peek_header(buf, b"call-id", b"i")
}

/// What a raw message is, found without a full parse: the front uses it to
/// rate-limit new dialogs and out-of-dialog requests per source before any
/// shard spends work on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peek {
    /// An INVITE that starts a dialog (no To tag).
    NewInvite,
    Register,
    /// OPTIONS and any other request outside a dialog (no To tag).
    OutOfDialog,
    /// ACK, CANCEL, and requests inside a dialog.
    InDialog,
    Response,
}

pub fn peek_kind(buf: &[u8]) -> Peek {
    let buf = buf.get(leading_crlf(buf)..).unwrap_or_default();
    if buf.starts_with(b"SIP/") {
        return Peek::Response;
    }
    let method = buf.split(|b| *b == b' ').next().unwrap_or_default();
    if method == b"ACK" || method == b"CANCEL" {
        return Peek::InDialog;
    }
    if method == b"REGISTER" {
        return Peek::Register;
    }
    let tagged = peek_header(buf, b"to", b"t").is_some_and(|to| {
        to.windows(5).any(|w| w.eq_ignore_ascii_case(b";tag="))
            || to.windows(6).any(|w| w.eq_ignore_ascii_case(b"; tag="))
    });
    match (method == b"INVITE", tagged) {
        (_, true) => Peek::InDialog,
        (true, false) => Peek::NewInvite,
        (false, false) => Peek::OutOfDialog,
    }
}

/// The raw value of the first header `long` (or its compact form), if any.
pub fn peek_header<'a>(buf: &'a [u8], long: &[u8], compact: &[u8]) -> Option<&'a [u8]> {
    for (n, line) in buf.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() || line == b"\r" {
            if n > 0 {
                return None; // end of the header section
            }
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, rest) = line.split_at(colon);
        let name = name.trim_ascii();
        if name.eq_ignore_ascii_case(long) || name.eq_ignore_ascii_case(compact) {
            return Some(rest.get(1..).unwrap_or_default().trim_ascii());
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    /// Found by the sip_message fuzz target: a continuation line of only
    /// whitespace left a trailing space that printing and parsing again lost.
    #[test]
    fn a_whitespace_only_continuation_line_adds_nothing() {
        let raw = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:c@d>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nX-New: value\r\n contin\n  \n\r\n";
        let m = parse_datagram(raw.as_bytes()).unwrap();
        assert_eq!(
            m.headers().get(&HeaderName::Other("x-new".into())),
            Some("value contin")
        );
        let again = parse_datagram(&m.to_bytes()).unwrap();
        assert_eq!(
            again.headers().get(&HeaderName::Other("x-new".into())),
            Some("value contin")
        );
    }

    #[test]
    fn peeks_the_kind_of_request() {
        let m = |s: &str| peek_kind(s.as_bytes());
        assert_eq!(
            m("INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n"),
            Peek::NewInvite
        );
        assert_eq!(
            m("INVITE sip:a@b SIP/2.0\r\nt: <sip:a@b>;tag=x\r\n\r\n"),
            Peek::InDialog
        );
        assert_eq!(
            m("OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\n"),
            Peek::OutOfDialog
        );
        assert_eq!(
            m("BYE sip:a@b SIP/2.0\r\nTo: <sip:a@b>;TAG=1\r\n\r\n"),
            Peek::InDialog
        );
        assert_eq!(m("REGISTER sip:b SIP/2.0\r\n\r\n"), Peek::Register);
        assert_eq!(m("ACK sip:a@b SIP/2.0\r\n\r\n"), Peek::InDialog);
        assert_eq!(m("SIP/2.0 200 OK\r\n\r\n"), Peek::Response);
        // The To header's tag must be in To, not in a body.
        assert_eq!(
            m("INVITE sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\nTo: x;tag=1"),
            Peek::NewInvite
        );
        for junk in ["", "\r\n", "INVITE", ":", "\n\n\n"] {
            let _ = m(junk);
        }
    }

    const INVITE: &str = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK776;rport\r\n\
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKb\r\n\
        f: \"Alice\" <sip:alice@127.0.0.1>;tag=1\r\n\
        t: <sip:100@127.0.0.1>\r\n\
        i: abc@127.0.0.1\r\n\
        CSeq: 1 INVITE\r\n\
        Subject: folded\r\n  continuation\r\n\
        l: 4\r\n\r\nv=0\r";

    #[test]
    fn parses_compact_folded_and_lists() {
        let Message::Request(r) = parse_datagram(INVITE.as_bytes()).unwrap() else {
            panic!("not a request")
        };
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.headers.list(&HeaderName::Via).count(), 3);
        assert_eq!(
            r.headers.get(&HeaderName::Other("subject".into())),
            Some("folded continuation")
        );
        assert_eq!(r.body, b"v=0\r");
        assert_eq!(peek_call_id(INVITE.as_bytes()), Some(&b"abc@127.0.0.1"[..]));
    }

    #[test]
    fn round_trip() {
        let m = parse_datagram(INVITE.as_bytes()).unwrap();
        let again = parse_datagram(&m.to_bytes()).unwrap();
        assert_eq!(m, again);
    }

    #[test]
    fn stream_framing() {
        let msg = INVITE.as_bytes();
        assert_eq!(frame_stream(&msg[..20]), Framing::Incomplete);
        assert_eq!(frame_stream(&msg[..msg.len() - 1]), Framing::Incomplete);
        let mut two = b"\r\n".to_vec();
        two.extend_from_slice(msg);
        two.extend_from_slice(msg);
        assert_eq!(
            frame_stream(&two),
            Framing::Complete {
                skip: 2,
                end: 2 + msg.len()
            }
        );
        assert_eq!(frame_stream(b"\r\n\r\n"), Framing::KeepAlive(4));
        let no_cl = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n\r\n";
        assert!(matches!(frame_stream(no_cl), Framing::Broken(_)));
    }

    #[test]
    fn errors_carry_headers_for_a_reply() {
        let bad = INVITE.replace("INVITE sip:", "INVITE  sip:");
        let e = parse_datagram(bad.as_bytes()).unwrap_err();
        assert_eq!(e.error, ParseError::BadStartLine);
        assert!(e.headers.is_some());
        let bad = INVITE.replace("SIP/2.0\r\nv:", "SIP/7.0\r\nv:");
        assert_eq!(
            parse_datagram(bad.as_bytes()).unwrap_err().error.status(),
            505
        );
    }

    #[test]
    fn never_panics_on_prefixes_and_garbage() {
        let msg = INVITE.as_bytes();
        for n in 0..msg.len() {
            let _ = parse_datagram(&msg[..n]);
            let _ = frame_stream(&msg[..n]);
        }
        for seed in 0..2000u32 {
            let mut m = msg.to_vec();
            let i = (seed as usize * 7919) % m.len();
            m[i] = (seed % 256) as u8;
            let _ = parse_datagram(&m);
        }
    }
}
