//! A request id on every request: the caller's `X-Request-Id` when it is safe to echo, else a
//! fresh one. It is echoed in the response, forwarded upstream, and carried by every log line
//! the request causes.

use rand::RngCore;

/// A `HeaderName` constant, not a `&str`: a map looks a string up by parsing it into a name
/// first, on every request.
pub(crate) const HEADER: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The id of the request being served, as a request extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Only short ids of URL-safe characters are taken from callers: anything else could carry
/// personal data or forge log lines, and is replaced.
fn acceptable(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

pub(crate) fn generate() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    tongban_crypto::encoding::hex_encode(&b)
}

/// The caller's id when it is safe to echo, else a fresh one.
pub(crate) fn of<B>(req: &http::Request<B>) -> String {
    req.headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(generate, str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_are_echoed() {
        assert!(acceptable("0123456789abcdef"));
        assert!(acceptable("req-2026.11_28"));
        assert!(!acceptable("short"));
        assert!(!acceptable("11010519491231002X 张三"));
        assert!(!acceptable("a\nfake log line"));
        assert!(!acceptable(&"a".repeat(65)));
        assert_eq!(generate().len(), 32);
        assert_ne!(generate(), generate());
    }
}
