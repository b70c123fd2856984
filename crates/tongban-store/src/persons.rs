//! Citizens' personal records as the vault leaves them: every field ciphertext, found by blind
//! index. This module never sees plaintext; encryption happens before a row reaches it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// The table and the encrypted columns, as bound into each field's ciphertext.
pub const TABLE: &str = "tb_persons";
pub const COLUMNS: [&str; 3] = ["name_enc", "id_number_enc", "phone_enc"];

/// One person, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub name_enc: String,
    pub id_number_enc: String,
    pub id_number_bidx: String,
    pub phone_enc: Option<String>,
    pub phone_bidx: Option<String>,
}

/// One encrypted field, with its position in a stable order (`id`, column index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonField {
    pub id: String,
    pub column: &'static str,
    pub column_index: usize,
    pub stored: String,
}

/// The persons repository of a [`Store`].
#[derive(Clone, Copy, Debug)]
pub struct Persons<'a> {
    store: &'a Store,
}

impl Store {
    pub fn persons(&self) -> Persons<'_> {
        Persons { store: self }
    }
}

const SELECT: &str =
    "SELECT id, name_enc, id_number_enc, id_number_bidx, phone_enc, phone_bidx FROM tb_persons";

// === impl Persons ===

impl Persons<'_> {
    /// Inserts a person; an ID number already present (same blind index) is a conflict and
    /// changes nothing.
    pub async fn insert(&self, p: &PersonRow) -> Result<(), StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "INSERT INTO tb_persons (id, name_enc, id_number_enc, id_number_bidx, phone_enc, phone_bidx, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.name_enc)
        .bind(&p.id_number_enc)
        .bind(&p.id_number_bidx)
        .bind(&p.phone_enc)
        .bind(&p.phone_bidx)
        .bind(now)
        .bind(now)
        .execute(self.store.pool())
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                expected: "a new person".to_owned(),
                actual: "the id or ID number exists".to_owned(),
            })
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<PersonRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("{SELECT} WHERE id = $1")))
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(person).transpose()
    }

    pub async fn find_by_id_number(&self, bidx: &str) -> Result<Option<PersonRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE id_number_bidx = $1"
        )))
        .bind(bidx)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(person).transpose()
    }

    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query("SELECT COUNT(*) FROM tb_persons")
            .fetch_one(self.store.pool())
            .await?
            .try_get(0)?)
    }

    /// Up to `limit` encrypted fields after position `after`, in (id, column) order.
    pub async fn fields_after(
        &self,
        after: Option<(&str, usize)>,
        limit: usize,
    ) -> Result<Vec<PersonField>, StoreError> {
        let start = after.map_or("", |(id, _)| id);
        let persons = i64::try_from(limit.div_ceil(COLUMNS.len()) + 1).unwrap_or(i64::MAX);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SELECT} WHERE id >= $1 ORDER BY id LIMIT $2"
        )))
        .bind(start)
        .bind(persons)
        .fetch_all(self.store.pool())
        .await?;
        let mut out = Vec::new();
        for r in &rows {
            let p = person(r)?;
            let values = [Some(p.name_enc), Some(p.id_number_enc), p.phone_enc];
            for (i, v) in values.into_iter().enumerate() {
                let Some(stored) = v else { continue };
                if let Some((aid, ai)) = after
                    && (p.id.as_str() < aid || (p.id == aid && i <= ai))
                {
                    continue;
                }
                out.push(PersonField {
                    id: p.id.clone(),
                    column: COLUMNS[i],
                    column_index: i,
                    stored,
                });
                if out.len() == limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    /// Replaces one encrypted field only if it still holds `old`; returns whether it did.
    pub async fn replace_field(
        &self,
        id: &str,
        column_index: usize,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let column = COLUMNS
            .get(column_index)
            .ok_or_else(|| StoreError::Invalid(format!("no encrypted column {column_index}")))?;
        // The column name comes from the fixed list above, never from input.
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE tb_persons SET {column} = $1, updated_at = $2 WHERE id = $3 AND {column} = $4"
        )))
        .bind(new)
        .bind(now_ms())
        .bind(id)
        .bind(old)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn person(r: &AnyRow) -> Result<PersonRow, StoreError> {
    Ok(PersonRow {
        id: r.try_get(0)?,
        name_enc: r.try_get(1)?,
        id_number_enc: r.try_get(2)?,
        id_number_bidx: r.try_get(3)?,
        phone_enc: r.try_get(4)?,
        phone_bidx: r.try_get(5)?,
    })
}
