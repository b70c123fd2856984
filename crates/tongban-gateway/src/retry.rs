//! Retry decisions for the gateway's upstream failures. The rule, the budget and the decision
//! itself are shared with services' outgoing calls (`tongban_governance::retry`); this module
//! says how far each of the gateway's failures got.

use http::Method;
use tongban_governance::retry::Reach;

pub use tongban_governance::retry::{Budget, is_idempotent};

use crate::normalize::Failure;
use crate::route::RetryRule;

/// What went wrong with one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    Failed(Failure),
    /// The upstream answered 5xx (or a 30000-series envelope).
    ServerError,
}

/// Whether the upstream may have acted on the request: connect failures mean it did not.
pub fn may_retry(method: &Method, attempt: Attempt, rule: &RetryRule) -> bool {
    let reach = match attempt {
        Attempt::Failed(Failure::Connect | Failure::ConnectTimeout) => Reach::NotConnected,
        Attempt::Failed(Failure::TotalTimeout) => Reach::OutOfTime,
        Attempt::Failed(Failure::ReadTimeout | Failure::Broken) | Attempt::ServerError => {
            Reach::MaybeSeen
        }
    };
    tongban_governance::retry::may_retry(is_idempotent(method), reach, rule)
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
}
