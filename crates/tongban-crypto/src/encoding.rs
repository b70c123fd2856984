//! Text encodings used on the wire and in storage: Base64, Base64 URL-safe without padding, hex.

use base64ct::{Base64, Base64UrlUnpadded, Encoding};

use crate::CryptoError;

/// Standard Base64 with padding (RFC 4648 §4), as used in the envelope JSON.
pub fn b64_encode(bytes: &[u8]) -> String {
    Base64::encode_string(bytes)
}

/// Decodes standard padded Base64; `what` names the field in the error.
pub fn b64_decode(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    Base64::decode_vec(text).map_err(|_| CryptoError::InvalidEncoding(what))
}

/// Base64 URL-safe alphabet without padding (RFC 4648 §5), as the standard's 6.3.2.3 d asks.
pub fn b64url_encode(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// Decodes URL-safe unpadded Base64; `what` names the field in the error.
pub fn b64url_decode(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    Base64UrlUnpadded::decode_vec(text).map_err(|_| CryptoError::InvalidEncoding(what))
}

/// Lowercase hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes hex (either case, no separators); `what` names the field in the error.
pub fn hex_decode(text: &str, what: &'static str) -> Result<Vec<u8>, CryptoError> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(CryptoError::InvalidEncoding(what));
    }
    bytes
        .chunks_exact(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => Ok((hi << 4) | lo),
            _ => Err(CryptoError::InvalidEncoding(what)),
        })
        .collect()
}
