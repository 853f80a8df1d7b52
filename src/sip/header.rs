//! Structured views of the headers the engine acts on: URIs (RFC 3261 §19.1,
//! RFC 3966 `tel:`), name-addr / addr-spec (§20.10, §25.1), Via (§20.42, RFC 3581),
//! CSeq (§20.16). Pure parsing; every function returns an error instead of
//! panicking on any input.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use super::parse::ParseError;

pub type Params = Vec<(String, Option<String>)>;

/// URI schemes the engine serves; others get `416` (RFC 3261 §8.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    Sip,
    Sips,
    Tel,
    Other(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    pub scheme: Scheme,
    /// The user part (or the `tel:` number), still %-escaped.
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// The `?headers` part, if any (not allowed in a Request-URI).
    pub headers: Option<String>,
}

pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Parses `;name[=value]` parameter lists. Empty parameters are an error.
pub fn parse_params(s: &str) -> Result<Params, ParseError> {
    let mut out = Vec::new();
    if s.trim().is_empty() {
        return Ok(out);
    }
    for raw in s.split(';') {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ParseError::BadHeader("parameter"));
        }
        match raw.split_once('=') {
            Some((n, v)) => {
                let (n, v) = (n.trim(), v.trim());
                if !is_token(n) || v.is_empty() {
                    return Err(ParseError::BadHeader("parameter"));
                }
                out.push((n.to_ascii_lowercase(), Some(v.to_string())));
            }
            None => {
                if !is_token(raw) {
                    return Err(ParseError::BadHeader("parameter"));
                }
                out.push((raw.to_ascii_lowercase(), None));
            }
        }
    }
    Ok(out)
}

pub fn param<'a>(params: &'a Params, name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref())
}

fn parse_hostport(s: &str) -> Result<(String, Option<u16>), ParseError> {
    let bad = ParseError::BadUri;
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or(bad.clone())?;
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad);
        }
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad.clone())?),
            None if after.is_empty() => None,
            None => return Err(bad),
        };
        return Ok((format!("[{host}]"), port));
    }
    let (host, port) = match s.split_once(':') {
        Some((h, p)) => {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad);
            }
            (h, Some(p.parse::<u16>().map_err(|_| bad.clone())?))
        }
        None => (s, None),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(bad);
    }
    Ok((host.to_ascii_lowercase(), port))
}

impl Uri {
    pub fn parse(s: &str) -> Result<Uri, ParseError> {
        let bad = ParseError::BadUri;
        if s.bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == b'"')
        {
            return Err(bad);
        }
        let (scheme, rest) = s.split_once(':').ok_or(bad.clone())?;
        if scheme.is_empty()
            || !scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            return Err(bad);
        }
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "sip" => Scheme::Sip,
            "sips" => Scheme::Sips,
            "tel" => Scheme::Tel,
            other => Scheme::Other(other.to_string()),
        };
        match scheme {
            Scheme::Sip | Scheme::Sips => {
                // userinfo may itself hold ';', '?' and '/': it ends at the last '@'.
                let (user, hostpart) = match rest.rfind('@') {
                    Some(i) => (rest.get(..i), rest.get(i.saturating_add(1)..).unwrap_or("")),
                    None => (None, rest),
                };
                if let Some(u) = user {
                    if u.is_empty() {
                        return Err(bad);
                    }
                }
                let (before_headers, headers) = match hostpart.split_once('?') {
                    Some((a, h)) => (a, Some(h.to_string())),
                    None => (hostpart, None),
                };
                let (hostport, params) = match before_headers.split_once(';') {
                    Some((hp, p)) => (hp, parse_params(p).map_err(|_| bad.clone())?),
                    None => (before_headers, Vec::new()),
                };
                let (host, port) = parse_hostport(hostport)?;
                Ok(Uri {
                    scheme,
                    user: user.map(str::to_string),
                    host,
                    port,
                    params,
                    headers,
                })
            }
            Scheme::Tel => {
                let (number, params) = match rest.split_once(';') {
                    Some((n, p)) => (n, parse_params(p).map_err(|_| bad.clone())?),
                    None => (rest, Vec::new()),
                };
                if number.is_empty() {
                    return Err(bad);
                }
                Ok(Uri {
                    scheme,
                    user: Some(number.to_string()),
                    host: String::new(),
                    port: None,
                    params,
                    headers: None,
                })
            }
            Scheme::Other(_) => Ok(Uri {
                scheme,
                user: None,
                host: rest.to_string(),
                port: None,
                params: Vec::new(),
                headers: None,
            }),
        }
    }
}

