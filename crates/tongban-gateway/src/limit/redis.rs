//! The Redis limiter: GCRA in one Lua script, so the read and the write of a key are atomic
//! across every gateway instance; keys carry a hash tag so a cluster keeps them on one slot.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Decision, LimitError, Params, RateLimiter, micros};

/// KEYS[1] the key; ARGV: now (µs, or -1 for the server's clock), interval, tolerance, max
/// wait, warm-up period, cold factor. The value is `tat:warmth`. Returns {1, wait} when
/// admitted, {0, retry_after} when refused (µs). The arithmetic is `gcra::decide`'s.
const SCRIPT: &str = r"
local now = tonumber(ARGV[1])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local max_wait = tonumber(ARGV[4])
local warm_up = tonumber(ARGV[5])
local cold = tonumber(ARGV[6])
local tat, warm = now, 0
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, ':', 1, true)
  tat = tonumber(string.sub(v, 1, sep - 1))
  warm = tonumber(string.sub(v, sep + 1))
end
local idle = now - tat
if idle > interval then warm = math.max(0, warm - idle) end
if warm_up > 0 and cold > 1 then
  interval = interval + math.floor(interval * (cold - 1) * (warm_up - math.min(warm, warm_up)) / warm_up)
end
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait < 0 then wait = 0 end
if wait > max_wait then return {0, wait} end
local new_tat = tat + interval
local new_warm = math.min(warm + interval, warm_up)
local ttl = math.ceil((new_tat + new_warm - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%d:%d', new_tat, new_warm), 'PX', ttl)
return {1, wait}
";

/// A limiter whose state is in Redis, shared by every gateway instance.
#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
    server_time: bool,
}

// === impl RedisLimiter ===

impl RedisLimiter {
    /// Connects (reconnecting on its own afterwards). With `server_time`, Redis's clock decides
    /// instead of the caller's, so gateways with skewed clocks still share one schedule.
    pub async fn connect(url: &str, prefix: &str, server_time: bool) -> Result<Self, LimitError> {
        let client = redis::Client::open(url).map_err(|e| LimitError(e.to_string()))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| LimitError(e.to_string()))?;
        Ok(Self {
            conn,
            script: redis::Script::new(SCRIPT),
            prefix: prefix.to_owned(),
            server_time,
        })
    }
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("server_time", &self.server_time)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, p: &Params, now: Duration) -> Result<Decision, LimitError> {
        // Braces in the key would change the hash tag: keep them out.
        let tagged = format!("{}{{{}}}", self.prefix, key.replace(['{', '}'], "_"));
        let now = if self.server_time {
            -1
        } else {
            i64::try_from(micros(now)).unwrap_or(i64::MAX)
        };
        let mut conn = self.conn.clone();
        let (ok, us): (i64, i64) = self
            .script
            .key(tagged)
            .arg(now)
            .arg(p.interval_us)
            .arg(p.tolerance_us)
            .arg(p.max_wait_us)
            .arg(p.warm_up_us)
            .arg(p.cold_factor)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| LimitError(e.to_string()))?;
        let d = Duration::from_micros(u64::try_from(us).unwrap_or(0));
        Ok(if ok == 1 {
            Decision::Allow { wait: d }
        } else {
            Decision::Deny { retry_after: d }
        })
    }
}
