//! A request id on every request: the caller's `X-Request-Id` when it is safe to echo, else a
//! fresh one. It is echoed in the response, forwarded upstream, and carried by every log line
//! the request causes.

use http::HeaderValue;
use rand::RngCore;

/// A `HeaderName` constant, not a `&str`: a map looks a string up by parsing it into a name
/// first, on every request.
pub(crate) const HEADER: http::HeaderName = tongban_core::header::X_REQUEST_ID;

/// Only short ids of URL-safe characters that the log masking leaves as they are are taken
/// from callers: anything else could carry personal data or forge log lines, and an id the
/// masking changes (a run of digits read as a phone or card number) would not match the
/// logged one. Such an id is replaced, and the answer says by which.
fn acceptable(v: &str) -> bool {
    (8..=64).contains(&v.len())
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && matches!(
            tongban_core::mask::mask_untrusted_cow(v),
            std::borrow::Cow::Borrowed(_)
        )
}

/// A fresh id: 128 random bits as 32 letters `a`-`p`, four bits each. No digits: a hex id has
/// a run of 11 or more digits about one time in twenty, which masking would alter in the log
/// (the logged id no longer matching the answer's) and a log scanner could take for a phone
/// number.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generated([u8; 32]);

pub(crate) fn generate() -> Generated {
    let mut rng = rand::rng();
    let (mut x, mut y) = (rng.next_u64(), rng.next_u64());
    // Written as bytes and turned into text once (pushing chars checked each one's length
    // and the room left, a third of the cost of a request's id).
    let mut id = [0u8; 32];
    let (lo, hi) = id.split_at_mut(16);
    for (a, b) in lo.iter_mut().zip(hi.iter_mut()) {
        *a = b'a' + (x & 0x0f) as u8;
        *b = b'a' + (y & 0x0f) as u8;
        x >>= 4;
        y >>= 4;
    }
    Generated(id)
}

impl Generated {
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The id as a header value, held once and shared by the request (forwarded upstream)
    /// and the answer: a copied value was copied again when first cloned.
    pub(crate) fn header(self) -> Option<HeaderValue> {
        HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(self.0)).ok()
    }
}

/// The caller's `X-Request-Id` and its text, when it is safe to echo.
pub(crate) fn of_caller<B>(req: &http::Request<B>) -> Option<(&str, &HeaderValue)> {
    let v = req.headers().get(&HEADER)?;
    let text = v.to_str().ok().filter(|t| acceptable(t))?;
    Some((text, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_safe_ids_are_echoed() {
        assert!(acceptable("0123456789abcdef"));
        assert!(acceptable("req-b2c1-9f3e"));
        // What masking would change: the logged id would differ from the echoed one.
        for masked in ["req-13812345678", "11010519491231002X"] {
            assert_ne!(tongban_core::mask::mask_untrusted_cow(masked), masked);
            assert!(!acceptable(masked), "{masked}");
        }
        assert!(acceptable("req-2026.11_28"));
        assert!(!acceptable("short"));
        assert!(!acceptable("11010519491231002X 张三"));
        assert!(!acceptable("a\nfake log line"));
        assert!(!acceptable(&"a".repeat(65)));
        let g = generate();
        let id = g.as_str();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|c| (b'a'..=b'p').contains(&c)), "{id}");
        // Masking leaves it as it is, so the logged id is the answered one.
        assert_eq!(tongban_core::mask::mask_untrusted_cow(id), id);
        assert_eq!(g.header().expect("a header value"), id);
        assert_ne!(generate().as_str(), generate().as_str());
    }
}
