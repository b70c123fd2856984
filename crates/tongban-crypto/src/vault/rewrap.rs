//! Online re-encryption of stored fields under the current data key, one record at a time.
//!
//! The store drives it through [`RewrapStore`]; progress is a cursor, so a run interrupted
//! at any point resumes from the last cursor it reported, and a record already at the current
//! key version is skipped, so repeating work is harmless.

use std::future::Future;

use super::{FieldRef, Vault, VaultError};
use crate::keyring::KeyLookup;

/// One stored encrypted field, as the store pages through them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredField {
    /// Opaque position in the store's stable order (e.g. `"users:42:id_number"`).
    pub cursor: String,
    /// Table name.
    pub table: String,
    /// Column name.
    pub column: String,
    /// Row id.
    pub row_id: String,
    /// The stored vault text.
    pub stored: String,
}

/// Paging and compare-and-set access to encrypted fields, implemented by the store.
pub trait RewrapStore {
    /// The store's error.
    type Error: std::fmt::Debug;

    /// Up to `limit` fields strictly after `after` (from the start when `None`), in the same
    /// stable order every call.
    fn next_batch(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredField>, Self::Error>> + Send;

    /// Replaces the field's value with `new` only if it still equals `field.stored`; returns
    /// whether it did (a concurrent write wins and is not overwritten).
    fn replace(
        &mut self,
        field: &StoredField,
        new: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send;
}

/// What one run did.
#[derive(Debug, Default)]
pub struct RewrapReport {
    /// Fields looked at.
    pub scanned: u64,
    /// Fields re-encrypted and saved.
    pub rewrapped: u64,
    /// Fields already under the current key version.
    pub already_current: u64,
    /// Fields changed by someone else between read and replace (left as they were).
    pub conflicts: u64,
    /// Fields that could not be decrypted, by cursor (the error never holds field data).
    pub failures: Vec<(String, VaultError)>,
    /// Cursor of the last field looked at: pass it as `start_after` to resume.
    pub last_cursor: Option<String>,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RewrapError<E: std::fmt::Debug> {
    /// The store failed; the report says how far the run got.
    #[error("store failed during rewrap: {error:?}")]
    Store {
        /// The store's error.
        error: E,
        /// Progress until then.
        report: RewrapReport,
    },
    /// The current data key is not available, so nothing can be re-encrypted.
    #[error(transparent)]
    Vault(VaultError),
}

/// Re-encrypts every field after `start_after` whose key version is not current, at most
/// `max_fields` of them when given, in batches of `batch_size`.
pub async fn rewrap_fields<K, S>(
    vault: &Vault<'_, K>,
    store: &mut S,
    start_after: Option<String>,
    batch_size: usize,
    max_fields: Option<u64>,
) -> Result<RewrapReport, RewrapError<S::Error>>
where
    K: KeyLookup + ?Sized,
    S: RewrapStore,
{
    vault
        .keys
        .current(&vault.data_key_id)
        .map_err(|e| RewrapError::Vault(e.into()))?;
    let mut report = RewrapReport {
        last_cursor: start_after,
        ..RewrapReport::default()
    };
    let batch_size = batch_size.max(1);
    loop {
        let batch = match store
            .next_batch(report.last_cursor.as_deref(), batch_size)
            .await
        {
            Ok(b) => b,
            Err(error) => return Err(RewrapError::Store { error, report }),
        };
        if batch.is_empty() {
            return Ok(report);
        }
        for field in batch {
            if max_fields.is_some_and(|m| report.scanned >= m) {
                return Ok(report);
            }
            report.scanned += 1;
            let fref = FieldRef {
                table: &field.table,
                column: &field.column,
                row_id: &field.row_id,
            };
            match vault.rewrap(&fref, &field.stored) {
                Ok(None) => report.already_current += 1,
                Ok(Some(new)) => match store.replace(&field, &new).await {
                    Ok(true) => report.rewrapped += 1,
                    Ok(false) => report.conflicts += 1,
                    Err(error) => return Err(RewrapError::Store { error, report }),
                },
                Err(e) => report.failures.push((field.cursor.clone(), e)),
            }
            report.last_cursor = Some(field.cursor);
        }
    }
}
