//! Rows of the key hierarchy: policies, wrapped versions, the audit chain, root-key components
//! kept in the database, and the envelope's SM2 key pairs. Plain rows only: wrapping, unwrapping
//! and chaining are `tongban-crypto`'s; this module only keeps what it is given, atomically.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError, now_ms};

/// One key id's policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPolicyRow {
    pub key_id: String,
    pub kind: String,
    pub parent: String,
    pub current_version: i64,
    pub min_decryption_version: i64,
}

/// One wrapped key version (`wrapped` is Base64 of nonce‖ciphertext‖tag).
#[derive(Clone, PartialEq, Eq)]
pub struct KeyVersionRow {
    pub key_id: String,
    pub version: i64,
    pub wrapped_by: String,
    pub wrapped_by_version: i64,
    pub wrapped: String,
    pub kcv: String,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for KeyVersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersionRow")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("wrapped_by", &self.wrapped_by)
            .field("kcv", &self.kcv)
            .finish_non_exhaustive()
    }
}

/// One record of the audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAuditRow {
    pub seq: i64,
    pub actor: String,
    pub at_ms: i64,
    pub operation: String,
    pub key_id: String,
    pub version: i64,
    pub prev_hash: String,
    pub hash: String,
}

/// One envelope key pair (private key vault-encrypted).
#[derive(Clone, PartialEq, Eq)]
pub struct EnvelopeKeyRow {
    pub kid: String,
    pub public_key: String,
    pub private_enc: String,
    pub is_current: bool,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for EnvelopeKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvelopeKeyRow")
            .field("kid", &self.kid)
            .field("is_current", &self.is_current)
            .finish_non_exhaustive()
    }
}

/// The key repository of a [`Store`].
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    store: &'a Store,
}

impl Store {
    pub fn keys(&self) -> Keys<'_> {
        Keys { store: self }
    }
}

// === impl Keys ===

