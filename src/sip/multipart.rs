//! `multipart/mixed` bodies (RFC 2046 §5.1, as used by SIP in RFC 5621): finds
//! the parts between boundary delimiter lines and splits each into its header
//! section and content. Pure and total: every offset is checked, a body the
//! grammar does not allow is a [`MultipartError`], never a panic.
//!
//! What it never does: decode transfer encodings, recurse into nested
//! multiparts, or copy more than the part it returns.

#![deny(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use thiserror::Error;

/// The longest boundary RFC 2046 allows.
pub const MAX_BOUNDARY: usize = 70;
/// More parts than any SIP body needs; past this the body is refused.
pub const MAX_PARTS: usize = 16;

#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum MultipartError {
    #[error("multipart body has no boundary parameter")]
    NoBoundary,
    #[error("multipart boundary is empty, longer than 70 characters, or has characters RFC 2046 forbids")]
    BadBoundary,
    #[error("multipart body has no closing delimiter")]
    Unterminated,
    #[error("multipart body has more than {MAX_PARTS} parts")]
    TooManyParts,
    #[error("multipart part has no blank line after its headers")]
    BadPart,
}

impl MultipartError {
    /// The status a UAS answers a request carrying such a body with.
    pub fn status(&self) -> u16 {
        400
    }
}

/// One body part: its header lines (unparsed) and its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub headers: &'a str,
    pub content: &'a [u8],
}

impl Part<'_> {
    /// The part's media type (`Content-Type` without parameters), lower-cased;
    /// `text/plain` when absent (RFC 2046 §5.1).
    pub fn content_type(&self) -> String {
        self.headers
            .lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                let n = n.trim();
                (n.eq_ignore_ascii_case("content-type") || n.eq_ignore_ascii_case("c")).then(|| {
                    v.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                })
            })
            .unwrap_or_else(|| "text/plain".into())
    }
}

/// The `boundary` parameter of a Content-Type value, validated (RFC 2046 §5.1.1:
/// 1–70 characters from `bchars`, not ending in a space).
pub fn boundary(content_type: &str) -> Result<&str, MultipartError> {
    let raw = content_type
        .split(';')
        .skip(1)
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then_some(v.trim())
        })
        .ok_or(MultipartError::NoBoundary)?;
    let b = match raw.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"').ok_or(MultipartError::BadBoundary)?,
        None => raw,
    };
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c);
    if b.is_empty() || b.len() > MAX_BOUNDARY || b.ends_with(' ') || !b.chars().all(ok_char) {
        return Err(MultipartError::BadBoundary);
    }
    Ok(b)
}

/// Splits `body` into its parts. A delimiter is `--boundary` at the start of the
/// body or right after a CRLF (or LF); the close delimiter adds `--`. The
/// preamble and epilogue are ignored.
pub fn parts<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, MultipartError> {
    let mut delim = Vec::with_capacity(boundary.len().saturating_add(2));
    delim.extend_from_slice(b"--");
    delim.extend_from_slice(boundary.as_bytes());
    let mut out = Vec::new();
    // Position just after the previous delimiter line.
    let mut open: Option<usize> = None;
    let mut at = 0usize;
    while let Some(found) = find_line_start(body, &delim, at) {
        let after = found.saturating_add(delim.len());
        let rest = body.get(after..).unwrap_or_default();
        let closing = rest.starts_with(b"--");
        if let Some(start) = open {
            // The CRLF before the delimiter belongs to the delimiter.
            let end = strip_line_end(body, start, found);
            let part = body.get(start..end).ok_or(MultipartError::BadPart)?;
            if out.len() >= MAX_PARTS {
                return Err(MultipartError::TooManyParts);
            }
            out.push(split_part(part)?);
        }
        if closing {
            return Ok(out);
        }
        // Skip transport padding to the end of the delimiter line.
        let line_end = rest
            .iter()
            .position(|b| *b == b'\n')
            .ok_or(MultipartError::Unterminated)?;
        let next = after.saturating_add(line_end).saturating_add(1);
        open = Some(next);
        at = next;
    }
    Err(MultipartError::Unterminated)
}

/// Where `delim` next starts a line at or after `from`.
fn find_line_start(body: &[u8], delim: &[u8], from: usize) -> Option<usize> {
    let hay = body.get(from..)?;
    if delim.is_empty() || hay.len() < delim.len() {
        return None;
    }
    hay.windows(delim.len())
        .enumerate()
        .map(|(i, w)| (from.saturating_add(i), w))
        .find(|(pos, w)| {
            *w == delim
                && (*pos == 0 || pos.checked_sub(1).and_then(|p| body.get(p)) == Some(&b'\n'))
        })
        .map(|(pos, _)| pos)
}

