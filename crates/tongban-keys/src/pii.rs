//! Citizens' personal information through the vault (clause 6.3.2.3 a, d): every field
//! SM4-GCM-encrypted and bound to its table, column and row; ID numbers and phones found by
//! blind index. Plaintext exists only in memory, in the request that needs it.

use tongban_crypto::encoding::hex_encode;
use tongban_crypto::keyring::KeyLookup;
use tongban_crypto::vault::{FieldRef, Vault, normalize_for_index};
use tongban_crypto::vault::{RewrapReport, RewrapStore, StoredField, rewrap_fields};
use tongban_store::persons::{COLUMNS, PersonRow, TABLE};
use tongban_store::{Store, StoreError};
use zeroize::Zeroizing;

use crate::{KeyError, KeyService, PII_DATA, PII_INDEX};

/// A person in plaintext, held only in memory.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub id_number: String,
    pub phone: Option<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn field<'a>(column: &'a str, row_id: &'a str) -> FieldRef<'a> {
    FieldRef {
        table: TABLE,
        column,
        row_id,
    }
}

/// Encrypts and stores a new person; returns the new id. An ID number already stored is a
/// conflict (found through its blind index, without decrypting anything).
pub async fn insert(
    keys: &KeyService,
    store: &Store,
    name: &str,
    id_number: &str,
    phone: Option<&str>,
) -> Result<String, KeyError> {
    let id = format!(
        "p{}",
        hex_encode(
            &tongban_crypto::random::random_array::<12>()
                .map_err(|e| KeyError::context("random generator", e))?
        )
    );
    let row = {
        let ring = keys.ring();
        let vault = Vault::new(&*ring, PII_DATA, PII_INDEX);
        let enc = |col: &str, v: &str| {
            vault
                .encrypt_str(&field(col, &id), v)
                .map_err(|e| KeyError::Refused(format!("cannot encrypt {col}: {e}")))
        };
        let index = |col: &str, v: &str| {
            vault
                .blind_index(TABLE, col, &normalize_for_index(v))
                .map(|b| b.value)
                .map_err(|e| KeyError::Refused(format!("cannot index {col}: {e}")))
        };
        PersonRow {
            id: id.clone(),
            name_enc: enc(COLUMNS[0], name)?,
            id_number_enc: enc(COLUMNS[1], id_number)?,
            id_number_bidx: index("id_number", id_number)?,
            phone_enc: phone.map(|p| enc(COLUMNS[2], p)).transpose()?,
            phone_bidx: phone.map(|p| index("phone", p)).transpose()?,
        }
    };
    store.persons().insert(&row).await?;
    Ok(id)
}

/// Decrypts a stored row.
pub fn decrypt(keys: &impl KeyLookup, row: &PersonRow) -> Result<Person, KeyError> {
    let vault = Vault::new(keys, PII_DATA, PII_INDEX);
    let dec = |col: &str, v: &str| -> Result<String, KeyError> {
        let s: Zeroizing<String> = vault
            .decrypt_str(&field(col, &row.id), v)
            .map_err(|e| KeyError::Refused(format!("cannot decrypt {col} of {}: {e}", row.id)))?;
        Ok(s.as_str().to_owned())
    };
    Ok(Person {
        id: row.id.clone(),
        name: dec(COLUMNS[0], &row.name_enc)?,
        id_number: dec(COLUMNS[1], &row.id_number_enc)?,
        phone: row
            .phone_enc
            .as_deref()
            .map(|p| dec(COLUMNS[2], p))
            .transpose()?,
    })
}

/// Reads a person by id, decrypted; picks up a key rotation made elsewhere if needed.
pub async fn get(keys: &KeyService, store: &Store, id: &str) -> Result<Option<Person>, KeyError> {
    let Some(row) = store.persons().get(id).await? else {
        return Ok(None);
    };
    match decrypt(&*keys.ring(), &row) {
        Ok(p) => Ok(Some(p)),
        // A version written by another instance after our last reload: reload once.
        Err(_) => {
            keys.reload().await?;
            decrypt(&*keys.ring(), &row).map(Some)
        }
    }
}

/// Finds a person by ID number through the blind index.
pub async fn find_by_id_number(
    keys: &KeyService,
    store: &Store,
    id_number: &str,
) -> Result<Option<Person>, KeyError> {
    let bidx = {
        let ring = keys.ring();
        Vault::new(&*ring, PII_DATA, PII_INDEX)
            .blind_index(TABLE, "id_number", &normalize_for_index(id_number))
            .map_err(|e| KeyError::Refused(format!("cannot index: {e}")))?
            .value
    };
    match store.persons().find_by_id_number(&bidx).await? {
        Some(row) => get(keys, store, &row.id).await,
        None => Ok(None),
    }
}

/// Pages through the encrypted fields for [`rewrap_fields`]; cursors are `id#column`.
#[derive(Debug)]
pub struct PersonsRewrap<'a> {
    pub store: &'a Store,
}

fn parse_cursor(c: &str) -> Option<(&str, usize)> {
    let (id, col) = c.rsplit_once('#')?;
    Some((id, col.parse().ok()?))
}

impl RewrapStore for PersonsRewrap<'_> {
    type Error = StoreError;

    async fn next_batch(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredField>, StoreError> {
        let after = after.and_then(parse_cursor);
        let fields = self.store.persons().fields_after(after, limit).await?;
        Ok(fields
            .into_iter()
            .map(|f| StoredField {
                cursor: format!("{}#{}", f.id, f.column_index),
                table: TABLE.to_owned(),
                column: f.column.to_owned(),
                row_id: f.id,
                stored: f.stored,
            })
            .collect())
    }

    async fn replace(&mut self, field: &StoredField, new: &str) -> Result<bool, StoreError> {
        let Some((id, col)) = parse_cursor(&field.cursor) else {
            return Err(StoreError::Invalid("malformed rewrap cursor".to_owned()));
        };
        self.store
            .persons()
            .replace_field(id, col, &field.stored, new)
            .await
    }
}

/// Re-encrypts every stored field not under the current data-key version, from `start_after`.
pub async fn rewrap(
    keys: &KeyService,
    store: &Store,
    start_after: Option<String>,
    batch: usize,
    max: Option<u64>,
) -> Result<RewrapReport, KeyError> {
    let ring = keys.ring();
    let vault = Vault::new(&*ring, PII_DATA, PII_INDEX);
    let mut s = PersonsRewrap { store };
    rewrap_fields(&vault, &mut s, start_after, batch, max)
        .await
        .map_err(|e| KeyError::Refused(format!("{e}")))
}
