//! The generic cell rate algorithm: per key, the theoretical arrival time (and, for warm-up
//! limits, a warmth) decides whether a request conforms. Free of I/O; the same arithmetic runs
//! in the Redis script.

use std::time::Duration;

/// A limit in the algorithm's terms, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Time between requests at the sustained rate (T).
    pub interval_us: u64,
    /// How far ahead of schedule a request may be (τ = T × (burst − 1)).
    pub tolerance_us: u64,
    /// How long a request may wait for its turn instead of being refused (queueing).
    pub max_wait_us: u64,
    /// Warm-up (Sentinel's): a cold key admits `1 / cold_factor` of the rate, rising to the
    /// full rate after this long of saturated traffic; idleness cools it again. 0: no warm-up.
    pub warm_up_us: u64,
    pub cold_factor: u64,
}

/// What is stored per key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Theoretical arrival time of the next request.
    pub tat: u64,
    /// Warmth, 0 (cold) to `warm_up_us` (warm).
    pub warm: u64,
}

/// The verdict on one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go, after waiting this long (zero unless queueing).
    Allow { wait: Duration },
    /// Refused; conforming again after this long.
    Deny { retry_after: Duration },
}

// === impl Params ===

impl Params {
    /// `rate` requests per `per`, with bursts of up to `burst` requests at once.
    pub fn new(rate: u32, per: Duration, burst: u32, max_wait: Duration) -> Self {
        let per_us = u64::try_from(per.as_micros()).unwrap_or(u64::MAX);
        let interval_us = (per_us / u64::from(rate.max(1))).max(1);
        Self {
            interval_us,
            tolerance_us: interval_us.saturating_mul(u64::from(burst.max(1) - 1)),
            max_wait_us: u64::try_from(max_wait.as_micros()).unwrap_or(u64::MAX),
            warm_up_us: 0,
            cold_factor: 1,
        }
    }

    /// Adds a warm-up period with the given cold factor (Sentinel's default is 3).
    pub fn with_warm_up(mut self, period: Duration, cold_factor: u32) -> Self {
        self.warm_up_us = u64::try_from(period.as_micros()).unwrap_or(u64::MAX);
        self.cold_factor = u64::from(cold_factor.max(1));
        self
    }

    /// The interval at the given warmth.
    fn interval_at(&self, warm: u64) -> u64 {
        if self.warm_up_us == 0 || self.cold_factor <= 1 {
            return self.interval_us;
        }
        let cold_share = u128::from(self.warm_up_us - warm.min(self.warm_up_us));
        let extra = u128::from(self.interval_us) * u128::from(self.cold_factor - 1) * cold_share
            / u128::from(self.warm_up_us);
        self.interval_us + u64::try_from(extra).unwrap_or(u64::MAX)
    }
}

/// Decides at `now` given the stored state; returns the new state to store if allowed.
pub fn decide(state: Option<State>, now: u64, p: &Params) -> (Decision, Option<State>) {
    let prev = state.unwrap_or(State { tat: now, warm: 0 });
    // Time past the schedule is idleness, and idleness cools; lateness under one interval is
    // only the granularity of arrivals (else a saturated key would never fully warm up).
    let idle = now.saturating_sub(prev.tat);
    let warm = if idle > p.interval_us {
        prev.warm.saturating_sub(idle)
    } else {
        prev.warm
    };
    let interval = p.interval_at(warm);
    let tat = prev.tat.max(now);
    let allow_at = tat.saturating_sub(p.tolerance_us);
    let wait = allow_at.saturating_sub(now);
    if wait > p.max_wait_us {
        return (
            Decision::Deny {
                retry_after: Duration::from_micros(wait),
            },
            None,
        );
    }
    let next = State {
        tat: tat + interval,
        warm: (warm + interval).min(p.warm_up_us),
    };
    (
        Decision::Allow {
            wait: Duration::from_micros(wait),
        },
        Some(next),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000;

    #[test]
    fn burst_then_steady_rate() {
        let p = Params::new(10, Duration::from_secs(1), 5, Duration::ZERO);
        assert_eq!(p.interval_us, 100_000);
        let mut tat = None;
        let now = 1_000 * S;
        for i in 0..5 {
            let (d, t) = decide(tat, now, &p);
            assert_eq!(
                d,
                Decision::Allow {
                    wait: Duration::ZERO
                },
                "burst request {i}"
            );
            tat = t;
        }
        let (d, t) = decide(tat, now, &p);
        assert_eq!(
            d,
            Decision::Deny {
                retry_after: Duration::from_millis(100)
            }
        );
        assert_eq!(t, None, "a refusal does not consume");
        let (d, _) = decide(tat, now + 100_000, &p);
        assert!(matches!(d, Decision::Allow { .. }));
    }

    #[test]
    fn long_run_rate_is_exact() {
        let p = Params::new(100, Duration::from_secs(1), 1, Duration::ZERO);
        let mut tat = None;
        let mut allowed = 0;
        // Offered: one request per millisecond for 10 s.
        for ms in 0..10_000u64 {
            let (d, t) = decide(tat, 5 * S + ms * 1000, &p);
            if matches!(d, Decision::Allow { .. }) {
                allowed += 1;
                tat = t;
            }
        }
        assert_eq!(allowed, 1000);
    }

    #[test]
    fn queueing_waits_up_to_the_maximum() {
        let p = Params::new(10, Duration::from_secs(1), 1, Duration::from_millis(250));
        let now = 7 * S;
        let (_, tat) = decide(None, now, &p);
        let (d, tat) = decide(tat, now, &p);
        assert_eq!(
            d,
            Decision::Allow {
                wait: Duration::from_millis(100)
            }
        );
        let (d, tat) = decide(tat, now, &p);
        assert_eq!(
            d,
            Decision::Allow {
                wait: Duration::from_millis(200)
            }
        );
        let (d, _) = decide(tat, now, &p);
        assert_eq!(
            d,
            Decision::Deny {
                retry_after: Duration::from_millis(300)
            }
        );
    }

    #[test]
    fn warm_up_starts_at_a_third_and_reaches_the_full_rate() {
        let p = Params::new(100, Duration::from_secs(1), 1, Duration::ZERO)
            .with_warm_up(Duration::from_secs(2), 3);
        let mut st = None;
        let mut per_second = [0u32; 5];
        // Offered: one request per millisecond for 5 s, from cold.
        for ms in 0..5_000u64 {
            let (d, next) = decide(st, 9 * S + ms * 1000, &p);
            if matches!(d, Decision::Allow { .. }) {
                per_second[usize::try_from(ms / 1000).expect("index")] += 1;
                st = next;
            }
        }
        assert!(
            (34..=60).contains(&per_second[0]),
            "cold first second: {per_second:?}"
        );
        assert!(
            per_second[0] < per_second[1] && per_second[1] <= per_second[2],
            "{per_second:?}"
        );
        assert!((99..=101).contains(&per_second[3]), "warm: {per_second:?}");
        assert!((99..=101).contains(&per_second[4]), "warm: {per_second:?}");
        // Idle for the warm-up period: cold again.
        let later = 9 * S + 5_000_000 + 2 * S;
        let (_, st) = decide(st, later, &p);
        let interval = st.map_or(0, |s| s.tat - later);
        assert!(
            (29_500..=30_000).contains(&interval),
            "interval back near 3T: {interval}"
        );
    }
}
