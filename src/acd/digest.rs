//! Digest authentication of agents' phones (RFC 3261 §22.4 with RFC 7616's
//! algorithm and `qop`, and RFC 8760's SHA-256 for SIP).
//!
//! The engine challenges with one `WWW-Authenticate` value per algorithm, by
//! default SHA-256 first and MD5 second (RFC 8760 §2.4: the preferred one
//! first; a phone takes the first it supports), all with `qop="auth"`. Some
//! phones (SIPp among them) take the first challenge whatever it is: for them
//! the order is configurable. Nonces are stateless: the time
//! they were issued and a MAC over it with a per-process secret, so any nonce
//! the engine did not issue is refused and an old one is answered with
//! `stale=true` (the phone retries without asking its user). Passwords and
//! HA1 values never leave this module, and nothing here logs.
//!
//! Pure: the caller passes the time.

use hmac::{KeyInit, Mac};
use sha2::Digest as _;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// `MD5` or `SHA-256`, as in the `algorithm` parameter.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "SHA-256" => Some(Algorithm::Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(data.as_bytes())),
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(data.as_bytes())),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("not a Digest Authorization")]
    NotDigest,
    #[error("Authorization lacks {0}")]
    Missing(&'static str),
    #[error("unsupported algorithm")]
    Algorithm,
    #[error("unsupported qop")]
    Qop,
    #[error("malformed Authorization")]
    Malformed,
}

/// The parameters of an `Authorization` header (RFC 7616 §3.4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    /// `qop=auth` with its `cnonce` and `nc`; `None` for RFC 2069 style.
    pub qop: Option<(String, String)>,
}

/// Splits `k=v, k="v"` parameters; quoted values may hold commas and `\"`.
fn params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or(DigestError::Malformed)?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i);
                        break;
                    }
                    c => v.push(c),
                }
            }
            let end = end.ok_or(DigestError::Malformed)?;
            (v, q.get(end.saturating_add(1)..).unwrap_or(""))
        } else {
            let n = after.find(',').unwrap_or(after.len());
            (
                after.get(..n).unwrap_or("").trim().to_string(),
                after.get(n..).unwrap_or(""),
            )
        };
        out.push((key, value));
        rest = tail.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if out.len() > 32 {
            return Err(DigestError::Malformed);
        }
    }
    Ok(out)
}

impl Authorization {
    pub fn parse(value: &str) -> Result<Authorization, DigestError> {
        let v = value.trim_start();
        let scheme = v.get(..6).ok_or(DigestError::NotDigest)?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let ps = params(v.get(6..).unwrap_or(""))?;
        let get = |k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let need = |k: &'static str| get(k).ok_or(DigestError::Missing(k));
        let algorithm = match get("algorithm").as_deref().map(str::to_ascii_uppercase) {
            None => Algorithm::Md5,
            Some(a) if a == "MD5" => Algorithm::Md5,
            Some(a) if a == "SHA-256" => Algorithm::Sha256,
            Some(_) => return Err(DigestError::Algorithm),
        };
        let qop = match get("qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => Some((need("cnonce")?, need("nc")?)),
            Some(_) => return Err(DigestError::Qop),
        };
        Ok(Authorization {
            username: need("username")?,
            realm: need("realm")?,
            nonce: need("nonce")?,
            uri: need("uri")?,
            response: need("response")?.to_ascii_lowercase(),
            algorithm,
            qop,
        })
    }

