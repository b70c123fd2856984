//! Retry decisions, free of I/O: which failures may be retried for which methods, and a budget
//! so retries cannot multiply the load on a struggling upstream (as Finagle and linkerd).

use std::sync::Mutex;
use std::sync::PoisonError;
use std::time::Duration;

use http::Method;

use crate::normalize::Failure;
use crate::route::RetryRule;

/// What went wrong with one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Failed(Failure),
    /// The upstream answered 5xx (or a 30000-series envelope).
    ServerError,
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

/// Whether the upstream may have acted on the request: connect failures mean it did not.
pub fn may_retry(method: &Method, attempt: Attempt, rule: &RetryRule) -> bool {
    match attempt {
        Attempt::Failed(Failure::Connect | Failure::ConnectTimeout) => true,
        Attempt::Failed(Failure::TotalTimeout) => false,
        Attempt::Failed(Failure::ReadTimeout | Failure::Broken) | Attempt::ServerError => {
            rule.non_idempotent || is_idempotent(method)
        }
    }
}

/// RFC 9110 §9.2.2.
pub fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
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
    fn non_idempotent_requests_are_retried_only_before_sending() {
        let r = RetryRule::default();
        assert!(may_retry(
            &Method::POST,
            Attempt::Failed(Failure::Connect),
            &r
        ));
        assert!(may_retry(
            &Method::POST,
            Attempt::Failed(Failure::ConnectTimeout),
            &r
        ));
        assert!(!may_retry(
            &Method::POST,
            Attempt::Failed(Failure::ReadTimeout),
            &r
        ));
        assert!(!may_retry(&Method::POST, Attempt::ServerError, &r));
        assert!(may_retry(&Method::GET, Attempt::ServerError, &r));
        assert!(may_retry(
            &Method::PUT,
            Attempt::Failed(Failure::ReadTimeout),
            &r
        ));
        assert!(!may_retry(
            &Method::GET,
            Attempt::Failed(Failure::TotalTimeout),
            &r
        ));
        let opt_in = RetryRule {
            non_idempotent: true,
            ..r
        };
        assert!(may_retry(&Method::POST, Attempt::ServerError, &opt_in));
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
