//! Passive outlier detection: an instance that fails several attempts in a row is ejected for
//! a while, longer each time it is ejected again (as Envoy's consecutive-5xx detector).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When to eject and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutlierRule {
    /// Consecutive failed attempts (connect errors, 5xx, timeouts) that eject.
    pub consecutive_failures: u32,
    /// First ejection time; the n-th ejection lasts n times as long, at most 10 times.
    pub base_ejection_ms: u64,
}

/// One endpoint's record.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct State {
    failures: u32,
    ejections: u32,
    ejected_until: Option<Duration>,
}

// === impl OutlierRule ===

impl Default for OutlierRule {
    fn default() -> Self {
        Self {
            consecutive_failures: 3,
            base_ejection_ms: 10_000,
        }
    }
}

// === impl State ===

impl State {
    pub(crate) fn is_ejected(&self, now: Duration) -> bool {
        self.ejected_until.is_some_and(|t| now < t)
    }

    /// Records an outcome; true when this one ejected the endpoint.
    pub(crate) fn record(&mut self, ok: bool, now: Duration, rule: &OutlierRule) -> bool {
        if ok {
            self.failures = 0;
            if !self.is_ejected(now) && self.ejected_until.is_some() {
                // Back in service and answering: forget the past ejections.
                self.ejected_until = None;
                self.ejections = 0;
            }
            return false;
        }
        self.failures += 1;
        if rule.consecutive_failures == 0
            || self.failures < rule.consecutive_failures
            || self.is_ejected(now)
        {
            return false;
        }
        self.failures = 0;
        self.ejections = (self.ejections + 1).min(10);
        self.ejected_until =
            Some(now + Duration::from_millis(rule.base_ejection_ms) * self.ejections);
        true
    }
}
