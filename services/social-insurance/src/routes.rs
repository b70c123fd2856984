//! The gateway routes that lead to this service (`docs/gateway.md`, "A route"), for the
//! platform to store when it starts the service (`serve --demo`) or for an operator to `PUT`.

use serde_json::{Value, json};

use crate::config::DEFAULT_SERVICE_NAME;

/// The routes for a service registered as [`DEFAULT_SERVICE_NAME`].
pub fn routes() -> Vec<Value> {
    routes_for(DEFAULT_SERVICE_NAME)
}

/// The routes for a service registered as `service`.
///
/// Both are real-name routes that hand the service the caller's person (`caller_person`) and
/// are signed (the platform signs their answers: contribution records are sensitive). Per user
/// a few queries a minute with a small burst, since every one reaches the province; the whole
/// route is capped too, to spare the province. The gateway does not retry (the service
/// retries the province itself, within its own five seconds) and waits longer than the
/// service's province timeout, so a slow province answers the citizen its 300xx code rather
/// than the gateway's. A breaker answers "busy" while the service fails; never a cached answer,
/// which would be someone's records.
pub fn routes_for(service: &str) -> Vec<Value> {
    let common = |id: &str, method: &str| {
        json!({
            "id": id,
            "prefix": format!("/api/v1/{id}"),
            "methods": [method],
            "auth": "real_name",
            "caller_person": true,
            "signed": true,
            "upstream": {"service": service, "balance": "least_request"},
            "timeouts": {"connect_ms": 1000, "per_try_ms": 7000, "total_ms": 8000},
            "retry": {"max_retries": 0, "budget_ratio": 0.2, "min_retries_per_sec": 10},
            "limits": [
                {"by": "user", "rate": 10, "per_ms": 60000, "burst": 5},
                {"by": "route", "rate": 200, "per_ms": 1000, "burst": 400}
            ],
            "max_concurrency": 200,
            "breaker": {"trip": "error_ratio", "threshold": 0.5, "min_requests": 20,
                        "stat_interval_ms": 10000, "open_ms": 5000},
            "fallback": {"kind": "busy"},
            "max_body_bytes": 16384
        })
    };
    let records = common("contribution-records", "GET");
    let mut queries = common("contribution-record-queries", "POST");
    if let Some(route) = queries.as_object_mut() {
        // The query names a person: the client may seal its body (the digital envelope).
        route.insert("envelope".to_owned(), json!("optional"));
    }
    vec![records, queries]
}
