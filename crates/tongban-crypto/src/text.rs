//! The one conversion between strings and bytes (UTF-8, standard clause 6.3.2.3 note).

use crate::CryptoError;

/// Returns the UTF-8 bytes of `s`; every string that is hashed, signed or encrypted goes
/// through here so no caller picks another encoding by accident.
pub fn utf8_bytes(s: &str) -> &[u8] {
    s.as_bytes()
}

/// Decodes bytes as UTF-8, refusing (not replacing) invalid sequences.
pub fn from_utf8(bytes: &[u8]) -> Result<&str, CryptoError> {
    std::str::from_utf8(bytes).map_err(|_| CryptoError::InvalidEncoding("UTF-8"))
}

/// Owned variant of [`from_utf8`].
pub fn from_utf8_vec(bytes: Vec<u8>) -> Result<String, CryptoError> {
    String::from_utf8(bytes).map_err(|_| CryptoError::InvalidEncoding("UTF-8"))
}
