//! PII vault: field encryption bound to its table, column and row, and blind indexes.
//!
//! Personal data (names, ID numbers, phones, addresses) never rests in plaintext (clause
//! 6.3.2.3 a): each value is SM4-GCM encrypted under a versioned data key with a random 96-bit
//! nonce, and the AAD binds table, column, row id and key version, so a ciphertext copied to
//! another row or column fails to decrypt. Lookups use a blind index (clause 6.3.2.3 d):
//! HMAC-SM3 under a separate key, Base64 URL-safe without padding.

mod format;
mod rewrap;

use std::collections::BTreeMap;

use zeroize::Zeroizing;

pub use format::{FORMAT_V1, FieldCiphertext, MAX_KEY_ID_LEN};
pub use rewrap::{RewrapError, RewrapReport, RewrapStore, StoredField, rewrap_fields};

use crate::{
    CryptoError, Sm4Key,
    encoding::b64url_encode,
    gcm::Sm4Gcm,
    keyring::{KeyLookup, KeyringError},
    sm3::hmac_sm3,
    text::utf8_bytes,
};

const AAD_LABEL: &[u8] = b"tongban/vault/v1";
const INDEX_LABEL: &[u8] = b"tongban/blind-index/v1";

/// Where a value lives; all three parts are bound into the ciphertext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldRef<'a> {
    /// Table name.
    pub table: &'a str,
    /// Column name.
    pub column: &'a str,
    /// Primary key of the row, as text.
    pub row_id: &'a str,
}

/// A blind index value and the version of the index key that made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlindIndex {
    /// Version of the blind-index key.
    pub key_version: u32,
    /// HMAC-SM3, Base64 URL-safe without padding (43 characters).
    pub value: String,
}

/// Encrypts, decrypts and indexes fields with keys from a [`KeyLookup`].
#[derive(Debug)]
pub struct Vault<'k, K: KeyLookup + ?Sized> {
    keys: &'k K,
    data_key_id: String,
    index_key_id: String,
}