/// `end` with the line break just before it removed, never below `start`.
fn strip_line_end(body: &[u8], start: usize, end: usize) -> usize {
    let mut e = end;
    if e > start && body.get(e.saturating_sub(1)) == Some(&b'\n') {
        e = e.saturating_sub(1);
        if e > start && body.get(e.saturating_sub(1)) == Some(&b'\r') {
            e = e.saturating_sub(1);
        }
    }
    e
}

fn split_part(part: &[u8]) -> Result<Part<'_>, MultipartError> {
    // A part with no headers starts with the blank line itself.
    let (head_end, body_start) = if part.starts_with(b"\r\n") {
        (0, 2)
    } else if part.starts_with(b"\n") {
        (0, 1)
    } else {
        let crlf = part
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|i| (i, i.saturating_add(4)));
        let lf = part
            .windows(2)
            .position(|w| w == b"\n\n")
            .map(|i| (i, i.saturating_add(2)));
        match (crlf, lf) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return Err(MultipartError::BadPart),
        }
    };
    let headers = part
        .get(..head_end)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or(MultipartError::BadPart)?;
    let content = part.get(body_start..).ok_or(MultipartError::BadPart)?;
    Ok(Part { headers, content })
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"preamble\r\n--b1\r\nContent-Type: application/sdp\r\n\r\nv=0\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\nepilogue";

    #[test]
    fn splits_parts_and_types() {
        let p = parts(BODY, "b1").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].content_type(), "application/sdp");
        assert_eq!(p[0].content, b"v=0\r\n");
        assert_eq!(p[1].content_type(), "text/plain");
        assert_eq!(p[1].content, b"hello");
    }

    #[test]
    fn boundary_parameter() {
        assert_eq!(
            boundary("multipart/mixed;boundary=unique-boundary-1"),
            Ok("unique-boundary-1")
        );
        assert_eq!(boundary("multipart/mixed; BOUNDARY=\"a b\""), Ok("a b"));
        assert_eq!(boundary("multipart/mixed"), Err(MultipartError::NoBoundary));
        assert_eq!(
            boundary("multipart/mixed;boundary="),
            Err(MultipartError::BadBoundary)
        );
        assert_eq!(
            boundary("multipart/mixed;boundary=\"\""),
            Err(MultipartError::BadBoundary)
        );
        assert_eq!(
            boundary("multipart/mixed;boundary=\"x"),
            Err(MultipartError::BadBoundary)
        );
        let long = format!("multipart/mixed;boundary={}", "x".repeat(71));
        assert_eq!(boundary(&long), Err(MultipartError::BadBoundary));
    }

    /// The shard-killing datagrams of issue 7: a boundary that overlaps itself
    /// put the end of one "part" before its start.
    #[test]
    fn self_overlapping_boundaries_are_errors_not_panics() {
        for (body, b) in [
            (&b"----\r\n"[..], "--"),
            (b"------", "-"),
            (b"--a--a--a", "a--a"),
            (b"--aa--aa", "a"),
            (b"--x\r\n--x", "x"),
            (b"--x", "x"),
            (b"", "x"),
            (b"--x\r\n\r\n--x-", "x"),
            (b"--x--x--", "x--x"),
        ] {
            let _ = parts(body, b);
        }
        assert_eq!(
            parts(b"--x\r\nno blank line\r\n--x--", "x"),
            Err(MultipartError::BadPart)
        );
        assert_eq!(
            parts(b"--x\r\n\r\nv=0", "x"),
            Err(MultipartError::Unterminated)
        );
    }

    #[test]
    fn every_prefix_and_boundary_of_a_real_body_is_total() {
        for n in 0..=BODY.len() {
            for b in ["b1", "b", "1", "-", "--", "b1--", "\r\n"] {
                let _ = parts(&BODY[..n], b);
            }
        }
    }

    #[test]
    fn too_many_parts() {
        let mut body = Vec::new();
        for _ in 0..=MAX_PARTS {
            body.extend_from_slice(b"--x\r\n\r\na\r\n");
        }
        body.extend_from_slice(b"--x--");
        assert_eq!(parts(&body, "x"), Err(MultipartError::TooManyParts));
    }
}
