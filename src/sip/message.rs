//! SIP message model and printer (RFC 3261 §7, §20).
//!
//! Headers are kept in wire order as (name, value) pairs with the compact forms
//! (§7.3.3) expanded, so that a proxy-like copy of Via/Record-Route keeps order and
//! content. Structured views (Via, name-addr, CSeq) are parsed on demand by
//! [`super::header`]. This module never does I/O.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::fmt::{self, Write as _};

/// A SIP method (RFC 3261 §7.1 and extensions). Unknown methods keep their token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Other(String),
}

impl Method {
    pub fn from_token(s: &str) -> Method {
        match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        }
    }

    /// The methods counted apart in the metrics; anything else is `OTHER`.
    pub const COUNTED: [&'static str; 15] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "PRACK",
        "UPDATE",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "PUBLISH",
        "OTHER",
    ];

    /// The method's place in [`Method::COUNTED`].
    pub fn counted(&self) -> usize {
        match self {
            Method::Invite => 0,
            Method::Ack => 1,
            Method::Bye => 2,
            Method::Cancel => 3,
            Method::Options => 4,
            Method::Register => 5,
            Method::Info => 6,
            Method::Prack => 7,
            Method::Update => 8,
            Method::Subscribe => 9,
            Method::Notify => 10,
            Method::Refer => 11,
            Method::Message => 12,
            Method::Publish => 13,
            Method::Other(_) => 14,
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names the engine looks at; anything else is kept as `Other` (lower-cased
/// for comparison, original spelling for printing).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentLength,
    ContentType,
    Route,
    RecordRoute,
    Require,
    ProxyRequire,
    Supported,
    Allow,
    Accept,
    Unsupported,
    RetryAfter,
    Expires,
    UserAgent,
    Server,
    Other(String),
}

impl HeaderName {
    /// Parses a header name case-insensitively, expanding compact forms (§7.3.3).
    pub fn parse(name: &str) -> HeaderName {
        if let [c] = name.as_bytes() {
            match c.to_ascii_lowercase() {
                b'v' => return HeaderName::Via,
                b'f' => return HeaderName::From,
                b't' => return HeaderName::To,
                b'i' => return HeaderName::CallId,
                b'm' => return HeaderName::Contact,
                b'l' => return HeaderName::ContentLength,
                b'c' => return HeaderName::ContentType,
                b'k' => return HeaderName::Supported,
                _ => {}
            }
        }
        let eq = |s: &str| name.eq_ignore_ascii_case(s);
        if eq("Via") {
            HeaderName::Via
        } else if eq("From") {
            HeaderName::From
        } else if eq("To") {
            HeaderName::To
        } else if eq("Call-ID") {
            HeaderName::CallId
        } else if eq("CSeq") {
            HeaderName::CSeq
        } else if eq("Contact") {
            HeaderName::Contact
        } else if eq("Max-Forwards") {
            HeaderName::MaxForwards
        } else if eq("Content-Length") {
            HeaderName::ContentLength
        } else if eq("Content-Type") {
            HeaderName::ContentType
        } else if eq("Route") {
            HeaderName::Route
        } else if eq("Record-Route") {
            HeaderName::RecordRoute
        } else if eq("Require") {
            HeaderName::Require
        } else if eq("Proxy-Require") {
            HeaderName::ProxyRequire
        } else if eq("Supported") {
            HeaderName::Supported
        } else if eq("Allow") {
            HeaderName::Allow
        } else if eq("Accept") {
            HeaderName::Accept
        } else if eq("Unsupported") {
            HeaderName::Unsupported
        } else if eq("Retry-After") {
            HeaderName::RetryAfter
        } else if eq("Expires") {
            HeaderName::Expires
        } else if eq("User-Agent") {
            HeaderName::UserAgent
        } else if eq("Server") {
            HeaderName::Server
        } else {
            HeaderName::Other(name.to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Via => "Via",
            HeaderName::From => "From",
            HeaderName::To => "To",
            HeaderName::CallId => "Call-ID",
            HeaderName::CSeq => "CSeq",
            HeaderName::Contact => "Contact",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::Route => "Route",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::Require => "Require",
            HeaderName::ProxyRequire => "Proxy-Require",
            HeaderName::Supported => "Supported",
            HeaderName::Allow => "Allow",
            HeaderName::Accept => "Accept",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::RetryAfter => "Retry-After",
            HeaderName::Expires => "Expires",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Server => "Server",
            HeaderName::Other(s) => s,
        }
    }

    /// Whether two names denote the same header (case-insensitive for `Other`).
    pub fn same(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            (a, b) => a == b,
        }
    }
}

/// Headers in wire order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(HeaderName, String)>);

impl Headers {
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push((name, value.into()));
    }

    /// The first value of a header (the raw field value, possibly comma-joined).
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.same(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every field value of a header, in order; comma-joined lists are *not* split.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.same(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every element of a list header (§7.3.1): repeated fields and comma-joined
    /// values alike, splitting only at commas outside quotes and angle brackets.
    pub fn list<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.get_all(name).flat_map(split_list)
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|(n, _)| n.same(name)).count()
    }

    pub fn remove(&mut self, name: &HeaderName) {
        self.0.retain(|(n, _)| !n.same(name));
    }
}

/// Splits a comma-separated header value at top-level commas.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut in_quote, mut in_angle, mut escaped) = (0, false, false, false);
    for (i, &b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' if in_quote => escaped = true,
            b'"' => in_quote = !in_quote,
            b'<' if !in_quote => in_angle = true,
            b'>' if !in_quote => in_angle = false,
            b',' if !in_quote && !in_angle => {
                parts.push(value[start..i].trim());
                start = i.saturating_add(1);
            }
            _ => {}
        }
    }
    parts.push(value[start..].trim());
    parts.into_iter().filter(|p| !p.is_empty())
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    /// The Request-URI as received (validated by the parser).
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// The standard reason phrase for a status code (RFC 3261 §21).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        _ => "Unknown",
    }
}

fn write_headers(out: &mut String, headers: &Headers, body: &[u8]) {
    for (name, value) in &headers.0 {
        if matches!(name, HeaderName::ContentLength) {
            continue;
        }
        let _ = write!(out, "{}: {}\r\n", name.as_str(), value);
    }
    // Content-Length is always printed and always right: required on TCP (§18.3).
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
}

impl Request {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(self.body.len().saturating_add(512));
        let _ = write!(s, "{} {} SIP/2.0\r\n", self.method, self.uri);
        write_headers(&mut s, &self.headers, &self.body);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

impl Response {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(self.body.len().saturating_add(512));
        let _ = write!(s, "SIP/2.0 {} {}\r\n", self.status, self.reason);
        write_headers(&mut s, &self.headers, &self.body);
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}