/// `name-addr` or `addr-spec` with header parameters (To, From, Contact, Route).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    /// The URI text, unparsed: its scheme may be one the engine does not know.
    pub uri: String,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(value: &str) -> Result<NameAddr, ParseError> {
        let v = value.trim();
        let bad = ParseError::BadNameAddr;
        let (display, after_display) = if let Some(rest) = v.strip_prefix('"') {
            let mut escaped = false;
            let mut end = None;
            for (i, b) in rest.bytes().enumerate() {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    end = Some(i);
                    break;
                }
            }
            let end = end.ok_or(ParseError::UnterminatedQuote)?;
            let after = rest.get(end.saturating_add(1)..).unwrap_or("").trim_start();
            if !after.starts_with('<') {
                return Err(bad);
            }
            (Some(rest[..end].to_string()), after)
        } else if let Some(lt) = v.find('<') {
            let d = v[..lt].trim();
            if !d.is_empty() && !d.split_whitespace().all(is_token) {
                return Err(bad);
            }
            (
                if d.is_empty() {
                    None
                } else {
                    Some(d.to_string())
                },
                &v[lt..],
            )
        } else {
            // addr-spec: parameters after the first ';' belong to the header, and the
            // URI can carry no header part (RFC 3261 §20.10).
            let (uri, params) = match v.split_once(';') {
                Some((u, p)) => (u.trim(), parse_params(p)?),
                None => (v, Vec::new()),
            };
            if uri.is_empty()
                || uri.contains('?')
                || uri.contains(',')
                || uri.bytes().any(|b| b <= b' ')
            {
                return Err(bad);
            }
            return Ok(NameAddr {
                display: None,
                uri: uri.to_string(),
                params,
            });
        };
        let inner = after_display.strip_prefix('<').ok_or(bad.clone())?;
        let (uri, rest) = inner.split_once('>').ok_or(bad.clone())?;
        // Liberal: tolerate LWS inside the brackets (RFC 4475 §3.1.2.14).
        let uri = uri.trim();
        if uri.is_empty() || uri.bytes().any(|b| b <= b' ') {
            return Err(bad);
        }
        let rest = rest.trim();
        let params = if rest.is_empty() {
            Vec::new()
        } else {
            parse_params(rest.strip_prefix(';').ok_or(bad)?)?
        };
        Ok(NameAddr {
            display,
            uri: uri.to_string(),
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").flatten()
    }
}

/// One Via element (RFC 3261 §20.42; `rport`/`received`, RFC 3581).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    pub fn parse(value: &str) -> Result<Via, ParseError> {
        let bad = ParseError::BadHeader("Via");
        let v = value.trim();
        // sent-protocol allows LWS around the slashes.
        let mut parts = Vec::with_capacity(3);
        let mut rest = v;
        for _ in 0..2 {
            let (p, r) = rest.split_once('/').ok_or(bad.clone())?;
            parts.push(p.trim());
            rest = r.trim_start();
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .ok_or(bad.clone())?;
        parts.push(&rest[..end]);
        let rest = rest[end..].trim_start();
        // The version is checked on the request line (505); any token is kept here
        // so that a request of another version can still be answered.
        let [protocol, version, transport] = parts[..] else {
            return Err(bad);
        };
        if !protocol.eq_ignore_ascii_case("SIP") || !is_token(version) || !is_token(transport) {
            return Err(bad);
        }
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s.trim(), parse_params(p).map_err(|_| bad.clone())?),
            None => (rest.trim(), Vec::new()),
        };
        let (host, port) = parse_hostport(sent_by).map_err(|_| bad.clone())?;
        // Port 0 is no port: a response could never reach it.
        if port == Some(0) {
            return Err(bad);
        }
        Ok(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").flatten()
    }
}

/// CSeq (RFC 3261 §20.16): a 32-bit sequence number below 2^31 and a method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: String,
}

impl CSeq {
    pub fn parse(value: &str) -> Result<CSeq, ParseError> {
        let bad = ParseError::BadHeader("CSeq");
        let mut it = value.split_whitespace();
        let (n, m) = (it.next().ok_or(bad.clone())?, it.next().ok_or(bad.clone())?);
        if it.next().is_some() || !n.bytes().all(|b| b.is_ascii_digit()) || !is_token(m) {
            return Err(bad);
        }
        let seq: u32 = n.parse().map_err(|_| bad.clone())?;
        if seq >= 1 << 31 {
            return Err(bad);
        }
        Ok(CSeq {
            seq,
            method: m.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    #[test]
    fn uri_forms() {
        let u = Uri::parse("sip:+4681234@example.com:5070;transport=udp;lr").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("+4681234"));
        assert_eq!(u.port, Some(5070));
        assert_eq!(param(&u.params, "lr"), Some(None));
        let t = Uri::parse("tel:+46812345").unwrap();
        assert_eq!(t.user.as_deref(), Some("+46812345"));
        assert!(Uri::parse("sip:user@example.com?Route=%3Csip:x%3E")
            .unwrap()
            .headers
            .is_some());
        assert!(Uri::parse("sip:[2001:db8::1]:5060").is_ok());
        assert!(Uri::parse("sip:a b").is_err());
        assert!(Uri::parse("").is_err());
        assert!(Uri::parse("sip:").is_err());
        assert!(Uri::parse("sip:h:99999").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let n = NameAddr::parse("\"A \\\"B\\\"\" <sip:a@b>;tag=x").unwrap();
        assert_eq!(n.display.as_deref(), Some("A \\\"B\\\""));
        assert_eq!(n.tag(), Some("x"));
        let n = NameAddr::parse("sip:a@b;tag=1").unwrap();
        assert_eq!(n.uri, "sip:a@b");
        assert_eq!(n.tag(), Some("1"));
        assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_err());
        assert!(NameAddr::parse("sip:a@b?Route=x").is_err());
        assert!(NameAddr::parse("Bell, Alexander <sip:a@b>").is_err());
    }

    #[test]
    fn via_forms() {
        let v = Via::parse("SIP / 2.0 / UDP 10.0.0.1:5062;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.port, Some(5062));
        assert_eq!(v.branch(), Some("z9hG4bK1"));
        assert_eq!(param(&v.params, "rport"), Some(None));
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;,;,,").is_err());
    }

    #[test]
    fn cseq_limits() {
        assert_eq!(CSeq::parse("4711 INVITE").unwrap().seq, 4711);
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("-1 INVITE").is_err());
    }
}
