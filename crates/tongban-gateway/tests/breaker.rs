//! A hanging upstream on real sockets: the breaker opens, the fallback is served without
//! touching the upstream, a failed half-open probe reopens it, a good one closes it.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use http::StatusCode;
use serde_json::json;
use tongban_core::clock::ManualClock;
use tongban_gateway::breaker::State;
use tongban_gateway::{Gateway, GatewayOptions};

/// The breaker's windows and open time run on an injected clock that moves only when told
/// to; the upstream timeouts (real tokio timers) only bound how long a hanging call waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_upstream_opens_the_breaker_and_a_probe_recovers_it() {
    let up = upstream("reports").await;
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let gw = Gateway::new(GatewayOptions {
        clock: Arc::new(clock.clone()),
        ..options()
    });
    let refused = gw.apply(vec![route(json!({
        "id": "reports", "prefix": "/api/v1/reports", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "timeouts": {"connect_ms": 200, "per_try_ms": 150, "total_ms": 1000},
        "retry": {"max_retries": 0},
        "breaker": {"trip": "error_ratio", "threshold": 0.5, "min_requests": 3,
                    "stat_interval_ms": 5000, "open_ms": 400},
        "fallback": {"kind": "last_good"}
    }))]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    let url = |p: &str| format!("http://{}/api/v1/reports/{p}", g.addr);
    let state = || g.gateway.breaker_states()[0].1;
    let hits = || up.behaviour.hits.load(Ordering::SeqCst);
    let rejected = || {
        g.gateway
            .metrics()
            .route("reports")
            .expect("stats")
            .breaker_rejected
    };

    let (s, good) = get(&c, url("1")).await;
    assert_eq!((s, good["code"].clone()), (StatusCode::OK, json!(0)));

    up.behaviour.hang.store(true, Ordering::SeqCst);
    let (_, v) = get(&c, url("1")).await;
    assert_eq!(v["code"], 30003);
    assert_eq!(
        state(),
        State::Closed,
        "two calls are below the minimum amount"
    );
    let (_, v) = get(&c, url("1")).await;
    assert_eq!(v["code"], 30003);
    assert_eq!(state(), State::Open, "two failures of three");
    let before = hits();

    // Open: the last good answer, from the breaker (the upstream still hangs, so an answer
    // that had waited for it would be 30003), and the upstream never sees the request.
    let (s, h, v) = send(&c, "GET", url("1"), "").await;
    assert_eq!((s, &v), (StatusCode::OK, &good));
    assert_eq!(
        h.get("x-tongban-fallback").map(|v| v.to_str().ok()),
        Some(Some("last-good"))
    );
    // No remembered answer for this path: 10019.
    let (s, v) = get(&c, url("2")).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(10019))
    );
    assert_eq!(hits(), before, "the upstream was spared");
    assert_eq!(rejected(), 2, "both answered by the breaker");

    // Open for exactly `open_ms` of the gateway's clock.
    clock.advance(Duration::from_millis(399));
    assert_eq!(state(), State::Open, "1 ms before the open time ends");
    clock.advance(Duration::from_millis(1));
    assert_eq!(state(), State::HalfOpen);

    // Half-open: one probe; it hangs too, so the breaker opens again.
    let (_, v) = get(&c, url("1")).await;
    assert_eq!(v["code"], 30003, "the probe went to the upstream");
    assert_eq!(hits(), before + 1);
    assert_eq!(state(), State::Open);
    let (_, h, _) = send(&c, "GET", url("1"), "").await;
    assert_eq!(
        h.get("x-tongban-fallback").map(|v| v.to_str().ok()),
        Some(Some("last-good")),
        "reopened: the fallback again"
    );
    assert_eq!(hits(), before + 1, "no second probe while reopened");

    // The upstream recovers; after another open time the next probe closes the breaker.
    up.behaviour.hang.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_millis(400));
    assert_eq!(state(), State::HalfOpen);
    let (s, h, v) = send(&c, "GET", url("3"), "").await;
    assert_eq!(
        (s, v["data"]["path"].clone()),
        (StatusCode::OK, json!("/api/v1/reports/3"))
    );
    assert!(h.get("x-tongban-fallback").is_none());
    assert_eq!(state(), State::Closed);
    assert_eq!(hits(), before + 2);
    assert_eq!(rejected(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_trip_a_slow_ratio_breaker_with_a_static_fallback() {
    let up = upstream("slow").await;
    up.behaviour.hang.store(true, Ordering::SeqCst);
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "slow", "prefix": "/api/v1/slows", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "timeouts": {"connect_ms": 200, "per_try_ms": 60, "total_ms": 1000},
        "retry": {"max_retries": 0},
        "breaker": {"trip": "slow_ratio", "threshold": 0.5, "slow_ms": 50, "min_requests": 2,
                    "stat_interval_ms": 5000, "open_ms": 5000},
        "fallback": {"kind": "static", "code": 0, "msg": "降级数据", "data": {"items": []}}
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    for _ in 0..2 {
        let (_, v) = get(&c, format!("http://{}/api/v1/slows", g.addr)).await;
        assert_eq!(v["code"], 30003);
    }
    let (s, v) = get(&c, format!("http://{}/api/v1/slows", g.addr)).await;
    assert_eq!(
        (s, v),
        (
            StatusCode::OK,
            json!({"code": 0, "msg": "降级数据", "data": {"items": []}})
        )
    );
}

/// The call's time is read off the gateway's clock, as the breaker's windows are: with an
/// injected clock that stands still, calls that take 100 ms of real time are not slow; the
/// same calls while the clock jumps 5 s are, and trip the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_calls_are_timed_on_the_gateway_clock() {
    let up = upstream("timed").await;
    up.behaviour.hang.store(true, Ordering::SeqCst);
    let clock = ManualClock::new(Duration::from_secs(1_000));
    let gw = Gateway::new(GatewayOptions {
        clock: Arc::new(clock.clone()),
        ..options()
    });
    let refused = gw.apply(vec![route(json!({
        "id": "timed", "prefix": "/api/v1/timings", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "timeouts": {"connect_ms": 200, "per_try_ms": 100, "total_ms": 1000},
        "retry": {"max_retries": 0},
        "breaker": {"trip": "slow_ratio", "threshold": 0.4, "slow_ms": 50, "min_requests": 2,
                    "stat_interval_ms": 60000, "open_ms": 60000},
        "fallback": {"kind": "static", "code": 0, "msg": "降级数据", "data": null}
    }))]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    let url = format!("http://{}/api/v1/timings", g.addr);
    let state = || g.gateway.breaker_states()[0].1;

    for _ in 0..2 {
        let (_, v) = get(&c, url.clone()).await;
        assert_eq!(v["code"], 30003);
    }
    assert_eq!(
        state(),
        State::Closed,
        "no time passed on the gateway's clock"
    );

    for n in 0..2 {
        let pending = tokio::spawn({
            let (c, url) = (c.clone(), url.clone());
            async move { get(&c, url).await }
        });
        // Admitted (the upstream has the request) before the clock moves.
        while up.behaviour.hits.load(Ordering::SeqCst) < 3 + n {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        clock.advance(Duration::from_secs(5));
        let (_, v) = pending.await.expect("request task");
        assert_eq!(v["code"], 30003);
    }
    assert_eq!(state(), State::Open, "two slow calls of four");
    let hits = up.behaviour.hits.load(Ordering::SeqCst);
    let (s, v) = get(&c, url).await;
    assert_eq!((s, v["msg"].clone()), (StatusCode::OK, json!("降级数据")));
    assert_eq!(up.behaviour.hits.load(Ordering::SeqCst), hits);
}

#[derive(Debug)]
struct UserHeader;

#[async_trait::async_trait]
impl tongban_gateway::auth::AuthResolver for UserHeader {
    async fn resolve(
        &self,
        parts: &http::request::Parts,
    ) -> Result<tongban_gateway::routed::Caller, tongban_core::ApiError> {
        let user = parts
            .headers
            .get("x-test-user")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(tongban_gateway::routed::Caller {
            level: tongban_core::AuthLevel::RealName,
            user,
            app: None,
            face_age: None,
            session: None,
            face_verified_at: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_good_answers_are_never_served_to_another_user() {
    let up = upstream("records").await;
    let opts = GatewayOptions {
        auth: Arc::new(UserHeader),
        ..options()
    };
    let gw = Gateway::new(opts);
    gw.apply(vec![route(json!({
        "id": "records", "prefix": "/api/v1/records", "auth": "real_name",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "timeouts": {"connect_ms": 200, "per_try_ms": 100, "total_ms": 1000},
        "retry": {"max_retries": 0},
        "breaker": {"trip": "error_count", "threshold": 0, "min_requests": 1,
                    "stat_interval_ms": 5000, "open_ms": 5000},
        "fallback": {"kind": "last_good"}
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    let as_user = |user: &'static str| {
        let c = c.clone();
        let url = format!("http://{}/api/v1/records/mine", g.addr);
        async move {
            let req = http::Request::get(url)
                .header("x-test-user", user)
                .body(Default::default())
                .expect("req");
            let resp = c.request(req).await.expect("resp");
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            serde_json::from_slice::<serde_json::Value>(&body).expect("json")
        }
    };
    assert_eq!(as_user("alice").await["code"], 0);
    up.behaviour.hang.store(true, Ordering::SeqCst);
    assert_eq!(
        as_user("alice").await["code"],
        30003,
        "one error opens (count above 0)"
    );
    assert_eq!(
        as_user("alice").await["code"],
        0,
        "alice gets her own last answer"
    );
    assert_eq!(
        as_user("bob").await["code"],
        10019,
        "bob never gets alice's"
    );
}
