//! Single-use nonces: a nonce seen within its lifetime is a replay. In process or in Redis
//! (`SET NX PX`, one round trip, shared by every gateway instance). Errors fail closed: the
//! caller refuses the request when the store cannot answer.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
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

/// Nonces in this process, in shards with a lock each: growing one shard's table rehashes a
/// sixty-fourth of the nonces (a whole table of hundreds of thousands took tens of
/// milliseconds under the lock, every request waiting), and threads rarely meet on a lock.
#[derive(Debug)]
pub struct LocalNonces {
    shards: Box<[Mutex<Seen>]>,
    hasher: std::collections::hash_map::RandomState,
}

const SHARDS: usize = 64;

#[derive(Debug, Default)]
struct Seen {
    until: HashMap<Arc<str>, Duration>,
    /// The same nonces in the order they were recorded, so expired ones are forgotten from
    /// the front a few at a time, never in one long pause.
    order: VecDeque<(Duration, Arc<str>)>,
}

/// Nonces in Redis.
#[derive(Clone)]
pub struct RedisNonces {
    conn: ConnectionManager,
    prefix: String,
}

/// Live nonces held at most (about 120 MB; each shard holds its share); past it the store
/// refuses to answer, which refuses signed requests (fail closed) instead of growing without
/// bound. Deployments signing more than this per replay window use the Redis store.
const LOCAL_MAX: usize = 1_000_000;

#[async_trait::async_trait]
impl NonceStore for LocalNonces {
    async fn first_use(
        &self,
        nonce: &str,
        ttl: Duration,
        now: Duration,
    ) -> Result<bool, NonceError> {
        let shard = usize::try_from(self.hasher.hash_one(nonce) % SHARDS as u64).unwrap_or(0);
        let mut seen = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = &mut *seen;
        // Lifetimes are equal, so the oldest expire first: on average one removal per insert.
        while let Some((at, _)) = seen.order.front()
            && *at <= now
        {
            if let Some((at, n)) = seen.order.pop_front()
                && seen.until.get(&*n) == Some(&at)
            {
                seen.until.remove(&*n);
            }
        }
        if seen.until.get(nonce).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if seen.until.len() >= LOCAL_MAX / SHARDS {
            return Err(NonceError(format!(
                "{LOCAL_MAX} live nonces held in process; use the Redis nonce store"
            )));
        }
        let n: Arc<str> = nonce.into();
        seen.until.insert(n.clone(), now + ttl);
        seen.order.push_back((now + ttl, n));
        Ok(true)
    }
}

impl Default for LocalNonces {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
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
