//! Retry decisions, free of I/O: which failed attempts may be repeated for which methods, and a
//! budget so retries cannot multiply the load on a struggling upstream (as Finagle and linkerd).
//! The gateway applies them to routes, [`crate::third_party`] to a service's outgoing calls.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

/// When to try another instance.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryRule {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Retry 5xx and timeouts of non-idempotent methods too (connect failures are always
    /// retried: the upstream never saw the request).
    pub non_idempotent: bool,
    /// Retries allowed per request, on average (the budget); 0.2 means 20 %.
    pub budget_ratio: f64,
    /// Retries always allowed per second, whatever the ratio.
    pub min_retries_per_sec: u32,
}

/// How far a failed attempt got: whether repeating it could repeat an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// No connection was made (refused, unreachable, connect timeout): the upstream never saw
    /// the request.
    NotConnected,
    /// The request may have reached the upstream: no answer in time, the connection broke, or
    /// the upstream answered that it failed (5xx).
    MaybeSeen,
    /// The call's whole time ran out: nothing is left for another attempt.
    OutOfTime,
}

/// Retries allowed: each request deposits `ratio` tokens, each retry withdraws one; a floor of
/// `min_per_sec` retries a second is always allowed. Tokens are counted in thousandths so
/// that ratios add up exactly.
#[derive(Debug)]
pub struct Budget {
    ratio_milli: u64,
    min_per_sec: u64,
    state: Mutex<BudgetState>,
}

#[derive(Debug)]
struct BudgetState {
    milli: u64,
    last: Duration,
}

/// Whether a failed attempt may be repeated: always when the upstream never saw it, never when
/// the time is up, otherwise for idempotent requests or when the rule allows any.
#[inline]
pub fn may_retry(idempotent: bool, reach: Reach, rule: &RetryRule) -> bool {
    match reach {
        Reach::NotConnected => true,
        Reach::OutOfTime => false,
        Reach::MaybeSeen => rule.non_idempotent || idempotent,
    }
}

/// RFC 9110 §9.2.2.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

// === impl RetryRule ===

impl Default for RetryRule {
    fn default() -> Self {
        Self {
            max_retries: 2,
            non_idempotent: false,
            budget_ratio: 0.2,
            min_retries_per_sec: 10,
        }
    }
}

impl RetryRule {
    /// The ratio is a share and retries are few: more than five only multiplies an outage.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.budget_ratio) || self.max_retries > 5 {
            return Err("重试预算比例须在 0 至 1 之间，重试次数至多 5".to_owned());
        }
        Ok(())
    }
}

// === impl Budget ===

impl Budget {
    pub fn new(rule: &RetryRule, now: Duration) -> Self {
        let min_per_sec = u64::from(rule.min_retries_per_sec);
        // The ratio is validated to 0..=1; thousandths of it fit any integer type.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ratio_milli = (rule.budget_ratio.clamp(0.0, 1.0) * 1000.0).round() as u64;
        Self {
            ratio_milli,
            min_per_sec,
            state: Mutex::new(BudgetState {
                milli: min_per_sec * 1000,
                last: now,
            }),
        }
    }

    /// Called once per request.
    pub fn deposit(&self, now: Duration) {
        let mut s = self.lock();
        self.refill(&mut s, now);
        s.milli = (s.milli + self.ratio_milli).min(self.cap());
    }

    /// Takes a token for one retry, if there is one.
    pub fn withdraw(&self, now: Duration) -> bool {
        let mut s = self.lock();
        self.refill(&mut s, now);
        if s.milli >= 1000 {
            s.milli -= 1000;
            true
        } else {
            false
        }
    }

    fn cap(&self) -> u64 {
        // At most ten seconds' worth of the floor plus a thousand requests' deposits.
        self.min_per_sec * 10_000 + self.ratio_milli * 1000
    }

    fn refill(&self, s: &mut BudgetState, now: Duration) {
        let dt_ms = u64::try_from(now.saturating_sub(s.last).as_millis()).unwrap_or(u64::MAX);
        if dt_ms > 0 {
            s.last = now;
            s.milli = s
                .milli
                .saturating_add(dt_ms.saturating_mul(self.min_per_sec))
                .min(self.cap());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BudgetState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_never_reached_the_upstream_is_always_retried() {
        let r = RetryRule::default();
        assert!(may_retry(false, Reach::NotConnected, &r));
        assert!(!may_retry(false, Reach::MaybeSeen, &r));
        assert!(may_retry(true, Reach::MaybeSeen, &r));
        assert!(!may_retry(true, Reach::OutOfTime, &r));
        let opt_in = RetryRule {
            non_idempotent: true,
            ..r
        };
        assert!(may_retry(false, Reach::MaybeSeen, &opt_in));
        assert!(!may_retry(false, Reach::OutOfTime, &opt_in));
    }

    #[test]
    fn idempotent_methods_are_those_of_rfc_9110() {
        for m in [Method::GET, Method::HEAD, Method::PUT, Method::DELETE] {
            assert!(is_idempotent(&m), "{m}");
        }
        for m in [Method::POST, Method::PATCH, Method::CONNECT] {
            assert!(!is_idempotent(&m), "{m}");
        }
    }

    #[test]
    fn rules_are_validated() {
        assert!(RetryRule::default().validate().is_ok());
        let too_many = RetryRule {
            max_retries: 6,
            ..RetryRule::default()
        };
        assert!(too_many.validate().is_err());
        let bad_ratio = RetryRule {
            budget_ratio: 1.5,
            ..RetryRule::default()
        };
        assert!(bad_ratio.validate().is_err());
        let nan = RetryRule {
            budget_ratio: f64::NAN,
            ..RetryRule::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn budget_limits_retries_to_a_share_of_requests() {
        let rule = RetryRule {
            budget_ratio: 0.2,
            min_retries_per_sec: 0,
            ..RetryRule::default()
        };
        let t = Duration::from_secs(100);
        let b = Budget::new(&rule, t);
        assert!(!b.withdraw(t), "nothing deposited yet");
        for _ in 0..100 {
            b.deposit(t);
        }
        let granted = (0..100).filter(|_| b.withdraw(t)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn budget_floor_refills_over_time() {
        let rule = RetryRule {
            budget_ratio: 0.0,
            min_retries_per_sec: 5,
            ..RetryRule::default()
        };
        let t = Duration::from_secs(100);
        let b = Budget::new(&rule, t);
        assert_eq!((0..10).filter(|_| b.withdraw(t)).count(), 5);
        assert_eq!(
            (0..10)
                .filter(|_| b.withdraw(t + Duration::from_secs(1)))
                .count(),
            5
        );
    }
}
