//! Single-use nonces: a nonce seen within its lifetime is a replay. In process or in Redis
//! (`SET NX PX`, one round trip, shared by every gateway instance). Errors fail closed: the
//! caller refuses the request when the store cannot answer.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use redis::aio::ConnectionManager;

/// Why the nonce store could not answer.
#[derive(Debug, thiserror::Error)]
#[error("nonce store: {0}")]
pub struct NonceError(pub String);

/// Remembers nonces.
#[async_trait::async_trait]
pub trait NonceStore: Send + Sync + Debug + 'static {
    /// True if `nonce` was unseen (and is now recorded for `ttl`); false for a replay.
    async fn first_use(
        &self,
        nonce: &str,
        ttl: Duration,
        now: Duration,
    ) -> Result<bool, NonceError>;
}

/// Nonces in this process.
#[derive(Debug, Default)]
pub struct LocalNonces {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<String, Duration>,
    /// Size at which expired nonces are next swept out.
    sweep_at: usize,
}

/// Nonces in Redis.
#[derive(Clone)]
pub struct RedisNonces {
    conn: ConnectionManager,
    prefix: String,
}

/// Expired nonces are swept out once this many are held, and then each time the number held
/// has doubled since the last sweep: amortized constant work per request, however many live
/// nonces a busy instance holds.
const LOCAL_SWEEP_AT: usize = 100_000;

/// Live nonces held at most (about 120 MB); past it the store refuses to answer, which refuses
/// signed requests (fail closed) instead of growing without bound. Deployments signing more
/// than this per replay window use the Redis store.
const LOCAL_MAX: usize = 1_000_000;

#[async_trait::async_trait]
impl NonceStore for LocalNonces {
    async fn first_use(
        &self,
        nonce: &str,
        ttl: Duration,
        now: Duration,
    ) -> Result<bool, NonceError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = &mut *seen;
        if seen.until.get(nonce).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if seen.until.len() >= seen.sweep_at.max(LOCAL_SWEEP_AT) {
            seen.until.retain(|_, until| *until > now);
            seen.sweep_at = seen.until.len().saturating_mul(2);
        }
        if seen.until.len() >= LOCAL_MAX {
            return Err(NonceError(format!(
                "{LOCAL_MAX} live nonces held in process; use the Redis nonce store"
            )));
        }
        seen.until.insert(nonce.to_owned(), now + ttl);
        Ok(true)
    }
}

// === impl RedisNonces ===

impl RedisNonces {
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, NonceError> {
        let client = redis::Client::open(url).map_err(|e| NonceError(e.to_string()))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| NonceError(e.to_string()))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }
}

impl Debug for RedisNonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisNonces")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl NonceStore for RedisNonces {
    async fn first_use(
        &self,
        nonce: &str,
        ttl: Duration,
        _now: Duration,
    ) -> Result<bool, NonceError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("{}{nonce}", self.prefix))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut conn)
            .await
            .map_err(|e| NonceError(e.to_string()))?;
        Ok(set.is_some())
    }
}
