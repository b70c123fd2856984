//! Key check values: a short fingerprint that names a key without revealing it.

use std::{fmt, str::FromStr};

use crate::{
    CryptoError, Sm4Key,
    encoding::{hex_decode, hex_encode},
    sm3::hmac_sm3,
};

/// Label of the HMAC-SM3 input that yields a key check value.
///
/// Not the classic "encrypt a zero block" KCV: under SM4-GCM, `E_K(0^128)` is the GHASH key,
/// and publishing part of it would weaken every tag made with that key.
const KCV_LABEL: &[u8] = b"tongban/key-check-value/v1";

/// A key check value: first 4 bytes of HMAC-SM3(key, label), shown as 8 hex digits. It
/// identifies a key without revealing it, so it may appear in configuration, logs and audits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kcv([u8; 4]);

/// The check value of any SM4 key (roots, KEKs and DEKs alike).
pub fn kcv_of(key: &Sm4Key) -> Kcv {
    let mac = hmac_sm3(key.expose(), &[KCV_LABEL]);
    Kcv([mac[0], mac[1], mac[2], mac[3]])
}

// === impl Kcv ===

impl Kcv {
    /// Compares in constant time: a component's value is checked against the expected one
    /// before the component is used.
    pub(super) fn ct_eq(&self, other: &Kcv) -> bool {
        crate::sm3::ct_eq(&self.0, &other.0)
    }
}

impl fmt::Display for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex_encode(&self.0))
    }
}

impl fmt::Debug for Kcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kcv({self})")
    }
}

impl FromStr for Kcv {
    type Err = CryptoError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex_decode(s, "key check value")?;
        let arr: [u8; 4] = bytes
            .try_into()
            .map_err(|_| CryptoError::InvalidEncoding("key check value"))?;
        Ok(Self(arr))
    }
}
