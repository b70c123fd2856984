//! The audit log of queries sent to the province (`si_query_log`): who asked (the caller's
//! pseudonym at this service), when, whose records, for which months, how it ended (the code
//! the citizen was answered) and the request id that finds the query in the platform's logs.
//!
//! Whose records is a blind index of the queried ID number, never the number or the name:
//! the vault's index (`tongban_crypto::vault`, HMAC-SM3 bound to table and column, Base64
//! URL-safe) under the service's own index key from its configuration, with the key's
//! version beside it. An auditor who holds an ID number finds its queries with
//! [`QueryLog::entries_for`]; the table alone tells no one whose records were read.

use sqlx::Row;
use tongban_crypto::vault::{BlindIndex, StaticKeys, Vault, VaultError, normalize_for_index};
use tongban_store::{ComponentMigration, Store, StoreError};

use crate::config::IndexKey;
use crate::query::Period;

/// The component its migrations are recorded under (whatever the registry name).
pub const COMPONENT: &str = "social-insurance";

/// The table, and the table the blind index is bound to.
pub const TABLE: &str = "si_query_log";

/// The column the blind index stands for.
const INDEXED_COLUMN: &str = "id_number";

/// The key id of the index key among the vault's keys (the service holds only this one).
const INDEX_KEY_ID: &str = "si-query-index";

static MIGRATIONS: &[ComponentMigration] = &[ComponentMigration {
    version: 1,
    name: "query_log",
    sqlite: include_str!("../migrations/sqlite/0001_query_log.sql"),
    postgres: include_str!("../migrations/postgres/0001_query_log.sql"),
}];

/// The log, with the key its blind indexes are made under.
#[derive(Debug)]
pub struct QueryLog {
    store: Store,
    keys: StaticKeys,
}

/// One query, as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When, Unix milliseconds.
    pub at_ms: i64,
    /// The caller's pseudonym at this service.
    pub subject: Option<String>,
    pub request_id: Option<String>,
    /// Whether the caller asked for their own records.
    pub own: bool,
    /// The blind index of the queried ID number.
    pub person_index: BlindIndex,
    pub period_from: String,
    pub period_to: String,
    /// The code the citizen was answered (0, 10022, or a 300xx of the province).
    pub code: u32,
    /// How many records were answered.
    pub records: u32,
}

/// A query about to be logged.
#[derive(Debug)]
pub(crate) struct NewEntry<'a> {
    pub(crate) subject: Option<&'a str>,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) own: bool,
    pub(crate) id_number: &'a str,
    pub(crate) period: Period,
    pub(crate) code: u32,
    pub(crate) records: usize,
}

/// Why the log could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("blind index: {0}")]
    Index(#[from] VaultError),
}

// === impl QueryLog ===

impl QueryLog {
    /// The log in `store`, its table migrated.
    pub async fn open(store: Store, key: &IndexKey) -> Result<Self, StoreError> {
        store.migrate_component(COMPONENT, MIGRATIONS).await?;
        let mut keys = StaticKeys::new();
        keys.insert(INDEX_KEY_ID, key.version, key.key.clone());
        Ok(Self { store, keys })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The blind index of an ID number under the current key (`x` and `X` alike).
    pub fn index(&self, id_number: &str) -> Result<BlindIndex, VaultError> {
        let normalized = zeroize::Zeroizing::new(normalize_for_index(id_number));
        Vault::new(&self.keys, "", INDEX_KEY_ID).blind_index(TABLE, INDEXED_COLUMN, &normalized)
    }

    /// Writes one entry.
    pub(crate) async fn record(&self, e: &NewEntry<'_>) -> Result<(), LogError> {
        let index = self.index(e.id_number)?;
        sqlx::query(
            "INSERT INTO si_query_log (at_ms, subject, request_id, own, person_index, \
             index_key_version, period_from, period_to, code, records) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(now_ms())
        .bind(e.subject)
        .bind(e.request_id)
        .bind(i64::from(e.own))
        .bind(&index.value)
        .bind(i64::from(index.key_version))
        .bind(e.period.from.to_string())
        .bind(e.period.to.to_string())
        .bind(i64::from(e.code))
        .bind(i64::try_from(e.records).unwrap_or(i64::MAX))
        .execute(self.store.pool())
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }

    /// Every query about `id_number`, oldest first: what an auditor asks.
    pub async fn entries_for(&self, id_number: &str) -> Result<Vec<Entry>, LogError> {
        let index = self.index(id_number)?;
        let rows = sqlx::query(
            "SELECT at_ms, subject, request_id, own, person_index, index_key_version, \
             period_from, period_to, code, records FROM si_query_log \
             WHERE person_index = $1 AND index_key_version = $2 ORDER BY id",
        )
        .bind(&index.value)
        .bind(i64::from(index.key_version))
        .fetch_all(self.store.pool())
        .await
        .map_err(StoreError::from)?;
        rows.iter().map(entry).collect()
    }

    /// The latest `limit` entries, newest first.
    pub async fn recent(&self, limit: u32) -> Result<Vec<Entry>, LogError> {
        let rows = sqlx::query(
            "SELECT at_ms, subject, request_id, own, person_index, index_key_version, \
             period_from, period_to, code, records FROM si_query_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await
        .map_err(StoreError::from)?;
        rows.iter().map(entry).collect()
    }
}

fn entry(r: &sqlx::any::AnyRow) -> Result<Entry, LogError> {
    let int = |i: usize| r.try_get::<i64, _>(i).map_err(StoreError::from);
    Ok(Entry {
        at_ms: int(0)?,
        subject: r.try_get(1).map_err(StoreError::from)?,
        request_id: r.try_get(2).map_err(StoreError::from)?,
        own: int(3)? != 0,
        person_index: BlindIndex {
            value: r.try_get(4).map_err(StoreError::from)?,
            key_version: u32::try_from(int(5)?).unwrap_or(0),
        },
        period_from: r.try_get(6).map_err(StoreError::from)?,
        period_to: r.try_get(7).map_err(StoreError::from)?,
        code: u32::try_from(int(8)?).unwrap_or(0),
        records: u32::try_from(int(9)?).unwrap_or(u32::MAX),
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
