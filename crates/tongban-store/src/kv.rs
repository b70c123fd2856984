//! Versioned documents by namespace and key, with optimistic concurrency and full history: the
//! persistence under route rules, limits, breaker settings and the embedded config centre.
//! A failed write leaves the stored document and its history exactly as they were.

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Store, StoreError, now_ms};

/// Largest value accepted, in bytes.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest namespace or key accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvEntry {
    pub namespace: String,
    pub key: String,
    /// Starts at 1 and grows by one with every change, deletions included.
    pub version: i64,
    /// `None` in history for a deletion.
    pub value: Option<String>,
    pub updated_at_ms: i64,
}

/// What the caller believes the current state is; the write happens only if it is right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Write whatever is there.
    Any,
    /// Create only: fail if the key exists.
    Absent,
    /// Update only the given version.
    Version(i64),
}

/// The key/value repository of a [`Store`].
#[derive(Clone, Copy, Debug)]
pub struct Kv<'a> {
    store: &'a Store,
}

impl Store {
    pub fn kv(&self) -> Kv<'_> {
        Kv { store: self }
    }
}

// === impl Kv ===

impl Kv<'_> {
    pub async fn get(&self, namespace: &str, key: &str) -> Result<Option<KvEntry>, StoreError> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        let row = sqlx::query(
            "SELECT namespace, key, version, value, updated_at FROM tb_kv \
             WHERE namespace = $1 AND key = $2",
        )
        .bind(namespace)
        .bind(key)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(entry).transpose()
    }

    /// All current documents of a namespace, by key.
    pub async fn list(&self, namespace: &str) -> Result<Vec<KvEntry>, StoreError> {
        check_name("namespace", namespace)?;
        let rows = sqlx::query(
            "SELECT namespace, key, version, value, updated_at FROM tb_kv \
             WHERE namespace = $1 ORDER BY key",
        )
        .bind(namespace)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Every version of a document, oldest first, deletions included.
    pub async fn history(&self, namespace: &str, key: &str) -> Result<Vec<KvEntry>, StoreError> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        let rows = sqlx::query(
            "SELECT namespace, key, version, value, updated_at FROM tb_kv_history \
             WHERE namespace = $1 AND key = $2 ORDER BY version",
        )
        .bind(namespace)
        .bind(key)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(entry).collect()
    }

    /// Writes `value` if `expect` holds; returns the new entry.
    pub async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expect: Expect,
    ) -> Result<KvEntry, StoreError> {
        // `Any` means last writer wins: a race lost to another writer is retried, not reported.
        let mut tries = 0;
        loop {
            match self.put_once(namespace, key, value, expect).await {
                Err(StoreError::Conflict { .. }) if expect == Expect::Any && tries < 32 => {
                    tries += 1;
                    tokio::task::yield_now().await;
                }
                other => return other,
            }
        }
    }

    async fn put_once(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expect: Expect,
    ) -> Result<KvEntry, StoreError> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        if value.contains('\0') {
            // PostgreSQL text cannot hold NUL; refuse it on every backend alike.
            return Err(StoreError::Invalid(
                "value must not contain NUL characters".to_owned(),
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(StoreError::Invalid(format!(
                "value is {} bytes; at most {MAX_VALUE_BYTES} are accepted",
                value.len()
            )));
        }
        let mut tx = self.store.begin_write().await?;
        let current = current_version(&mut tx, self.store.backend(), namespace, key).await?;
        check_expect(expect, current)?;
        let now = now_ms();
        let version = match current {
            Some(v) => {
                let done = sqlx::query(
                    "UPDATE tb_kv SET value = $1, version = $2, updated_at = $3 \
                     WHERE namespace = $4 AND key = $5 AND version = $6",
                )
                .bind(value)
                .bind(v + 1)
                .bind(now)
                .bind(namespace)
                .bind(key)
                .bind(v)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(conflict(expect, Some(v)));
                }
                v + 1
            }
            None => {
                // A re-created key continues its history's numbering.
                let last: Option<i64> = sqlx::query(
                    "SELECT MAX(version) FROM tb_kv_history WHERE namespace = $1 AND key = $2",
                )
                .bind(namespace)
                .bind(key)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
                let v = last.unwrap_or(0) + 1;
                let done = sqlx::query(
                    "INSERT INTO tb_kv (namespace, key, version, value, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .bind(namespace)
                .bind(key)
                .bind(v)
                .bind(value)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Err(conflict(expect, None));
                }
                v
            }
        };
        record_history(&mut tx, namespace, key, version, Some(value), now).await?;
        tx.commit().await?;
        Ok(KvEntry {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            version,
            value: Some(value.to_owned()),
            updated_at_ms: now,
        })
    }

    /// Deletes a document if `expect` holds; its history stays, with a deletion record.
    pub async fn delete(
        &self,
        namespace: &str,
        key: &str,
        expect: Expect,
    ) -> Result<(), StoreError> {
        check_name("namespace", namespace)?;
        check_name("key", key)?;
        let mut tx = self.store.begin_write().await?;
        let current = current_version(&mut tx, self.store.backend(), namespace, key).await?;
        let Some(v) = current else {
            return Err(StoreError::NotFound);
        };
        check_expect(expect, current)?;
        let done =
            sqlx::query("DELETE FROM tb_kv WHERE namespace = $1 AND key = $2 AND version = $3")
                .bind(namespace)
                .bind(key)
                .bind(v)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Err(conflict(expect, Some(v)));
        }
        record_history(&mut tx, namespace, key, v + 1, None, now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The current version, locked for the rest of the transaction (SQLite's `BEGIN IMMEDIATE`
/// already holds the database's write lock; PostgreSQL locks the row).
async fn current_version(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    namespace: &str,
    key: &str,
) -> Result<Option<i64>, StoreError> {
    let sql = match backend {
        Backend::Sqlite => "SELECT version FROM tb_kv WHERE namespace = $1 AND key = $2",
        Backend::Postgres => {
            "SELECT version FROM tb_kv WHERE namespace = $1 AND key = $2 FOR UPDATE"
        }
    };
    let row = sqlx::query(sql)
        .bind(namespace)
        .bind(key)
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| r.try_get::<i64, _>(0))
        .transpose()
        .map_err(Into::into)
}

async fn record_history(
    tx: &mut Transaction<'_, Any>,
    namespace: &str,
    key: &str,
    version: i64,
    value: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tb_kv_history (namespace, key, version, value, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(namespace)
    .bind(key)
    .bind(version)
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn check_expect(expect: Expect, current: Option<i64>) -> Result<(), StoreError> {
    match (expect, current) {
        (Expect::Any, _) | (Expect::Absent, None) => Ok(()),
        (Expect::Version(want), Some(have)) if want == have => Ok(()),
        _ => Err(conflict(expect, current)),
    }
}

fn conflict(expect: Expect, current: Option<i64>) -> StoreError {
    let show = |v: Option<i64>| v.map_or_else(|| "absent".to_owned(), |v| format!("version {v}"));
    StoreError::Conflict {
        expected: match expect {
            Expect::Any => "any".to_owned(),
            Expect::Absent => "absent".to_owned(),
            Expect::Version(v) => show(Some(v)),
        },
        actual: show(current),
    }
}

/// Names are printable ASCII without spaces, so they are safe in URLs, logs and NATS subjects.
fn check_name(what: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME_BYTES} bytes"
        )));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(StoreError::Invalid(format!(
            "{what} may hold only letters, digits, '-', '_', '.' and '/'; found {c:?}"
        )));
    }
    Ok(())
}

fn entry(r: &AnyRow) -> Result<KvEntry, StoreError> {
    Ok(KvEntry {
        namespace: r.try_get(0)?,
        key: r.try_get(1)?,
        version: r.try_get(2)?,
        value: r.try_get(3)?,
        updated_at_ms: r.try_get(4)?,
    })
}
