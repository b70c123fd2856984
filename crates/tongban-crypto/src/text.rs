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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_round_trips_as_utf8_and_other_encodings_are_refused() {
        let s = "张三丰 110101199003077774";
        let b = utf8_bytes(s);
        assert_eq!(&b[..3], &[0xE5, 0xBC, 0xA0], "张 is E5 BC A0 in UTF-8");
        assert_eq!(from_utf8(b).ok(), Some(s));
        assert_eq!(from_utf8_vec(b.to_vec()).ok().as_deref(), Some(s));
        // 张 in GBK, and a UTF-8 sequence cut short: refused, not guessed.
        assert!(from_utf8(&[0xD5, 0xC5]).is_err());
        assert!(from_utf8(&b[..2]).is_err());
    }
}
