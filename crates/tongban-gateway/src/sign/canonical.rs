//! The canonical strings that are signed, and the verdict on a request's signature headers.
//! Free of I/O: keys, time and the nonce store are passed in.

use std::fmt::Write;

use tongban_crypto::sm3::{hmac_sm3, hmac_sm3_verify, sm3};

/// First line of a request's canonical string (names the scheme and its version).
pub const REQUEST_SCHEME: &str = "TB1-HMAC-SM3";
/// First line of a response's canonical string.
pub const RESPONSE_SCHEME: &str = "TB1-HMAC-SM3-RESPONSE";
/// How far a request's timestamp may be from the server's clock, in seconds.
pub const WINDOW_SECS: i64 = 300;

/// The signature headers of a request, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed<'a> {
    pub key_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
}

/// Why a signature was not accepted (the `reason` in the 20001 answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Missing,
    Malformed,
    Stale,
    UnknownKey,
    Invalid,
    Replayed,
}

// === impl Verdict ===

impl Verdict {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "signature_missing",
            Self::Malformed => "signature_malformed",
            Self::Stale => "timestamp_stale",
            Self::UnknownKey => "key_unknown",
            Self::Invalid => "signature_invalid",
            Self::Replayed => "nonce_replayed",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Self::Missing => "请求缺少签名",
            Self::Malformed => "签名参数格式错误",
            Self::Stale => "请求时间戳超出允许范围",
            Self::UnknownKey => "签名密钥无效，请重新登录",
            Self::Invalid => "签名校验失败",
            Self::Replayed => "请求重复提交",
        }
    }
}

/// The query string in canonical form: `&`-separated items, each kept exactly as sent
/// (percent-encoding untouched), sorted by bytes; empty items dropped.
pub fn canonical_query(query: Option<&str>) -> String {
    let mut items: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .collect();
    items.sort_unstable();
    items.join("&")
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The string a client signs for a request.
pub fn request_string(
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    s: &Signed<'_>,
) -> String {
    format!(
        "{REQUEST_SCHEME}\n{}\n{path}\n{}\n{}\n{}\n{}\n{}",
        method.to_ascii_uppercase(),
        canonical_query(query),
        hex(&sm3(body)),
        s.timestamp,
        s.nonce,
        s.key_id
    )
}

/// The string the server signs for its answer.
pub fn response_string(
    status: u16,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
    key_id: &str,
) -> String {
    format!(
        "{RESPONSE_SCHEME}\n{status}\n{}\n{timestamp}\n{nonce}\n{key_id}",
        hex(&sm3(body))
    )
}

/// HMAC-SM3 of a canonical string, as lowercase hex.
pub fn sign(key: &[u8], canonical: &str) -> String {
    hex(&hmac_sm3(key, &[canonical.as_bytes()]))
}

/// Checks the form of the headers and the timestamp against `now` (Unix seconds).
pub fn check_form(s: &Signed<'_>, now: i64) -> Result<(), Verdict> {
    let nonce_ok = (16..=64).contains(&s.nonce.len())
        && s.nonce
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
    let key_ok = (1..=128).contains(&s.key_id.len())
        && s.key_id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    let sig_ok = s.signature.len() == 64 && s.signature.bytes().all(|c| c.is_ascii_hexdigit());
    let ts_ok = s.timestamp.len() <= 12 && s.timestamp.bytes().all(|c| c.is_ascii_digit());
    if !(nonce_ok && key_ok && sig_ok && ts_ok) {
        return Err(Verdict::Malformed);
    }
    let ts: i64 = s.timestamp.parse().map_err(|_| Verdict::Malformed)?;
    if (now - ts).abs() > WINDOW_SECS {
        return Err(Verdict::Stale);
    }
    Ok(())
}

/// Verifies the signature (constant time) over the canonical string.
pub fn verify(key: &[u8], canonical: &str, signature_hex: &str) -> Result<(), Verdict> {
    let tag = unhex(signature_hex).ok_or(Verdict::Malformed)?;
    if hmac_sm3_verify(key, &[canonical.as_bytes()], &tag) {
        Ok(())
    } else {
        Err(Verdict::Invalid)
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