/// Why a vault operation failed. No variant carries plaintext or ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The stored value is truncated, not Base64, or otherwise not a vault ciphertext.
    #[error("malformed vault ciphertext")]
    Malformed,
    /// The stored value uses a format version this build does not know.
    #[error("unsupported vault format version {0}")]
    UnsupportedFormat(u8),
    /// The key or key version named by the ciphertext is unknown or retired.
    #[error(transparent)]
    Key(#[from] KeyringError),
    /// Wrong key, wrong table/column/row, or altered ciphertext or tag.
    #[error("vault ciphertext failed authentication")]
    AuthenticationFailed,
    /// A primitive failed (random generator).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Fixed keys for benchmarks and tests, without a keyring.
#[derive(Debug, Default)]
pub struct StaticKeys {
    keys: BTreeMap<String, BTreeMap<u32, Sm4Key>>,
}

// === impl Vault ===

impl<'k, K: KeyLookup + ?Sized> Vault<'k, K> {
    /// A vault encrypting under `data_key_id` and indexing under `index_key_id`.
    pub fn new(keys: &'k K, data_key_id: &str, index_key_id: &str) -> Self {
        Self {
            keys,
            data_key_id: data_key_id.to_owned(),
            index_key_id: index_key_id.to_owned(),
        }
    }

    /// Encrypts `plaintext` for `field` under the current data key; returns the stored text.
    pub fn encrypt(&self, field: &FieldRef<'_>, plaintext: &[u8]) -> Result<String, VaultError> {
        Ok(self.encrypt_parsed(field, plaintext)?.to_text())
    }

    /// [`Vault::encrypt`] for a string, via the crate's single UTF-8 conversion.
    pub fn encrypt_str(&self, field: &FieldRef<'_>, value: &str) -> Result<String, VaultError> {
        self.encrypt(field, utf8_bytes(value))
    }

    fn encrypt_parsed(
        &self,
        field: &FieldRef<'_>,
        plaintext: &[u8],
    ) -> Result<FieldCiphertext, VaultError> {
        if self.data_key_id.is_empty() || self.data_key_id.len() > MAX_KEY_ID_LEN {
            return Err(VaultError::Key(KeyringError::InvalidKeyId(
                self.data_key_id.clone(),
            )));
        }
        let (version, key) = self.keys.current(&self.data_key_id)?;
        let mut ct = FieldCiphertext {
            key_id: self.data_key_id.clone(),
            key_version: version,
            nonce: crate::random::random_array()?,
            sealed: Vec::new(),
        };
        ct.sealed = Sm4Gcm::new(key).seal(&ct.nonce, &aad(field, &ct), plaintext)?;
        Ok(ct)
    }

    /// Decrypts a stored value for `field`.
    pub fn decrypt(
        &self,
        field: &FieldRef<'_>,
        stored: &str,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let ct = FieldCiphertext::from_text(stored)?;
        let key = self.keys.get(&ct.key_id, ct.key_version)?;
        Sm4Gcm::new(key)
            .open(&ct.nonce, &aad(field, &ct), &ct.sealed)
            .map_err(|_| VaultError::AuthenticationFailed)
    }

    /// Decrypts a stored string value; invalid UTF-8 is [`VaultError::Malformed`].
    pub fn decrypt_str(
        &self,
        field: &FieldRef<'_>,
        stored: &str,
    ) -> Result<Zeroizing<String>, VaultError> {
        let bytes = self.decrypt(field, stored)?;
        crate::text::from_utf8(&bytes)
            .map(|s| Zeroizing::new(s.to_owned()))
            .map_err(|_| VaultError::Malformed)
    }

    /// Re-encrypts a stored value under the current data key version. Returns `None` when it
    /// is already current, so running it twice over the same rows does nothing the second time.
    pub fn rewrap(&self, field: &FieldRef<'_>, stored: &str) -> Result<Option<String>, VaultError> {
        let ct = FieldCiphertext::from_text(stored)?;
        let (current, _) = self.keys.current(&self.data_key_id)?;
        if ct.key_id == self.data_key_id && ct.key_version == current {
            return Ok(None);
        }
        let plaintext = self.decrypt(field, stored)?;
        self.encrypt(field, &plaintext).map(Some)
    }

    /// Blind index of `value` in `table.column` under the current index key.
    ///
    /// Normalize first (e.g. [`normalize_for_index`]) so equal values index equally.
    pub fn blind_index(
        &self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<BlindIndex, VaultError> {
        let (version, _) = self.keys.current(&self.index_key_id)?;
        self.blind_index_at(table, column, value, version)
    }

    /// Blind index under a specific index key version (to search rows not yet re-indexed).
    pub fn blind_index_at(
        &self,
        table: &str,
        column: &str,
        value: &str,
        key_version: u32,
    ) -> Result<BlindIndex, VaultError> {
        let key = self.keys.get(&self.index_key_id, key_version)?;
        let mac = hmac_sm3(
            key.expose(),
            &[
                INDEX_LABEL,
                &len32(table),
                table.as_bytes(),
                &len32(column),
                column.as_bytes(),
                utf8_bytes(value),
            ],
        );
        Ok(BlindIndex {
            key_version,
            value: b64url_encode(&mac),
        })
    }

    /// Encrypts a value and computes its blind index in one call: what storing one indexed
    /// PII field costs (the benchmark surface).
    pub fn seal_with_index(
        &self,
        field: &FieldRef<'_>,
        value: &str,
    ) -> Result<(String, BlindIndex), VaultError> {
        let stored = self.encrypt_str(field, value)?;
        let index = self.blind_index(field.table, field.column, value)?;
        Ok((stored, index))
    }
}

/// Trims surrounding whitespace and upper-cases ASCII letters, so `11010519491231002x` and
/// ` 11010519491231002X` index alike. Other normalization is the caller's (per field).
pub fn normalize_for_index(value: &str) -> String {
    value.trim().to_ascii_uppercase()
}

fn len32(s: &str) -> [u8; 4] {
    // Table/column/row names are short identifiers; saturate rather than wrap if one is not.
    u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes()
}

/// AAD = label || len‖table || len‖column || len‖row id || header(format, key id, version).
fn aad(field: &FieldRef<'_>, ct: &FieldCiphertext) -> Vec<u8> {
    let mut aad = Vec::with_capacity(
        AAD_LABEL.len() + 12 + field.table.len() + field.column.len() + field.row_id.len() + 70,
    );
    aad.extend_from_slice(AAD_LABEL);
    for part in [field.table, field.column, field.row_id] {
        aad.extend_from_slice(&len32(part));
        aad.extend_from_slice(part.as_bytes());
    }
    aad.extend_from_slice(&ct.header());
    aad
}

// === impl StaticKeys ===

impl StaticKeys {
    /// No keys.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `key` as `version` of `key_id`; the highest version is current.
    pub fn insert(&mut self, key_id: &str, version: u32, key: Sm4Key) -> &mut Self {
        self.keys
            .entry(key_id.to_owned())
            .or_default()
            .insert(version, key);
        self
    }
}

impl KeyLookup for StaticKeys {
    fn current(&self, key_id: &str) -> Result<(u32, &Sm4Key), KeyringError> {
        self.keys
            .get(key_id)
            .and_then(|v| v.iter().next_back())
            .map(|(v, k)| (*v, k))
            .ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))
    }

    fn get(&self, key_id: &str, version: u32) -> Result<&Sm4Key, KeyringError> {
        let versions = self
            .keys
            .get(key_id)
            .ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))?;
        versions
            .get(&version)
            .ok_or_else(|| KeyringError::UnknownVersion {
                key_id: key_id.to_owned(),
                version,
            })
    }
}
