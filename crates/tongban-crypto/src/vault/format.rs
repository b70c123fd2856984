//! The stored form of an encrypted field: versioned, self-describing, then Base64 URL-safe.
//!
//! ```text
//! offset  size  field
//! 0       1     format version, 0x01
//! 1       1     key id length L (1..=64)
//! 2       L     key id (ASCII)
//! 2+L     4     key version, big-endian
//! 6+L     12    GCM nonce
//! 18+L    n+16  SM4-GCM ciphertext followed by its tag
//! ```
//!
//! The bytes are stored as Base64 URL-safe without padding. Bytes `0..6+L` (the header) are
//! also authenticated as part of the AAD, so the key id and version cannot be swapped.

use super::VaultError;
use crate::{
    encoding::{b64url_decode, b64url_encode},
    gcm::{NONCE_LEN, TAG_LEN},
};

/// Current format version byte.
pub const FORMAT_V1: u8 = 0x01;
/// Longest key id the format carries.
pub const MAX_KEY_ID_LEN: usize = 64;

/// A parsed field ciphertext, borrowing from its decoded bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldCiphertext {
    /// Key id.
    pub key_id: String,
    /// Key version.
    pub key_version: u32,
    /// GCM nonce.
    pub nonce: [u8; NONCE_LEN],
    /// Ciphertext and tag.
    pub sealed: Vec<u8>,
}

// === impl FieldCiphertext ===

impl FieldCiphertext {
    /// The header bytes (format, key id, version) that are also authenticated.
    pub fn header(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(6 + self.key_id.len());
        h.push(FORMAT_V1);
        // Length was checked to fit in one byte when the value was built or parsed.
        h.push(self.key_id.len() as u8);
        h.extend_from_slice(self.key_id.as_bytes());
        h.extend_from_slice(&self.key_version.to_be_bytes());
        h
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Text form for a database column.
    pub fn to_text(&self) -> String {
        b64url_encode(&self.to_bytes())
    }

    /// Parses the binary form; every length is checked before it is used.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, VaultError> {
        let (&version, rest) = bytes.split_first().ok_or(VaultError::Malformed)?;
        if version != FORMAT_V1 {
            return Err(VaultError::UnsupportedFormat(version));
        }
        let (&id_len, rest) = rest.split_first().ok_or(VaultError::Malformed)?;
        let id_len = usize::from(id_len);
        if id_len == 0 || id_len > MAX_KEY_ID_LEN || rest.len() < id_len {
            return Err(VaultError::Malformed);
        }
        let (id, rest) = rest.split_at(id_len);
        if !id.iter().all(|b| b.is_ascii_graphic()) {
            return Err(VaultError::Malformed);
        }
        let (ver, rest) = rest.split_first_chunk::<4>().ok_or(VaultError::Malformed)?;
        let (nonce, sealed) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or(VaultError::Malformed)?;
        if sealed.len() < TAG_LEN {
            return Err(VaultError::Malformed);
        }
        Ok(Self {
            key_id: String::from_utf8_lossy(id).into_owned(),
            key_version: u32::from_be_bytes(*ver),
            nonce: *nonce,
            sealed: sealed.to_vec(),
        })
    }

    /// Parses the text form.
    pub fn from_text(text: &str) -> Result<Self, VaultError> {
        let bytes = b64url_decode(text, "vault field").map_err(|_| VaultError::Malformed)?;
        Self::from_bytes(&bytes)
    }
}
