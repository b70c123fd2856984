//! Single-use nonces: a nonce seen within its lifetime is a replay. In process or in Redis
//! (`SET NX PX`, one round trip, shared by every gateway instance). Errors fail closed: the
//! caller refuses the request when the store cannot answer.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
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

/// Nonces in this process.
#[derive(Debug, Default)]
pub struct LocalNonces {
    seen: Mutex<Seen>,
}

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
        if seen.until.len() >= LOCAL_MAX {
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
