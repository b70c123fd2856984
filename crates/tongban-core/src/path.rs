//! Request paths made canonical before anything routes on them, free of I/O: dot-segments
//! removed (RFC 3986 §5.2.4), percent-encoded unreserved characters decoded and the other
//! escapes in uppercase (§6.2.2), repeated slashes merged. A route's auth level is decided on
//! the path this returns and the same path is forwarded, so no upstream can read a request as
//! aimed at another resource than the one the gateway checked.
//!
//! What cannot be made canonical safely is refused, never guessed: an encoded slash or
//! backslash (an upstream may decode it into a separator), a backslash, `%00` and other
//! control characters, an escape that is not two hex digits, escapes that decode to invalid
//! UTF-8, a dot-segment with a `;` parameter (read as `..` by some servers) and a path that
//! climbs above the root.

use std::borrow::Cow;

/// Why a path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("路径须以 / 开头")]
    NotAbsolute,
    #[error("路径含有编码的斜杠或反斜杠")]
    EncodedSeparator,
    #[error("路径含有反斜杠")]
    Backslash,
    #[error("路径含有控制字符")]
    Control,
    #[error("路径含有无效的百分号编码")]
    BadEscape,
    #[error("路径的百分号编码不是有效的 UTF-8")]
    NotUtf8,
    #[error("路径含有带参数的点段")]
    DotParameter,
    #[error("路径越出根目录")]
    AboveRoot,
}

/// The canonical form of `path` (the path component only, without the query), borrowed when
/// it already is canonical (nearly every request).
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    if is_canonical(b) {
        return Ok(Cow::Borrowed(path));
    }
    // Pass 1: escapes. Unreserved characters decoded, everything else kept escaped in
    // uppercase; the decoded bytes of every escape together must be UTF-8.
    let mut text = String::with_capacity(path.len());
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            return Err(PathError::Backslash);
        }
        if c < 0x20 || c == 0x7f {
            return Err(PathError::Control);
        }
        if c != b'%' {
            // `path` is a &str: copying whole UTF-8 sequences byte by byte keeps it one.
            let start = i;
            while i < b.len() && !matches!(b[i], b'%' | b'\\') && b[i] >= 0x20 && b[i] != 0x7f {
                i += 1;
            }
            text.push_str(&path[start..i]);
            continue;
        }
        let (Some(h), Some(l)) = (
            b.get(i + 1).and_then(|d| hex(*d)),
            b.get(i + 2).and_then(|d| hex(*d)),
        ) else {
            return Err(PathError::BadEscape);
        };
        let v = h << 4 | l;
        match v {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..0x20 | 0x7f => return Err(PathError::Control),
            _ => {}
        }
        decoded.push(v);
        if is_unreserved(v) {
            text.push(char::from(v));
        } else {
            text.push('%');
            text.push(char::from(HEX[usize::from(v >> 4)]));
            text.push(char::from(HEX[usize::from(v & 15)]));
        }
        i += 3;
    }
    if !decoded.is_ascii() && decode_escapes(&text).is_err() {
        return Err(PathError::NotUtf8);
    }
    // Pass 2: segments. Empty ones (repeated slashes) merged, `.` dropped, `..` removing the
    // segment before it; a path ending in a dot-segment keeps its trailing slash.
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = text[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing = false;
    for (n, seg) in segments.iter().enumerate() {
        let dots = seg.split(';').next().unwrap_or_default();
        if (dots == "." || dots == "..") && dots.len() != seg.len() {
            return Err(PathError::DotParameter);
        }
        match *seg {
            "" => trailing = n == last,
            "." => trailing = n == last,
            ".." => {
                if out.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing = n == last;
            }
            s => {
                out.push(s);
                trailing = false;
            }
        }
    }
    let mut canonical = String::with_capacity(text.len());
    for s in &out {
        canonical.push('/');
        canonical.push_str(s);
    }
    if trailing || out.is_empty() {
        canonical.push('/');
    }
    Ok(Cow::Owned(canonical))
}

/// Replaces the path of `uri` with its canonical form, keeping the query (and, for HTTP/2,
/// scheme and authority); the URI is left as it is when already canonical.
pub fn normalize_uri(uri: &mut http::Uri) -> Result<(), PathError> {
    let path = match normalize(uri.path())? {
        Cow::Borrowed(_) => return Ok(()),
        Cow::Owned(p) => p,
    };
    let pq = match uri.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = std::mem::take(uri).into_parts();
    // The canonical path is made of characters the URI already held, minus some: it parses.
    parts.path_and_query = Some(pq.parse().map_err(|_| PathError::BadEscape)?);
    *uri = http::Uri::from_parts(parts).map_err(|_| PathError::BadEscape)?;
    Ok(())
}

/// True when `b` needs no work: no escape, backslash or control character, no empty segment
/// and no dot-segment. One pass, no allocation.
fn is_canonical(b: &[u8]) -> bool {
    // The byte before each position, starting after the leading slash.
    let mut prev = b'/';
    let mut seg_start = 1;
    for (i, &c) in b.iter().enumerate().skip(1) {
        match c {
            b'%' | b'\\' | 0..0x20 | 0x7f => return false,
            b'/' => {
                if prev == b'/' || is_dots(&b[seg_start..i]) {
                    return false;
                }
                seg_start = i + 1;
            }
            _ => {}
        }
        prev = c;
    }
    !is_dots(&b[seg_start..])
}

/// `.` or `..`, alone or before a `;` parameter.
fn is_dots(seg: &[u8]) -> bool {
    let end = seg.iter().position(|c| *c == b';').unwrap_or(seg.len());
    matches!(&seg[..end], b"." | b"..")
}

/// The bytes of `text` with its (uppercase, valid) escapes decoded, as UTF-8.
fn decode_escapes(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|d| hex(*d)),
                b.get(i + 2).and_then(|d| hex(*d)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex(d: u8) -> Option<u8> {
    match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        b'A'..=b'F' => Some(d - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests;
