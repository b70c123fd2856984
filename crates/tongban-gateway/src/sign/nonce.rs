//! Single-use nonces: a nonce seen within its lifetime is a replay. In process or in Redis
//! (`SET NX PX`, one round trip, shared by every gateway instance). Errors fail closed: the
//! caller refuses the request when the store cannot answer.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
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

/// Nonces in this process, in shards with a lock each: growing one shard's table rehashes a
/// sixty-fourth of the nonces (a whole table of hundreds of thousands took tens of
/// milliseconds under the lock, every request waiting), and threads rarely meet on a lock.
///
/// A nonce is kept as a 128-bit keyed hash (two SipHash-1-3 with random keys), not as its text:
/// 64 bytes a nonce with no allocation of its own, where a shared string, its map entry and
/// its place in the expiry queue took about twice that. Two nonces meeting on the same hash by
/// chance (about one pair in 2^128) would refuse the second as a replay; a replay is never
/// admitted, as its hash is the same.
#[derive(Debug)]
pub struct LocalNonces {
    shards: Box<[Mutex<Seen>]>,
    keys: [RandomState; 2],
}

const SHARDS: usize = 64;

#[derive(Debug, Default)]
struct Seen {
    /// Nonce hash -> end of its lifetime (milliseconds on the caller's clock).
    until: HashMap<u128, u64, BuildHasherDefault<Prehashed>>,
    /// The same nonces in the order they were recorded, so expired ones are forgotten from
    /// the front a few at a time, never in one long pause.
    order: VecDeque<(u64, u128)>,
}

/// The map's hash of a key that is already a keyed hash: its low 64 bits.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u128 keys are hashed here; anything else still gets a hash.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, i: u128) {
        // Truncation intended: the low half of a uniformly random value.
        #[allow(clippy::cast_possible_truncation)]
        {
            self.0 = i as u64;
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Nonces in Redis.
#[derive(Clone)]
pub struct RedisNonces {
    conn: ConnectionManager,
    prefix: String,
}

/// Live nonces held at most (about 75 MB with the tables' spare room; each shard holds its
/// share); past it the store refuses to answer, which refuses signed requests (fail closed)
/// instead of growing without bound. Deployments signing more than this per replay window use
/// the Redis store.
const LOCAL_MAX: usize = 1_000_000;

#[async_trait::async_trait]
impl NonceStore for LocalNonces {
    async fn first_use(
        &self,
        nonce: &str,
        ttl: Duration,
        now: Duration,
    ) -> Result<bool, NonceError> {
        let h = (u128::from(self.keys[0].hash_one(nonce)) << 64)
            | u128::from(self.keys[1].hash_one(nonce));
        // The shard from the high half, the map's hash from the low half.
        let shard = usize::try_from((h >> 64) % SHARDS as u128).unwrap_or(0);
        let (now, end) = (millis(now), millis(now + ttl));
        let mut seen = self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seen = &mut *seen;
        // Lifetimes are equal, so the oldest expire first: on average one removal per insert.
        while let Some(&(at, n)) = seen.order.front()
            && at <= now
        {
            seen.order.pop_front();
            if seen.until.get(&n) == Some(&at) {
                seen.until.remove(&n);
            }
        }
        if seen.until.get(&h).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if seen.until.len() >= LOCAL_MAX / SHARDS {
            return Err(NonceError(format!(
                "{LOCAL_MAX} live nonces held in process; use the Redis nonce store"
            )));
        }
        seen.until.insert(h, end);
        seen.order.push_back((end, h));
        Ok(true)
    }
}

impl Default for LocalNonces {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            keys: [RandomState::new(), RandomState::new()],
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
