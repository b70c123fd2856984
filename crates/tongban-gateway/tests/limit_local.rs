//! The limiter suite on the in-process backend, and the limit layer end to end over HTTP.

mod common;
mod limit_suite;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use serde_json::json;
use tongban_gateway::Gateway;
use tongban_gateway::limit::{LocalLimiter, RateLimiter};

async fn open() -> Vec<Arc<dyn RateLimiter>> {
    let l: Arc<dyn RateLimiter> = Arc::new(LocalLimiter::default());
    vec![l.clone(), l.clone(), l]
}

limit_suite!(open);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_concurrency_answer_429_envelopes() {
    let up = upstream("a").await;
    up.behaviour
        .hang
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let gw = Gateway::new(options());
    let refused = gw.apply(vec![
        route(
            json!({"id": "forms", "prefix": "/api/v1/forms", "auth": "anonymous",
            "upstream": {"instances": [{"address": up.addr.to_string()}]},
            "limits": [{"by": "ip", "rate": 1, "per_ms": 60000, "burst": 3}]}),
        ),
        route(
            json!({"id": "slow", "prefix": "/api/v1/slows", "auth": "anonymous",
            "upstream": {"instances": [{"address": up.addr.to_string()}]},
            "max_concurrency": 1}),
        ),
    ]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    for _ in 0..3 {
        let (s, v) = get(&c, format!("http://{}/api/v1/forms", g.addr)).await;
        assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    }
    let (s, h, v) = send(&c, "GET", format!("http://{}/api/v1/forms", g.addr), "").await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!(10019))
    );
    assert_eq!(
        h.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("60")
    );
    assert_eq!(
        g.gateway.metrics().route("forms").expect("stats").limited,
        1
    );

    // Each answer gives its place back: requests one after another all pass.
    for _ in 0..3 {
        let (s, v) = get(&c, format!("http://{}/api/v1/slows", g.addr)).await;
        assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    }
    // One request in flight on the slow route: a second one is refused at once.
    up.behaviour
        .hang
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let first = {
        let c = c.clone();
        let url = format!("http://{}/api/v1/slows", g.addr);
        tokio::spawn(async move { get(&c, url).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (s, v) = get(&c, format!("http://{}/api/v1/slows", g.addr)).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!(10019))
    );
    first.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_ip_limits_see_through_trusted_proxies_only() {
    let up = upstream("a").await;
    let opts = tongban_gateway::GatewayOptions {
        trusted_proxies: vec!["127.0.0.0/8".parse().expect("range")],
        ..options()
    };
    let gw = Gateway::new(opts);
    gw.apply(vec![route(
        json!({"id": "forms", "prefix": "/api/v1/forms", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "limits": [{"by": "ip", "rate": 1, "per_ms": 60000, "burst": 1}]}),
    )]);
    let g = run_gateway(gw).await;
    let c = client();
    let as_client = |ip: &'static str| {
        let c = c.clone();
        let url = format!("http://{}/api/v1/forms", g.addr);
        async move {
            let req = http::Request::get(url)
                .header("x-forwarded-for", ip)
                .body(Default::default())
                .expect("req");
            c.request(req).await.expect("resp").status()
        }
    };
    assert_eq!(as_client("198.51.100.1").await, StatusCode::OK);
    assert_eq!(
        as_client("198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        as_client("198.51.100.2").await,
        StatusCode::OK,
        "another client behind the proxy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queueing_limit_admits_in_turn_and_the_next_limit_still_counts() {
    let up = upstream("a").await;
    up.behaviour
        .hang
        .store(false, std::sync::atomic::Ordering::SeqCst);
    // The clock stands still, so at 10/s the second request waits its turn (100 ms), the
    // third 200 ms, the fourth would wait 300 ms, past max_wait_ms. After a queued wait the
    // per-IP limit (burst 2) is still checked: it refuses the third.
    let clock = tongban_core::clock::ManualClock::new(std::time::Duration::from_secs(1_000));
    let gw = Gateway::new(tongban_gateway::GatewayOptions {
        clock: Arc::new(clock),
        ..options()
    });
    let refused = gw.apply(vec![route(
        json!({"id": "queue", "prefix": "/api/v1/queues", "auth": "anonymous",
            "upstream": {"instances": [{"address": up.addr.to_string()}]},
            "limits": [{"by": "route", "rate": 10, "burst": 1, "max_wait_ms": 250},
                       {"by": "ip", "rate": 1, "per_ms": 60000, "burst": 2}]}),
    )]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    let url = format!("http://{}/api/v1/queues", g.addr);
    for what in ["first", "queued"] {
        let (s, v) = get(&c, url.clone()).await;
        assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)), "{what}");
    }
    let (s, h, v) = send(&c, "GET", url.clone(), "").await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!(10019)),
        "queued, then refused by the per-IP limit"
    );
    assert_eq!(
        h.get("retry-after").and_then(|v| v.to_str().ok()),
        Some("60"),
        "the per-IP limit's wait"
    );
    let (s, v) = get(&c, url).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!(10019)),
        "past the longest wait"
    );
    assert_eq!(
        g.gateway.metrics().route("queue").expect("stats").limited,
        2
    );
}
