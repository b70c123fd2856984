//! Rate limits per route, client IP, user and app: GCRA with bursts and optional queueing, on
//! an in-process or a Redis backend with the same semantics. Decisions live in [`gcra`]; the
//! backends keep the per-key state; [`layer`] enforces.

pub mod gcra;
pub mod layer;
mod redis;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use gcra::{Decision, Params, State};
pub use redis::RedisLimiter;

/// One limit of a route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitRule {
    /// What is counted separately.
    pub by: LimitKey,
    /// Requests allowed per `per_ms`.
    pub rate: u32,
    /// The period `rate` counts over, milliseconds (default 1,000).
    #[serde(default = "default_per_ms")]
    pub per_ms: u64,
    /// Requests allowed at once after a quiet period (default 1).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// Queue a request for up to this long instead of refusing it (0: refuse at once).
    #[serde(default)]
    pub max_wait_ms: u64,
    /// Warm-up period: a cold key starts at `rate / cold_factor` and reaches `rate` after
    /// this long of saturated traffic (0: no warm-up).
    #[serde(default)]
    pub warm_up_ms: u64,
    /// How many times lower a cold key's rate starts during warm-up (default 3, as Sentinel).
    #[serde(default = "default_cold_factor")]
    pub cold_factor: u32,
}

/// What a limit counts by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKey {
    Route,
    Ip,
    /// The signed-in user; the client IP for anonymous callers.
    User,
    /// The calling application; the client IP when none is known.
    App,
}

/// Why a limiter backend could not decide.
#[derive(Debug, thiserror::Error)]
#[error("rate limiter backend: {0}")]
pub struct LimitError(pub String);

/// Where per-key state lives.
#[async_trait::async_trait]
pub trait RateLimiter: Send + Sync + Debug + 'static {
    /// Decides for `key` at `now` (time since the epoch) and records an admitted request.
    async fn check(&self, key: &str, p: &Params, now: Duration) -> Result<Decision, LimitError>;

    /// [`check`](Self::check) when the backend decides without waiting on anything (in
    /// process); `None` when it must be awaited. Spares a boxed future per limit per request.
    fn check_now(
        &self,
        _key: &str,
        _p: &Params,
        _now: Duration,
    ) -> Option<Result<Decision, LimitError>> {
        None
    }
}

/// Keys and their arrival times in this process.
#[derive(Debug, Default)]
pub struct LocalLimiter {
    tats: Mutex<Tats>,
}

#[derive(Debug, Default)]
struct Tats {
    /// Keys come from clients: the hash is seeded per process (foldhash), and cheaper than
    /// SipHash on every request.
    by_key: HashMap<String, State, foldhash::fast::RandomState>,
    /// Size at which cooled keys are next swept out.
    sweep_at: usize,
}

fn default_per_ms() -> u64 {
    1000
}

fn default_burst() -> u32 {
    1
}

fn default_cold_factor() -> u32 {
    3
}

// === impl LimitRule ===

impl LimitRule {
    pub fn validate(&self) -> Result<(), String> {
        if self.rate == 0 || self.per_ms == 0 || self.burst == 0 {
            return Err("限流规则的 rate、per_ms、burst 须大于 0".to_owned());
        }
        if self.cold_factor == 0 || self.cold_factor > 10 || self.warm_up_ms > 3_600_000 {
            return Err("限流预热：冷启动因子 1 至 10，预热时长至多 1 小时".to_owned());
        }
        if self.max_wait_ms > 60_000 {
            return Err("限流排队等待至多 60000 毫秒".to_owned());
        }
        Ok(())
    }

    pub fn params(&self) -> Params {
        Params::new(
            self.rate,
            Duration::from_millis(self.per_ms),
            self.burst,
            Duration::from_millis(self.max_wait_ms),
        )
        .with_warm_up(Duration::from_millis(self.warm_up_ms), self.cold_factor)
    }
}

// === impl LimitKey ===

impl LimitKey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Route => "route",
            Self::Ip => "ip",
            Self::User => "user",
            Self::App => "app",
        }
    }
}

// === impl LocalLimiter ===

/// Past this many keys, expired ones are dropped on the next write (then again each time the
/// number of keys has doubled since).
const LOCAL_SWEEP_AT: usize = 100_000;

#[async_trait::async_trait]
impl RateLimiter for LocalLimiter {
    async fn check(&self, key: &str, p: &Params, now: Duration) -> Result<Decision, LimitError> {
        Ok(self.decide(key, p, now))
    }

    fn check_now(
        &self,
        key: &str,
        p: &Params,
        now: Duration,
    ) -> Option<Result<Decision, LimitError>> {
        Some(Ok(self.decide(key, p, now)))
    }
}

impl LocalLimiter {
    fn decide(&self, key: &str, p: &Params, now: Duration) -> Decision {
        let now = micros(now);
        let mut tats = self.tats.lock().unwrap_or_else(PoisonError::into_inner);
        let tats = &mut *tats;
        // A known key is decided and updated in place: one lookup.
        if let Some(slot) = tats.by_key.get_mut(key) {
            let (d, next) = gcra::decide(Some(*slot), now, p);
            if let Some(t) = next {
                *slot = t;
            }
            return d;
        }
        let (d, next) = gcra::decide(None, now, p);
        if let Some(t) = next {
            if tats.by_key.len() >= tats.sweep_at.max(LOCAL_SWEEP_AT) {
                // A key past its schedule and fully cooled holds nothing worth keeping.
                tats.by_key
                    .retain(|_, s| s.tat.saturating_add(s.warm) > now);
                // Next sweep once the live keys have doubled: amortized constant work.
                tats.sweep_at = tats.by_key.len().saturating_mul(2);
            }
            tats.by_key.insert(key.to_owned(), t);
        }
        d
    }
}

pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
