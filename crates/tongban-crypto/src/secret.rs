//! Wrappers for key material: zeroized on drop, never printed by `Debug`.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::{CryptoError, random::fill_random};

/// Length of an SM4 key in bytes.
pub const SM4_KEY_LEN: usize = 16;

/// Variable-length secret bytes (key components, decrypted fields).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

/// A 128-bit SM4 key: root, KEK, DEK, blind-index and envelope session keys all have this shape.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Sm4Key([u8; SM4_KEY_LEN]);

// === impl SecretBytes ===

impl SecretBytes {
    /// Takes ownership of `bytes`; they are wiped when this value drops.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Borrows the secret bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Number of bytes held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no bytes are held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self::new(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes([REDACTED; {}])", self.0.len())
    }
}

// === impl Sm4Key ===

impl Sm4Key {
    /// Wraps 16 key bytes.
    pub fn from_bytes(bytes: [u8; SM4_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Copies a 16-byte slice into a key; any other length is refused.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; SM4_KEY_LEN] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(arr))
    }

    /// A fresh random key from the OS generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Self([0u8; SM4_KEY_LEN]);
        fill_random(&mut key.0)?;
        Ok(key)
    }

    /// Borrows the key bytes.
    pub fn expose(&self) -> &[u8; SM4_KEY_LEN] {
        &self.0
    }
}

impl PartialEq for Sm4Key {
    fn eq(&self, other: &Self) -> bool {
        crate::sm3::ct_eq(&self.0, &other.0)
    }
}

impl Eq for Sm4Key {}

impl fmt::Debug for Sm4Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sm4Key([REDACTED])")
    }
}