impl Keys<'_> {
    pub async fn policies(&self) -> Result<Vec<KeyPolicyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, kind, parent, current_version, min_decryption_version \
             FROM tb_key_policies ORDER BY key_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyPolicyRow {
                    key_id: r.try_get(0)?,
                    kind: r.try_get(1)?,
                    parent: r.try_get(2)?,
                    current_version: r.try_get(3)?,
                    min_decryption_version: r.try_get(4)?,
                })
            })
            .collect()
    }

    pub async fn versions(&self) -> Result<Vec<KeyVersionRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, version, wrapped_by, wrapped_by_version, wrapped, kcv, created_at \
             FROM tb_key_versions ORDER BY key_id, version",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(KeyVersionRow {
                    key_id: r.try_get(0)?,
                    version: r.try_get(1)?,
                    wrapped_by: r.try_get(2)?,
                    wrapped_by_version: r.try_get(3)?,
                    wrapped: r.try_get(4)?,
                    kcv: r.try_get(5)?,
                    created_at_ms: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// The whole audit chain, oldest first.
    pub async fn audit(&self) -> Result<Vec<KeyAuditRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, actor, at_ms, operation, key_id, version, prev_hash, hash \
             FROM tb_key_audit ORDER BY seq",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// The newest audit record, which the next one must chain to.
    pub async fn audit_head(&self) -> Result<Option<KeyAuditRow>, StoreError> {
        let row = sqlx::query(
            "SELECT seq, actor, at_ms, operation, key_id, version, prev_hash, hash \
             FROM tb_key_audit ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(audit_row).transpose()
    }

    /// Saves one keyring change atomically: policies and versions upserted, audit records
    /// appended. An audit `seq` already taken (a concurrent operation won) fails the whole
    /// change with a conflict, so the chain never forks.
    pub async fn apply(
        &self,
        policies: &[KeyPolicyRow],
        versions: &[KeyVersionRow],
        audit: &[KeyAuditRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        if let Some(first) = audit.first() {
            let head: Option<i64> = sqlx::query("SELECT MAX(seq) FROM tb_key_audit")
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            let expected = head.map_or(0, |h| h + 1);
            if first.seq != expected {
                return Err(StoreError::Conflict {
                    expected: format!("audit seq {}", first.seq),
                    actual: format!("next seq is {expected}"),
                });
            }
        }
        for p in policies {
            sqlx::query(
                "INSERT INTO tb_key_policies (key_id, kind, parent, current_version, min_decryption_version) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (key_id) DO UPDATE SET kind = excluded.kind, parent = excluded.parent, \
                 current_version = excluded.current_version, \
                 min_decryption_version = excluded.min_decryption_version",
            )
            .bind(&p.key_id)
            .bind(&p.kind)
            .bind(&p.parent)
            .bind(p.current_version)
            .bind(p.min_decryption_version)
            .execute(&mut *tx)
            .await?;
        }
        for v in versions {
            sqlx::query(
                "INSERT INTO tb_key_versions (key_id, version, wrapped_by, wrapped_by_version, wrapped, kcv, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (key_id, version) DO UPDATE SET wrapped_by = excluded.wrapped_by, \
                 wrapped_by_version = excluded.wrapped_by_version, wrapped = excluded.wrapped",
            )
            .bind(&v.key_id)
            .bind(v.version)
            .bind(&v.wrapped_by)
            .bind(v.wrapped_by_version)
            .bind(&v.wrapped)
            .bind(&v.kcv)
            .bind(v.created_at_ms)
            .execute(&mut *tx)
            .await?;
        }
        for a in audit {
            sqlx::query(
                "INSERT INTO tb_key_audit (seq, actor, at_ms, operation, key_id, version, prev_hash, hash) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(a.seq)
            .bind(&a.actor)
            .bind(a.at_ms)
            .bind(&a.operation)
            .bind(&a.key_id)
            .bind(a.version)
            .bind(&a.prev_hash)
            .bind(&a.hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A root-key component kept in the database, by name.
    pub async fn component(&self, name: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT component FROM tb_key_components WHERE name = $1")
            .bind(name)
            .fetch_optional(self.store.pool())
            .await?;
        row.map(|r| r.try_get::<String, _>(0))
            .transpose()
            .map_err(Into::into)
    }

    /// Stores a component; refuses to overwrite one (replacing a component is a re-split).
    pub async fn put_component(&self, name: &str, component: &str) -> Result<(), StoreError> {
        let done = sqlx::query(
            "INSERT INTO tb_key_components (name, component, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(component)
        .bind(now_ms())
        .execute(self.store.pool())
        .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict {
                expected: format!("no component named {name}"),
                actual: "one exists".to_owned(),
            })
        }
    }

    pub async fn envelope_keys(&self) -> Result<Vec<EnvelopeKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, public_key, private_enc, is_current, created_at FROM tb_envelope_keys \
             ORDER BY created_at, kid",
        )
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EnvelopeKeyRow {
                    kid: r.try_get(0)?,
                    public_key: r.try_get(1)?,
                    private_enc: r.try_get(2)?,
                    is_current: r.try_get::<i64, _>(3)? != 0,
                    created_at_ms: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Adds a key pair and makes it the current one.
    pub async fn add_envelope_key(&self, row: &EnvelopeKeyRow) -> Result<(), StoreError> {
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE tb_envelope_keys SET is_current = 0")
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO tb_envelope_keys (kid, public_key, private_enc, is_current, created_at) \
             VALUES ($1, $2, $3, 1, $4)",
        )
        .bind(&row.kid)
        .bind(&row.public_key)
        .bind(&row.private_enc)
        .bind(row.created_at_ms)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

fn audit_row(r: &AnyRow) -> Result<KeyAuditRow, StoreError> {
    Ok(KeyAuditRow {
        seq: r.try_get(0)?,
        actor: r.try_get(1)?,
        at_ms: r.try_get(2)?,
        operation: r.try_get(3)?,
        key_id: r.try_get(4)?,
        version: r.try_get(5)?,
        prev_hash: r.try_get(6)?,
        hash: r.try_get(7)?,
    })
}
