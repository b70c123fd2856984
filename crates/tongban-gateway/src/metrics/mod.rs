//! Per-route and per-instance counters: requests, answers by code, a latency histogram (avg and
//! max derivable), limiter and breaker rejections. The binary exposes [`Metrics::render`] on
//! the admin listener's `/metrics`; [`layer`] records every routed request.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;

pub mod layer;

/// Upper bounds of the latency buckets, in milliseconds (the last bucket is +Inf).
pub const LATENCY_BOUNDS_MS: [u64; 11] = [1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 10_000];

/// The registry.
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<String, RouteStats, foldhash::fast::RandomState>>,
    /// By route, then instance address.
    upstreams: Mutex<BTreeMap<String, BTreeMap<String, UpstreamStats>>>,
}

/// One route's numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RouteStats {
    pub requests: u64,
    /// Answers by envelope code.
    pub codes: BTreeMap<u32, u64>,
    /// Cumulative counts per bound of [`LATENCY_BOUNDS_MS`], then +Inf.
    pub latency_buckets: Vec<u64>,
    pub latency_sum_us: u64,
    pub latency_max_us: u64,
    pub limited: u64,
    pub breaker_rejected: u64,
}

/// One upstream instance's numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpstreamStats {
    pub attempts: u64,
    pub failures: u64,
}

// === impl Metrics ===

impl Metrics {
    /// Records an answered request.
    pub fn record(&self, route: &str, code: u32, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut routes = self.routes();
        // The common case finds the route without allocating its name.
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(s) = routes.get_mut(route) else {
            return;
        };
        s.requests += 1;
        *s.codes.entry(code).or_insert(0) += 1;
        let ms = us / 1000;
        let idx = LATENCY_BOUNDS_MS
            .iter()
            .position(|b| ms < *b || (ms == *b && us % 1000 == 0))
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        s.latency_buckets[idx] += 1;
        s.latency_sum_us = s.latency_sum_us.saturating_add(us);
        s.latency_max_us = s.latency_max_us.max(us);
    }

    pub fn limited(&self, route: &str) {
        self.routes().entry(route.to_owned()).or_default().limited += 1;
    }

    pub fn breaker_rejected(&self, route: &str) {
        self.routes()
            .entry(route.to_owned())
            .or_default()
            .breaker_rejected += 1;
    }

    pub fn upstream(&self, route: &str, address: &str, ok: bool) {
        let mut u = self
            .upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Found by reference: the names are copied only the first time they are seen.
        let by_address = match u.get_mut(route) {
            Some(m) => m,
            None => u.entry(route.to_owned()).or_default(),
        };
        let s = match by_address.get_mut(address) {
            Some(s) => s,
            None => by_address.entry(address.to_owned()).or_default(),
        };
        s.attempts += 1;
        s.failures += u64::from(!ok);
    }

    /// A copy of one route's numbers.
    pub fn route(&self, route: &str) -> Option<RouteStats> {
        self.routes().get(route).cloned()
    }

