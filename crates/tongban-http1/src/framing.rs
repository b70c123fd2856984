//! What a message's framing and connection headers say, read strictly: the same rules for
//! the requests the server reads and the answers the client reads.

use http::header::{self, HeaderName};

use crate::Error;

/// What a message's framing and connection headers say, gathered header by header: the same
/// rules for the answers the upstream client reads and the requests the server reads.
#[derive(Debug, Default)]
pub struct FramingHeaders {
    /// `Content-Length`, every copy of it agreeing.
    pub length: Option<u64>,
    /// A `Transfer-Encoding` was sent.
    pub coded: bool,
    /// How many `Transfer-Encoding` lines were sent.
    pub coding_lines: usize,
    /// The last coding of the last `Transfer-Encoding` is `chunked`.
    pub chunked: bool,
    /// The last `Transfer-Encoding` is `chunked` alone, the one coding a request may have
    /// here (the server would have to undo any other, and cannot).
    pub chunked_only: bool,
    /// `Connection` names `close`.
    pub close: bool,
    /// `Connection` names `keep-alive`.
    pub keep_alive: bool,
}

impl FramingHeaders {
    /// Takes note of one header; refuses a length that is not plain digits or disagrees with
    /// an earlier one (RFC 9110 §8.6: the framing would be unknown).
    pub fn see(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), Error> {
        if name == header::CONTENT_LENGTH {
            let n = parse_length(value)?;
            if self.length.is_some_and(|l| l != n) {
                return Err(Error::Malformed);
            }
            self.length = Some(n);
        } else if name == header::TRANSFER_ENCODING {
            self.coded = true;
            self.coding_lines += 1;
            // Chunked must be the last coding; anything after it leaves the end unknown.
            self.chunked = last_token(value).eq_ignore_ascii_case(b"chunked");
            self.chunked_only = value.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name == header::CONNECTION {
            for token in value.split(|b| *b == b',') {
                let t = token.trim_ascii();
                self.close |= t.eq_ignore_ascii_case(b"close");
                self.keep_alive |= t.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        Ok(())
    }

    /// Whether the connection may carry another message after this one, as the version and
    /// `Connection` say (framing may still rule it out).
    pub fn persistent(&self, http11: bool) -> bool {
        !self.close && (http11 || self.keep_alive)
    }
}

/// A `Content-Length` value: digits only (leading zeros too, as RFC 9110 §8.6's `1*DIGIT`
/// allows), and a number that fits.
fn parse_length(v: &[u8]) -> Result<u64, Error> {
    let v = v.trim_ascii();
    // `+5`, `0x5`, `5 5`, `5, 5` and empty are refused.
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(Error::Malformed);
    }
    v.iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(Error::Malformed)
}

/// The last of a comma-separated list's items (a `Transfer-Encoding`'s final coding).
fn last_token(v: &[u8]) -> &[u8] {
    v.rsplit(|b| *b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}
