//! Circuit breakers with Sentinel's semantics: slow-call ratio, error ratio or error count over
//! a statistics interval, a minimum request amount, an open time, then half-open with a single
//! probe. Decisions take the time as an argument and do no I/O: the gateway's breaker layer
//! enforces them on routes, [`crate::third_party`] on a service's outgoing calls.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What trips the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trip {
    /// Share of calls slower than `slow_ms` above `threshold` (0–1).
    SlowRatio,
    /// Share of failed calls above `threshold` (0–1).
    ErrorRatio,
    /// Number of failed calls in the interval above `threshold`.
    ErrorCount,
}

/// A route's breaker settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerRule {
    /// What trips the breaker: `slow_ratio`, `error_ratio` or `error_count`.
    pub trip: Trip,
    /// The breaker opens above this: a share (0–1) for the ratios, a number of failed calls
    /// for `error_count`. An error is a 5xx, 10000 or 30000-series answer.
    pub threshold: f64,
    /// For `slow_ratio`: a call slower than this is slow, milliseconds (default 1,000).
    #[serde(default = "default_slow_ms")]
    pub slow_ms: u64,
    /// Fewer calls than this in the interval never trip the breaker (default 5).
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// The window calls are counted in, milliseconds (default 1,000).
    #[serde(default = "default_stat_interval_ms")]
    pub stat_interval_ms: u64,
    /// How long the breaker stays open before one probe is let through, milliseconds
    /// (default 5,000).
    #[serde(default = "default_open_ms")]
    pub open_ms: u64,
}

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Closed,
    Open,
    HalfOpen,
}

/// Admission by the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    Normal,
    /// The single call let through while half-open: its outcome closes or reopens.
    Probe,
}

/// One breaker.
#[derive(Debug)]
pub struct Breaker {
    rule: BreakerRule,
    state: Inner,
    buckets: [Bucket; BUCKETS],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inner {
    Closed,
    Open { until: Duration },
    HalfOpen,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Which bucket-length slot of time this counts; stale slots are reset on use.
    slot: u64,
    total: u32,
    errors: u32,
    slow: u32,
}

const BUCKETS: usize = 10;

fn default_slow_ms() -> u64 {
    1_000
}
fn default_min_requests() -> u32 {
    5
}
fn default_stat_interval_ms() -> u64 {
    1_000
}
fn default_open_ms() -> u64 {
    5_000
}

// === impl BreakerRule ===

impl BreakerRule {
    pub fn validate(&self) -> Result<(), String> {
        let ratio = matches!(self.trip, Trip::SlowRatio | Trip::ErrorRatio);
        if !self.threshold.is_finite() || self.threshold < 0.0 || (ratio && self.threshold > 1.0) {
            return Err("熔断阈值：比例须在 0 至 1 之间，计数须不小于 0".to_owned());
        }
        if self.stat_interval_ms < BUCKETS as u64 || self.open_ms == 0 {
            return Err("熔断统计时长至少 10 毫秒，熔断时长须大于 0".to_owned());
        }
        Ok(())
    }
}

// === impl Breaker ===

impl Breaker {
    pub fn new(rule: BreakerRule) -> Self {
        Self {
            rule,
            state: Inner::Closed,
            buckets: [Bucket::default(); BUCKETS],
        }
    }

    pub fn rule(&self) -> &BreakerRule {
        &self.rule
    }

    pub fn state(&self, now: Duration) -> State {
        match self.state {
            Inner::Closed => State::Closed,
            Inner::Open { until } if now >= until => State::HalfOpen,
            Inner::Open { .. } => State::Open,
            Inner::HalfOpen => State::HalfOpen,
        }
    }

    /// Whether a call may go now.
    pub fn try_acquire(&mut self, now: Duration) -> Option<Permit> {
        match self.state {
            Inner::Closed => Some(Permit::Normal),
            Inner::Open { until } if now >= until => {
                self.state = Inner::HalfOpen;
                Some(Permit::Probe)
            }
            Inner::Open { .. } | Inner::HalfOpen => None,
        }
    }

    /// Records a finished call; returns the state it left the breaker in.
    pub fn on_complete(
        &mut self,
        permit: Permit,
        now: Duration,
        rt: Duration,
        error: bool,
    ) -> State {
        let slow = rt > Duration::from_millis(self.rule.slow_ms);
        let bad = match self.rule.trip {
            Trip::SlowRatio => slow,
            Trip::ErrorRatio | Trip::ErrorCount => error,
        };
        match permit {
            Permit::Probe => {
                if bad {
                    self.open(now);
                } else {
                    self.state = Inner::Closed;
                    self.buckets = [Bucket::default(); BUCKETS];
                }
            }
            Permit::Normal => {
                self.record(now, error, slow);
                if self.state == Inner::Closed && self.should_trip(now) {
                    self.open(now);
                }
            }
        }
        self.state(now)
    }

    /// The counts of the current interval: (total, errors, slow).
    pub fn counts(&self, now: Duration) -> (u32, u32, u32) {
        let cur = self.slot(now);
        self.buckets
            .iter()
            .filter(|b| b.slot + (BUCKETS as u64) > cur && b.slot <= cur)
            .fold((0, 0, 0), |(t, e, s), b| {
                (t + b.total, e + b.errors, s + b.slow)
            })
    }

    fn open(&mut self, now: Duration) {
        self.state = Inner::Open {
            until: now + Duration::from_millis(self.rule.open_ms),
        };
    }

    fn slot(&self, now: Duration) -> u64 {
        let len_us = (self.rule.stat_interval_ms * 1000 / BUCKETS as u64).max(1);
        u64::try_from(now.as_micros()).unwrap_or(u64::MAX) / len_us
    }

    fn record(&mut self, now: Duration, error: bool, slow: bool) {
        let slot = self.slot(now);
        // The slot number modulo the bucket count picks the bucket; truncation is the point.
        #[allow(clippy::cast_possible_truncation)]
        let b = &mut self.buckets[(slot % BUCKETS as u64) as usize];
        if b.slot != slot {
            *b = Bucket {
                slot,
                ..Bucket::default()
            };
        }
        b.total += 1;
        b.errors += u32::from(error);
        b.slow += u32::from(slow);
    }

    fn should_trip(&self, now: Duration) -> bool {
        let (total, errors, slow) = self.counts(now);
        if total < self.rule.min_requests || total == 0 {
            return false;
        }
        let t = self.rule.threshold;
        let ratio = |n: u32| f64::from(n) / f64::from(total);
        // As Sentinel: strictly above the threshold, except that a threshold of 1 trips when
        // every call is bad.
        let over = |r: f64| r > t || (t >= 1.0 && r >= 1.0);
        match self.rule.trip {
            Trip::SlowRatio => over(ratio(slow)),
            Trip::ErrorRatio => over(ratio(errors)),
            Trip::ErrorCount => f64::from(errors) > t,
        }
    }
}

#[cfg(test)]
mod tests;