    /// The response a phone knowing `password` sends for `method`.
    pub fn expected(&self, method: &str, password: &str) -> String {
        let a = self.algorithm;
        let ha1 = a.hash(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = a.hash(&format!("{method}:{}", self.uri));
        match &self.qop {
            Some((cnonce, nc)) => a.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce)),
            None => a.hash(&format!("{ha1}:{}:{ha2}", self.nonce)),
        }
    }

    /// Whether the response proves `password` (compared in constant time).
    pub fn verify(&self, method: &str, password: &str) -> bool {
        let want = self.expected(method, password);
        want.len() == self.response.len()
            && want
                .bytes()
                .zip(self.response.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// What a nonce in an Authorization turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    Valid,
    /// Issued by us but too old: challenge again with `stale=true`.
    Stale,
    /// Not one of ours.
    Invalid,
}

/// Issues and checks stateless nonces: `<seconds since epoch, hex>.<MAC>`.
#[derive(Clone)]
pub struct Nonces {
    secret: [u8; 32],
    epoch: Instant,
    lifetime: Duration,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nonces")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

impl Nonces {
    pub fn new(secret: [u8; 32], epoch: Instant, lifetime: Duration) -> Nonces {
        Nonces {
            secret,
            epoch,
            lifetime,
        }
    }

    fn mac(&self, stamp: &str) -> String {
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(&self.secret).expect("any key length");
        m.update(stamp.as_bytes());
        let out = m.finalize().into_bytes();
        hex(out.get(..16).unwrap_or(&out))
    }

    pub fn issue(&self, now: Instant) -> String {
        let stamp = format!("{:x}", now.saturating_duration_since(self.epoch).as_secs());
        let mac = self.mac(&stamp);
        format!("{stamp}.{mac}")
    }

    pub fn check(&self, nonce: &str, now: Instant) -> NonceCheck {
        let Some((stamp, mac)) = nonce.split_once('.') else {
            return NonceCheck::Invalid;
        };
        let Ok(secs) = u64::from_str_radix(stamp, 16) else {
            return NonceCheck::Invalid;
        };
        let want = self.mac(stamp);
        if want.len() != mac.len()
            || want
                .bytes()
                .zip(mac.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                != 0
        {
            return NonceCheck::Invalid;
        }
        let age = now
            .saturating_duration_since(self.epoch)
            .as_secs()
            .saturating_sub(secs);
        if age > self.lifetime.as_secs() {
            NonceCheck::Stale
        } else {
            NonceCheck::Valid
        }
    }
}

/// The `WWW-Authenticate` values of a challenge, one per algorithm, in order
/// of preference (RFC 8760 §2.4; default SHA-256, then MD5).
pub fn challenge(realm: &str, nonce: &str, stale: bool, algorithms: &[Algorithm]) -> Vec<String> {
    algorithms
        .iter()
        .map(|a| {
            format!(
                "Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={}, qop=\"auth\"{}",
                a.name(),
                if stale { ", stale=true" } else { "" }
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the example request for "Mufasa", in both algorithms.
    fn rfc7616(alg: &str, response: &str) -> String {
        format!(
            "Digest username=\"Mufasa\", realm=\"http-auth@example.org\", uri=\"/dir/index.html\", \
             algorithm={alg}, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", nc=00000001, \
             cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\", qop=auth, \
             response=\"{response}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn rfc7616_example_values_md5_and_sha256() {
        let md5 =
            Authorization::parse(&rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec")).unwrap();
        assert_eq!(md5.algorithm, Algorithm::Md5);
        assert!(md5.verify("GET", "Circle of Life"));
        assert!(!md5.verify("GET", "circle of life"));
        let sha = Authorization::parse(&rfc7616(
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ))
        .unwrap();
        assert_eq!(sha.algorithm, Algorithm::Sha256);
        assert!(sha.verify("GET", "Circle of Life"));
        assert!(
            !sha.verify("POST", "Circle of Life"),
            "the method is signed"
        );
    }

    #[test]
    fn rfc2617_style_without_qop_still_verifies() {
        // RFC 2617 §3.5's example (MD5, qop=auth) re-derived without qop.
        let mut a = Authorization::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", response=\"x\"",
        )
        .unwrap();
        assert_eq!(a.qop, None);
        a.response = a.expected("GET", "Circle Of Life");
        assert!(a.verify("GET", "Circle Of Life"));
        // RFC 2617's own qop=auth example value.
        let b = Authorization::parse(
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\"",
        )
        .unwrap();
        assert!(b.verify("GET", "Circle Of Life"));
    }

    #[test]
    fn malformed_and_foreign_headers_are_errors() {
        for bad in [
            "Basic dXNlcjpwYXNz",
            "Digest username=\"a",
            "Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"r\"",
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, algorithm=SHA-512-256",
            "Digest username=a, realm=r, nonce=n, uri=u, response=r, qop=auth-int, cnonce=c, nc=1",
            "Dig",
            "",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nonces_expire_as_stale_and_foreign_ones_are_invalid() {
        let t0 = Instant::now();
        let n = Nonces::new([7; 32], t0, Duration::from_secs(300));
        let nonce = n.issue(t0 + Duration::from_secs(10));
        assert_eq!(
            n.check(&nonce, t0 + Duration::from_secs(300)),
            NonceCheck::Valid
        );
        assert_eq!(
            n.check(&nonce, t0 + Duration::from_secs(311)),
            NonceCheck::Stale
        );
        let other = Nonces::new([8; 32], t0, Duration::from_secs(300));
        assert_eq!(
            other.check(&nonce, t0 + Duration::from_secs(11)),
            NonceCheck::Invalid
        );
        assert_eq!(n.check("a.b", t0), NonceCheck::Invalid);
        assert_eq!(n.check("zz", t0), NonceCheck::Invalid);
        let c = challenge("vaxel", &nonce, true, &[Algorithm::Sha256, Algorithm::Md5]);
        assert!(c[0].contains("algorithm=SHA-256") && c[0].contains("stale=true"));
        assert!(c[1].contains("algorithm=MD5") && c[1].contains("qop=\"auth\""));
    }
}
