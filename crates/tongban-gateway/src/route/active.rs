//! A route in force: its rule and the runtime state its policies keep between requests
//! (balancer, breaker, concurrency slots, retry budget, upstream connections, last good
//! answers). Built by [`crate::Gateway`] when a rule is applied; every layer reads the state
//! of its own policy from it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tongban_core::AuthLevel;

use super::{Matcher, RouteSpec};
use crate::balance::{Balancer, Endpoint, OutlierRule};
use crate::breaker::Breaker;
use crate::metrics::Metrics;
use crate::retry::Budget;
use crate::upstream::Pool;
use tongban_core::clock::Clock;

/// A route with its runtime state; requests carry it in their extensions past the router.
#[derive(Debug)]
pub struct ActiveRoute {
    pub spec: RouteSpec,
    pub(crate) matcher: Matcher,
    balancer: RwLock<Arc<Balancer>>,
    pub(crate) breaker: Option<Mutex<Breaker>>,
    pub(crate) concurrency: Option<Arc<Semaphore>>,
    pub(crate) budget: Budget,
    pub(crate) upstream: Pool,
    pub(crate) last_good: Mutex<HashMap<String, (http::HeaderMap, Bytes)>>,
    pub(crate) outlier: OutlierRule,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    /// The upstream service's caller-context keys, as of a keyring generation: read on every
    /// request without a lock (`crate::context`).
    pub(crate) caller_keys: arc_swap::ArcSwapOption<crate::context::ServiceKeys>,
}

// === impl ActiveRoute ===

impl ActiveRoute {
    /// The route `spec` (matched by `matcher`) with fresh state; its listed instances are in
    /// its balancer at once, a registry service's once the gateway has read them.
    pub(crate) fn new(
        spec: RouteSpec,
        matcher: Matcher,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        outlier: OutlierRule,
        pool_max_idle_per_host: usize,
    ) -> Self {
        let upstream = Pool::new(pool_max_idle_per_host, spec.timeouts.connect());
        let now = clock.now();
        let route = ActiveRoute {
            matcher,
            balancer: RwLock::new(Arc::new(Balancer::new(spec.upstream.balance, Vec::new()))),
            breaker: spec.breaker.map(|b| Mutex::new(Breaker::new(b))),
            concurrency: spec
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(usize::try_from(n).unwrap_or(usize::MAX)))),
            budget: Budget::new(&spec.retry, now),
            upstream,
            last_good: Mutex::new(HashMap::new()),
            outlier,
            clock,
            metrics,
            caller_keys: arc_swap::ArcSwapOption::empty(),
            spec,
        };
        let fixed: Vec<(String, u32)> = route
            .spec
            .upstream
            .instances
            .iter()
            .map(|i| (i.address.clone(), i.weight))
            .collect();
        route.set_instances(fixed);
        route
    }

    pub fn required_level(&self) -> AuthLevel {
        // Validation refuses routes without a level; anything else would be a bug, and the
        // strictest level is the safe reading of one.
        self.spec.auth.unwrap_or(AuthLevel::FaceVerified)
    }

    /// Whether an anonymous request still needs its caller resolved.
    pub fn needs_caller(&self) -> bool {
        self.spec.upstream.balance == crate::balance::Strategy::ConsistentHash
            || self.spec.limits.iter().any(|l| {
                matches!(
                    l.by,
                    crate::limit::LimitKey::User | crate::limit::LimitKey::App
                )
            })
    }

    pub fn face_max_age(&self) -> Duration {
        Duration::from_secs(self.spec.face_max_age_secs)
    }

    pub(crate) fn balancer(&self) -> Arc<Balancer> {
        self.balancer
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Rebuilds the balancer for a new instance set, keeping the state of instances that stay.
    pub(crate) fn set_instances(&self, mut list: Vec<(String, u32)>) {
        list.sort();
        let current = self.balancer();
        let same = current.endpoints().len() == list.len()
            && current
                .endpoints()
                .iter()
                .zip(&list)
                .all(|(e, (a, w))| &e.address == a && e.weight == *w);
        if same {
            return;
        }
        let endpoints = list
            .into_iter()
            .map(|(address, weight)| {
                current
                    .endpoints()
                    .iter()
                    .find(|e| e.address == address && e.weight == weight)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Endpoint::new(address, weight)))
            })
            .collect();
        let b = Arc::new(Balancer::new(self.spec.upstream.balance, endpoints));
        *self
            .balancer
            .write()
            .unwrap_or_else(PoisonError::into_inner) = b;
    }
}