    pub fn routes_snapshot(&self) -> BTreeMap<String, RouteStats> {
        self.routes()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    pub fn upstreams_snapshot(&self) -> Vec<(String, String, UpstreamStats)> {
        self.upstreams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flat_map(|(r, m)| m.iter().map(|(a, s)| (r.clone(), a.clone(), s.clone())))
            .collect()
    }

    /// Prometheus text exposition; `breakers` adds each route's breaker state
    /// (0 closed, 1 open, 2 half-open).
    pub fn render(&self, breakers: &[(String, u8)]) -> String {
        let mut out = String::new();
        let routes = self.routes_snapshot();
        out.push_str("# TYPE tongban_gateway_requests_total counter\n");
        for (r, s) in &routes {
            for (code, n) in &s.codes {
                let _ = writeln!(
                    out,
                    "tongban_gateway_requests_total{{route=\"{r}\",code=\"{code}\"}} {n}"
                );
            }
        }
        out.push_str("# TYPE tongban_gateway_request_duration_seconds histogram\n");
        for (r, s) in &routes {
            let mut cum = 0;
            for (i, n) in s.latency_buckets.iter().enumerate() {
                cum += n;
                let le = LATENCY_BOUNDS_MS.get(i).map_or_else(
                    || "+Inf".to_owned(),
                    |ms| format!("{}", *ms as f64 / 1000.0),
                );
                let _ = writeln!(
                    out,
                    "tongban_gateway_request_duration_seconds_bucket{{route=\"{r}\",le=\"{le}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "tongban_gateway_request_duration_seconds_sum{{route=\"{r}\"}} {}",
                s.latency_sum_us as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "tongban_gateway_request_duration_seconds_count{{route=\"{r}\"}} {}",
                s.requests
            );
        }
        out.push_str("# TYPE tongban_gateway_request_duration_max_seconds gauge\n");
        for (r, s) in &routes {
            let _ = writeln!(
                out,
                "tongban_gateway_request_duration_max_seconds{{route=\"{r}\"}} {}",
                s.latency_max_us as f64 / 1e6
            );
        }
        out.push_str("# TYPE tongban_gateway_limited_total counter\n");
        for (r, s) in &routes {
            let _ = writeln!(
                out,
                "tongban_gateway_limited_total{{route=\"{r}\"}} {}",
                s.limited
            );
        }
        out.push_str("# TYPE tongban_gateway_breaker_rejected_total counter\n");
        for (r, s) in &routes {
            let _ = writeln!(
                out,
                "tongban_gateway_breaker_rejected_total{{route=\"{r}\"}} {}",
                s.breaker_rejected
            );
        }
        out.push_str("# TYPE tongban_gateway_breaker_state gauge\n");
        for (r, state) in breakers {
            let _ = writeln!(
                out,
                "tongban_gateway_breaker_state{{route=\"{r}\"}} {state}"
            );
        }
        out.push_str("# TYPE tongban_gateway_upstream_attempts_total counter\n");
        out.push_str("# TYPE tongban_gateway_upstream_failures_total counter\n");
        for (r, a, s) in self.upstreams_snapshot() {
            let _ = writeln!(
                out,
                "tongban_gateway_upstream_attempts_total{{route=\"{r}\",instance=\"{a}\"}} {}",
                s.attempts
            );
            let _ = writeln!(
                out,
                "tongban_gateway_upstream_failures_total{{route=\"{r}\",instance=\"{a}\"}} {}",
                s.failures
            );
        }
        out
    }

    fn routes(&self) -> MutexGuard<'_, HashMap<String, RouteStats, foldhash::fast::RandomState>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

// === impl RouteStats ===

impl Default for RouteStats {
    fn default() -> Self {
        Self {
            requests: 0,
            codes: BTreeMap::new(),
            latency_buckets: vec![0; LATENCY_BOUNDS_MS.len() + 1],
            latency_sum_us: 0,
            latency_max_us: 0,
            limited: 0,
            breaker_rejected: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_codes_latency_and_rejections() {
        let m = Metrics::default();
        m.record("users", 0, Duration::from_millis(3));
        m.record("users", 0, Duration::from_millis(120));
        m.record("users", 30001, Duration::from_secs(20));
        m.limited("users");
        m.upstream("users", "127.0.0.1:1", false);
        let s = m.route("users").expect("stats");
        assert_eq!(s.requests, 3);
        assert_eq!(s.codes.get(&0), Some(&2));
        assert_eq!(s.codes.get(&30001), Some(&1));
        assert_eq!(s.latency_buckets[1], 1, "3 ms in the 5 ms bucket");
        assert_eq!(s.latency_buckets[6], 1, "120 ms in the 250 ms bucket");
        assert_eq!(s.latency_buckets[11], 1, "20 s in +Inf");
        assert_eq!(s.latency_max_us, 20_000_000);
        assert_eq!(s.limited, 1);
        let text = m.render(&[("users".to_owned(), 1)]);
        assert!(text.contains("tongban_gateway_requests_total{route=\"users\",code=\"30001\"} 1"));
        assert!(text.contains(
            "tongban_gateway_request_duration_seconds_bucket{route=\"users\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("tongban_gateway_breaker_state{route=\"users\"} 1"));
        assert!(text.contains(
            "tongban_gateway_upstream_failures_total{route=\"users\",instance=\"127.0.0.1:1\"} 1"
        ));
    }
}
