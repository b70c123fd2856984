//! Embedded migrations, applied in order at start-up, each once, each in a transaction. An
//! applied migration whose text has since changed stops start-up instead of silently diverging.

use sqlx::Row;

use crate::{Backend, Store, StoreError, now_ms};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "kv",
        sqlite: include_str!("../migrations/sqlite/0001_kv.sql"),
        postgres: include_str!("../migrations/postgres/0001_kv.sql"),
    },
    Migration {
        version: 2,
        name: "keyring_persons",
        sqlite: include_str!("../migrations/sqlite/0002_keyring_persons.sql"),
        postgres: include_str!("../migrations/postgres/0002_keyring_persons.sql"),
    },
    Migration {
        version: 3,
        name: "identity",
        sqlite: include_str!("../migrations/sqlite/0003_identity.sql"),
        postgres: include_str!("../migrations/postgres/0003_identity.sql"),
    },
];

// Arbitrary constant naming Tongban's migration lock among PostgreSQL advisory locks.
const PG_LOCK_KEY: i64 = 0x7462_6d69_6772;

/// FNV-1a, enough to notice an edited migration file (not a security boundary).
fn checksum(sql: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sql.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub(crate) async fn run(store: &Store) -> Result<(), StoreError> {
    // One transaction for the lot: several instances may start at once against one database;
    // one applies, the others wait on the lock and then find nothing to do.
    let mut tx = store.begin_write().await?;
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PG_LOCK_KEY)
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS tb_schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            checksum TEXT NOT NULL,
            applied_at BIGINT NOT NULL
        )",
    )
    .execute(&mut *tx)
    .await?;
    for m in MIGRATIONS {
        let sql = match store.backend() {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let sum = checksum(sql);
        let existing = sqlx::query("SELECT checksum FROM tb_schema_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = existing {
            let applied: String = row.try_get(0)?;
            if applied != sum {
                return Err(StoreError::Migration {
                    version: m.version,
                    name: m.name.to_owned(),
                    message: format!(
                        "was applied with checksum {applied} but the embedded file has {sum}; \
                         migrations must not be edited once released"
                    ),
                });
            }
            continue;
        }
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::Migration {
                version: m.version,
                name: m.name.to_owned(),
                message: e.to_string(),
            })?;
        sqlx::query(
            "INSERT INTO tb_schema_migrations (version, name, checksum, applied_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(&sum)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tracing::info!(
            version = m.version,
            migration = m.name,
            "Applied migration."
        );
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn applied(store: &Store) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM tb_schema_migrations ORDER BY version")
        .fetch_all(store.pool())
        .await?;
    rows.iter()
        .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::from))
        .collect()
}
