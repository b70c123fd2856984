//! The limiter suite on Redis (127.0.0.1:6379, or `TONGBAN_TEST_REDIS_URL`) with three
//! connections standing for three gateway instances, and three gateways sharing one limit.

mod common;
mod limit_suite;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use http::StatusCode;
use serde_json::json;
use tongban_core::clock::ManualClock;
use tongban_gateway::limit::{RateLimiter, RedisLimiter};
use tongban_gateway::{Gateway, GatewayOptions};

fn url() -> String {
    std::env::var("TONGBAN_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

async fn connect() -> RedisLimiter {
    RedisLimiter::connect(&url(), "tb:test:rl:", false)
        .await
        .expect("Redis must be running (bash scripts/services.sh)")
}

async fn open() -> Vec<Arc<dyn RateLimiter>> {
    let mut v: Vec<Arc<dyn RateLimiter>> = Vec::new();
    for _ in 0..3 {
        v.push(Arc::new(connect().await));
    }
    v
}

limit_suite!(open);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_share_one_route_limit() {
    let up = upstream("a").await;
    let clock = ManualClock::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock"),
    );
    let id = format!("shared-{}", std::process::id());
    let spec = json!({"id": id, "prefix": "/api/v1/quotas", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]},
        "limits": [{"by": "route", "rate": 20, "burst": 2}]});
    let mut gateways = Vec::new();
    for _ in 0..3 {
        let opts = GatewayOptions {
            clock: Arc::new(clock.clone()),
            limiter: Arc::new(connect().await),
            ..options()
        };
        let gw = Gateway::new(opts);
        assert!(gw.apply(vec![route(spec.clone())]).is_empty());
        gateways.push(run_gateway(gw).await);
    }
    let c = client();
    let mut codes = Vec::new();
    for g in gateways.iter().cycle().take(6) {
        let (_, v) = get(&c, format!("http://{}/api/v1/quotas", g.addr)).await;
        codes.push(v["code"].as_u64().expect("code"));
    }
    assert_eq!(
        codes,
        vec![0, 0, 10019, 10019, 10019, 10019],
        "a burst of 2 across all three"
    );
    clock.advance(Duration::from_millis(50));
    let (s, v) = get(&c, format!("http://{}/api/v1/quotas", gateways[2].addr)).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::OK, json!(0)),
        "one more after 1/20 s"
    );
    let (s, _) = get(&c, format!("http://{}/api/v1/quotas", gateways[0].addr)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}
