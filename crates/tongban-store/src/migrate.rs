//! Embedded migrations, applied in order at start-up, each once, each in a transaction. An
//! applied migration whose text has since changed stops start-up instead of silently diverging.
//! Components (business services) migrate their own tables the same way, recorded apart, with
//! [`Store::migrate_component`].

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

// === component migrations ===

/// A migration of a component's own tables (a business service's, say), applied by
/// [`Store::migrate_component`]. Kept beside the platform's migrations rather than in them, so a
/// service ships and versions its schema with its own code and the platform never needs to know
/// it.
///
/// Name tables with a prefix of the component's (`hb_` for `hall-booking`): every component
/// shares the database's namespace. Like the platform's, a released migration must never be
/// edited: add a new version instead.
#[derive(Clone, Copy, Debug)]
pub struct ComponentMigration {
    /// Positive, strictly increasing within a component; the order of application.
    pub version: i64,
    /// A short name for logs and errors.
    pub name: &'static str,
    /// The SQL for SQLite (several statements allowed).
    pub sqlite: &'static str,
    /// The SQL for PostgreSQL (several statements allowed).
    pub postgres: &'static str,
}

/// Longest component name accepted, in bytes.
const MAX_COMPONENT_BYTES: usize = 64;

impl Store {
    /// Applies `component`'s pending `migrations` in order, with the platform's guarantees:
    /// each once (recorded in `tb_component_migrations` by component and version), all pending
    /// ones in one transaction (a failure applies none of them), under the platform's
    /// PostgreSQL advisory lock (instances starting together apply them once), and an applied
    /// migration whose text has since changed stops start-up with [`StoreError::Migration`]
    /// (its `name` is `component/name`).
    ///
    /// `component` is 1–64 of `a-z`, `0-9` and `-`; versions must be positive and strictly
    /// increasing, or the call is [`StoreError::Invalid`] and nothing is applied. Versions
    /// recorded but absent from `migrations` (a newer release ran) are left alone, as the
    /// platform's are.
    ///
    /// ```no_run
    /// # async fn demo(store: &tongban_store::Store) -> Result<(), tongban_store::StoreError> {
    /// use tongban_store::ComponentMigration;
    /// static MIGRATIONS: &[ComponentMigration] = &[ComponentMigration {
    ///     version: 1,
    ///     name: "items",
    ///     sqlite: "CREATE TABLE dm_items (id TEXT PRIMARY KEY)",
    ///     postgres: "CREATE TABLE dm_items (id TEXT PRIMARY KEY)",
    /// }];
    /// store.migrate_component("demo", MIGRATIONS).await
    /// # }
    /// ```
    pub async fn migrate_component(
        &self,
        component: &'static str,
        migrations: &[ComponentMigration],
    ) -> Result<(), StoreError> {
        check_component(component)?;
        let mut previous = 0;
        for m in migrations {
            if m.version <= previous {
                return Err(StoreError::Invalid(format!(
                    "migrations of {component} must have positive, strictly increasing \
                     versions; {} follows {previous}",
                    m.version
                )));
            }
            previous = m.version;
        }
        let mut tx = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            // The platform's own lock: component and platform migrations never interleave.
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PG_LOCK_KEY)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS tb_component_migrations (
                component TEXT NOT NULL,
                version BIGINT NOT NULL,
                name TEXT NOT NULL,
                checksum TEXT NOT NULL,
                applied_at BIGINT NOT NULL,
                PRIMARY KEY (component, version)
            )",
        )
        .execute(&mut *tx)
        .await?;
        for m in migrations {
            let sql = match self.backend() {
                Backend::Sqlite => m.sqlite,
                Backend::Postgres => m.postgres,
            };
            let sum = checksum(sql);
            let failed = |message: String| StoreError::Migration {
                version: m.version,
                name: format!("{component}/{}", m.name),
                message,
            };
            let existing = sqlx::query(
                "SELECT checksum FROM tb_component_migrations \
                 WHERE component = $1 AND version = $2",
            )
            .bind(component)
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = existing {
                let applied: String = row.try_get(0)?;
                if applied != sum {
                    return Err(failed(format!(
                        "was applied with checksum {applied} but this release has {sum}; \
                         migrations must not be edited once released"
                    )));
                }
                continue;
            }
            sqlx::raw_sql(sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| failed(e.to_string()))?;
            sqlx::query(
                "INSERT INTO tb_component_migrations \
                 (component, version, name, checksum, applied_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(component)
            .bind(m.version)
            .bind(m.name)
            .bind(&sum)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
            tracing::info!(
                component,
                version = m.version,
                migration = m.name,
                "Applied component migration."
            );
        }
        tx.commit().await?;
        Ok(())
    }

    /// The versions of `component`'s migrations applied, oldest first (none before its first
    /// [`migrate_component`](Self::migrate_component)).
    pub async fn applied_component_migrations(
        &self,
        component: &str,
    ) -> Result<Vec<i64>, StoreError> {
        check_component(component)?;
        let exists = match self.backend() {
            Backend::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master \
                 WHERE type = 'table' AND name = 'tb_component_migrations'"
            }
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'tb_component_migrations'"
            }
        };
        let n: i64 = sqlx::query_scalar(exists).fetch_one(self.pool()).await?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT version FROM tb_component_migrations WHERE component = $1 ORDER BY version",
        )
        .bind(component)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<i64, _>(0).map_err(StoreError::from))
            .collect()
    }
}

fn check_component(component: &str) -> Result<(), StoreError> {
    let ok = !component.is_empty()
        && component.len() <= MAX_COMPONENT_BYTES
        && component
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a component name is 1 to 64 of a-z, 0-9 and -".to_owned(),
        ))
    }
}
