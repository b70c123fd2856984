//! Choosing an upstream instance: smooth weighted round robin, least requests by the power of
//! two choices, consistent hashing by user; ejected outliers are skipped. Free of I/O.

pub mod outlier;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use outlier::OutlierRule;

/// How a route spreads requests over its instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Smooth weighted round robin (as nginx).
    #[default]
    RoundRobin,
    /// Of two random instances, the one with fewer requests in flight per weight.
    LeastRequest,
    /// The same user lands on the same instance while the set is stable.
    ConsistentHash,
}

/// One upstream instance and what the balancer knows about it.
#[derive(Debug)]
pub struct Endpoint {
    pub address: String,
    pub weight: u32,
    in_flight: AtomicU64,
    outlier: Mutex<outlier::State>,
    /// Set by active health checks.
    down: AtomicBool,
}

/// A balancer over a fixed set of endpoints (rebuilt when the set changes).
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    endpoints: Vec<Arc<Endpoint>>,
    current: Mutex<Vec<i64>>,
    ring: Vec<(u64, usize)>,
}

/// Counts an endpoint's request in flight until dropped.
#[derive(Debug)]
pub struct InFlight(Arc<Endpoint>);

// === impl Endpoint ===

impl Endpoint {
    pub fn new(address: impl Into<String>, weight: u32) -> Self {
        Self {
            address: address.into(),
            weight: weight.max(1),
            in_flight: AtomicU64::new(0),
            outlier: Mutex::new(outlier::State::default()),
            down: AtomicBool::new(false),
        }
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Marks a request in flight.
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    pub fn is_ejected(&self, now: Duration) -> bool {
        self.outlier_state().is_ejected(now)
    }

    /// Records the result of an active health check.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }

    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether the balancer should prefer other instances now.
    pub fn is_available(&self, now: Duration) -> bool {
        !self.is_down() && !self.is_ejected(now)
    }

    /// Records an attempt's outcome for passive outlier detection; true if this ejected it.
    pub fn report(&self, ok: bool, now: Duration, rule: &OutlierRule) -> bool {
        self.outlier_state().record(ok, now, rule)
    }

    fn outlier_state(&self) -> std::sync::MutexGuard<'_, outlier::State> {
        self.outlier.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

// === impl Balancer ===

impl Balancer {
    pub fn new(strategy: Strategy, endpoints: Vec<Arc<Endpoint>>) -> Self {
        let mut ring = Vec::new();
        if strategy == Strategy::ConsistentHash {
            for (i, e) in endpoints.iter().enumerate() {
                // About 100 points per instance of weight 100 keeps the spread within a few %.
                let points = (e.weight.clamp(10, 1000)).max(1);
                for k in 0..points {
                    ring.push((hash(format!("{}#{k}", e.address).as_bytes()), i));
                }
            }
            ring.sort_unstable();
        }
        Self {
            strategy,
            current: Mutex::new(vec![0; endpoints.len()]),
            endpoints,
            ring,
        }
    }

    pub fn endpoints(&self) -> &[Arc<Endpoint>] {
        &self.endpoints
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Picks an endpoint not in `exclude` (instances already tried), skipping ejected ones and
    /// those failing active checks; when none is left, the constraints relax rather than fail.
    pub fn pick(&self, now: Duration, key: Option<&str>, exclude: &[usize]) -> Option<usize> {
        if self.endpoints.is_empty() {
            return None;
        }
        // Candidates on the stack for the usual handful of instances: picking is on every
        // request.
        let n = self.endpoints.len();
        let mut stack = [0usize; 16];
        let mut heap = Vec::new();
        let slots: &mut [usize] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        // The strictest set that is not empty: untried and available, else untried, else any.
        let tiers: [&dyn Fn(usize) -> bool; 3] = [
            &|i| !exclude.contains(&i) && self.endpoints[i].is_available(now),
            &|i| !exclude.contains(&i),
            &|_| true,
        ];
        let mut len = 0;
        for keep in tiers {
            for i in (0..n).filter(|&i| keep(i)) {
                slots[len] = i;
                len += 1;
            }
            if len > 0 {
                break;
            }
        }
        let candidates = &slots[..len];
        Some(match (self.strategy, key) {
            (Strategy::ConsistentHash, Some(key)) => self.by_hash(key, candidates),
            (Strategy::RoundRobin, _) => self.round_robin(candidates),
            _ => self.least_request(candidates),
        })
    }

    fn round_robin(&self, candidates: &[usize]) -> usize {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut total = 0i64;
        let mut best = candidates[0];
        for &i in candidates {
            let w = i64::from(self.endpoints[i].weight);
            current[i] += w;
            total += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        best
    }

    fn least_request(&self, candidates: &[usize]) -> usize {
        if candidates.len() == 1 {
            return candidates[0];
        }
        let mut rng = rand::rng();
        let a = candidates[rng.random_range(0..candidates.len())];
        let mut b = candidates[rng.random_range(0..candidates.len() - 1)];
        if b == a {
            b = candidates[candidates.len() - 1];
        }
        let load = |i: usize| {
            let e = &self.endpoints[i];
            (e.in_flight() + 1) * 10_000 / u64::from(e.weight)
        };
        if load(b) < load(a) { b } else { a }
    }

    fn by_hash(&self, key: &str, candidates: &[usize]) -> usize {
        let h = hash(key.as_bytes());
        let start = self.ring.partition_point(|(p, _)| *p < h);
        let n = self.ring.len();
        (0..n)
            .map(|k| self.ring[(start + k) % n].1)
            .find(|i| candidates.contains(i))
            .unwrap_or(candidates[0])
    }
}

/// FNV-1a with a final mix: stable across processes (gateway instances agree on the ring).
pub fn hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finaliser: FNV alone clusters similar keys.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests;
