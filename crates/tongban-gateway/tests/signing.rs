//! Anti-tamper on real sockets: a valid signed request passes and its answer is signed; a
//! replayed nonce, a stale timestamp, an altered body, query or path, a missing signature or
//! an unknown key are each refused with 20001 and their reason, and the upstream never sees
//! them; a nonce store that cannot answer refuses (fails closed).

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use http::request::Parts;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use tongban_core::ApiError;
use tongban_gateway::sign::canonical::{self, Signed};
use tongban_gateway::sign::nonce::NonceError;
use tongban_gateway::sign::{LocalNonces, NonceStore, RedisNonces, SigningKeys};
use tongban_gateway::{Gateway, GatewayOptions};

const KEY: &[u8] = b"session-key-for-tests-0123456789";

#[derive(Debug)]
struct TestKeys;

#[async_trait::async_trait]
impl SigningKeys for TestKeys {
    async fn key(&self, _: &Parts, key_id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        Ok((key_id == "sk-1").then(|| KEY.to_vec()))
    }
}

#[derive(Debug)]
struct BrokenNonces;

#[async_trait::async_trait]
impl NonceStore for BrokenNonces {
    async fn first_use(&self, _: &str, _: Duration, _: Duration) -> Result<bool, NonceError> {
        Err(NonceError("down".into()))
    }
}

fn now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs(),
    )
    .expect("secs")
}

struct Req<'a> {
    method: &'a str,
    signed_path: &'a str,
    sent_path: &'a str,
    signed_body: &'a str,
    sent_body: &'a str,
    ts: i64,
    nonce: &'a str,
    key_id: &'a str,
    with_signature: bool,
}

impl Default for Req<'_> {
    fn default() -> Self {
        Self {
            method: "POST",
            signed_path: "/api/v1/payments?b=2&a=1",
            sent_path: "/api/v1/payments?b=2&a=1",
            signed_body: r#"{"amount":1}"#,
            sent_body: r#"{"amount":1}"#,
            ts: now(),
            nonce: "nonce-0000000000000001",
            key_id: "sk-1",
            with_signature: true,
        }
    }
}

async fn call(g: &RunningGateway, r: Req<'_>) -> (StatusCode, http::HeaderMap, Value, Bytes) {
    let (path, query) = r
        .signed_path
        .split_once('?')
        .map_or((r.signed_path, None), |(p, q)| (p, Some(q)));
    let ts = r.ts.to_string();
    let s = Signed {
        key_id: r.key_id,
        timestamp: &ts,
        nonce: r.nonce,
        signature: "",
    };
    let sig = canonical::sign(
        KEY,
        &canonical::request_string(r.method, path, query, r.signed_body.as_bytes(), &s),
    );
    let mut b = Request::builder()
        .method(r.method)
        .uri(format!("http://{}{}", g.addr, r.sent_path))
        .header("x-tb-key-id", r.key_id)
        .header("x-tb-timestamp", &ts)
        .header("x-tb-nonce", r.nonce);
    if r.with_signature {
        b = b.header("x-tb-signature", sig);
    }
    let resp = client()
        .request(
            b.body(Full::new(Bytes::copy_from_slice(r.sent_body.as_bytes())))
                .expect("req"),
        )
        .await
        .expect("answer");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        bytes,
    )
}

async fn gateway(nonces: Arc<dyn NonceStore>, up: &Upstream) -> RunningGateway {
    let opts = GatewayOptions {
        keys: Arc::new(TestKeys),
        nonces,
        ..options()
    };
    let gw = Gateway::new(opts);
    let refused = gw.apply(vec![route(
        json!({"id": "payments", "prefix": "/api/v1/payments",
        "auth": "anonymous", "signed": true,
        "upstream": {"instances": [{"address": up.addr.to_string()}]}}),
    )]);
    assert!(refused.is_empty(), "{refused:?}");
    run_gateway(gw).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_routes_refuse_every_tampering_and_sign_answers() {
    let up = upstream("pay").await;
    let g = gateway(Arc::new(LocalNonces::default()), &up).await;

    let (s, h, v, raw) = call(&g, Req::default()).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)), "{v}");
    let ts: i64 = h["x-tb-timestamp"]
        .to_str()
        .expect("ts")
        .parse()
        .expect("int");
    let expected = canonical::sign(
        KEY,
        &canonical::response_string(200, &raw, ts, "nonce-0000000000000001", "sk-1"),
    );
    assert_eq!(
        h["x-tb-signature"].to_str().expect("sig"),
        expected,
        "answer signed"
    );
    assert_eq!(up.behaviour.hits.load(Ordering::SeqCst), 1);

    let cases: Vec<(&str, Req<'_>)> = vec![
        ("nonce_replayed", Req::default()),
        (
            "timestamp_stale",
            Req {
                ts: now() - 301,
                nonce: "nonce-0000000000000002",
                ..Req::default()
            },
        ),
        (
            "signature_invalid",
            Req {
                sent_body: r#"{"amount":1000}"#,
                nonce: "nonce-0000000000000003",
                ..Req::default()
            },
        ),
        (
            "signature_invalid",
            Req {
                sent_path: "/api/v1/payments?b=2&a=9",
                nonce: "nonce-0000000000000004",
                ..Req::default()
            },
        ),
        (
            "signature_invalid",
            Req {
                sent_path: "/api/v1/payments/7?b=2&a=1",
                nonce: "nonce-0000000000000005",
                ..Req::default()
            },
        ),
        (
            "signature_missing",
            Req {
                with_signature: false,
                nonce: "nonce-0000000000000006",
                ..Req::default()
            },
        ),
        (
            "key_unknown",
            Req {
                key_id: "sk-2",
                nonce: "nonce-0000000000000007",
                ..Req::default()
            },
        ),
    ];
    for (reason, r) in cases {
        let (s, _, v, _) = call(&g, r).await;
        assert_eq!(
            (s, v["code"].clone(), v["data"]["reason"].clone()),
            (StatusCode::FORBIDDEN, json!(20001), json!(reason))
        );
    }
    assert_eq!(
        up.behaviour.hits.load(Ordering::SeqCst),
        1,
        "no refused request reached the upstream"
    );
    // Reordering the query is not tampering: the canonical form sorts it.
    let (_, _, v, _) = call(
        &g,
        Req {
            sent_path: "/api/v1/payments?a=1&b=2",
            nonce: "nonce-0000000000000008",
            ..Req::default()
        },
    )
    .await;
    assert_eq!(v["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_nonce_store_fails_closed() {
    let up = upstream("pay").await;
    let g = gateway(Arc::new(BrokenNonces), &up).await;
    let (s, _, v, _) = call(&g, Req::default()).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!(10019))
    );
    assert_eq!(up.behaviour.hits.load(Ordering::SeqCst), 0);
}

