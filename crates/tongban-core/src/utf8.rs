//! The one place strings become bytes and bytes become strings (note to clause 6.3.2.3): always
//! UTF-8, never a platform or legacy encoding, and invalid input is an error, not a lossy guess.

/// Bytes of a string, as UTF-8.
pub fn to_bytes(s: &str) -> &[u8] {
    s.as_bytes()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("input is not valid UTF-8 (first bad byte at offset {offset})")]
pub struct NotUtf8 {
    pub offset: usize,
}

/// A string from bytes that must be UTF-8; GBK or truncated input is refused.
pub fn from_bytes(b: &[u8]) -> Result<&str, NotUtf8> {
    std::str::from_utf8(b).map_err(|e| NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// Owned variant of [`from_bytes`].
pub fn from_vec(b: Vec<u8>) -> Result<String, NotUtf8> {
    String::from_utf8(b).map_err(|e| NotUtf8 {
        offset: e.utf8_error().valid_up_to(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_round_trips_as_utf8() {
        let s = "张三丰 110101199003077774";
        let b = to_bytes(s);
        assert_eq!(&b[..3], &[0xE5, 0xBC, 0xA0], "张 is E5 BC A0 in UTF-8");
        assert_eq!(from_bytes(b), Ok(s));
        assert_eq!(from_vec(b.to_vec()).as_deref(), Ok(s));
    }

    #[test]
    fn gbk_bytes_are_refused() {
        // 张 in GBK is D5 C5: not UTF-8.
        assert_eq!(from_bytes(&[b'a', 0xD5, 0xC5]), Err(NotUtf8 { offset: 1 }));
        // A UTF-8 sequence cut short.
        assert_eq!(from_vec(vec![0xE5, 0xBC]), Err(NotUtf8 { offset: 0 }));
    }
}