async fn nonce_store_refuses_a_second_use(store: &dyn NonceStore) {
    let n = format!("suite-{}-{}", std::process::id(), now());
    let t = Duration::from_secs(1_000);
    assert!(
        store
            .first_use(&n, Duration::from_secs(600), t)
            .await
            .expect("answer")
    );
    assert!(
        !store
            .first_use(&n, Duration::from_secs(600), t)
            .await
            .expect("answer")
    );
    assert!(
        store
            .first_use(&format!("{n}-b"), Duration::from_secs(600), t)
            .await
            .expect("answer")
    );
}

#[tokio::test]
async fn local_nonce_store() {
    let store = LocalNonces::default();
    nonce_store_refuses_a_second_use(&store).await;
    // Expired nonces may be used again (the window has moved past them).
    assert!(
        store
            .first_use(
                "x-expiring",
                Duration::from_secs(1),
                Duration::from_secs(10)
            )
            .await
            .expect("a")
    );
    assert!(
        store
            .first_use(
                "x-expiring",
                Duration::from_secs(1),
                Duration::from_secs(12)
            )
            .await
            .expect("b")
    );
}

#[tokio::test]
async fn redis_nonce_store() {
    let url = std::env::var("TONGBAN_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let store = RedisNonces::connect(&url, "tb:test:nonce:")
        .await
        .expect("Redis must be running");
    nonce_store_refuses_a_second_use(&store).await;
}

/// Many live nonces: each is still single-use, and once past their lifetime all may be used
/// again.
#[tokio::test]
async fn local_nonce_store_with_many_live_nonces() {
    let store = LocalNonces::default();
    let ttl = Duration::from_secs(600);
    let t = Duration::from_secs(1_000);
    for i in 0..250_000u32 {
        assert!(
            store
                .first_use(&i.to_string(), ttl, t)
                .await
                .expect("answer")
        );
    }
    for i in [0u32, 99_999, 100_000, 249_999] {
        assert!(
            !store
                .first_use(&i.to_string(), ttl, t)
                .await
                .expect("answer"),
            "nonce {i} replayed"
        );
    }
    // Past their lifetime all may be used again.
    let later = t + ttl + Duration::from_secs(1);
    assert!(store.first_use("0", ttl, later).await.expect("answer"));
    assert!(store.first_use("249999", ttl, later).await.expect("answer"));
}

/// The in-process store holds a bounded number of live nonces; past it, it refuses to answer
/// (so signed requests are refused: fail closed) rather than grow without limit.
#[tokio::test]
async fn local_nonce_store_fails_closed_when_full() {
    let store = LocalNonces::default();
    let ttl = Duration::from_secs(600);
    let t = Duration::from_secs(1_000);
    let mut refused_at = None;
    for i in 0..1_100_000u32 {
        if store.first_use(&i.to_string(), ttl, t).await.is_err() {
            refused_at = Some(i);
            break;
        }
    }
    // Nonces are spread over shards with a share of the bound each: the first refusal comes
    // when the fullest shard is full, a little before the whole bound.
    let at = refused_at.expect("refused before 1,100,000");
    assert!((900_000..=1_000_000).contains(&at), "first refusal at {at}");
    assert!(
        !store
            .first_use("5", ttl, t)
            .await
            .expect("a seen nonce is still answered"),
        "replays are still refused"
    );
}
