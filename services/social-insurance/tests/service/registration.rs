//! With the platform's admin API, the service fetches its caller-context keys, registers once
//! it listens and deregisters on shutdown. The admin API here is a stand-in that answers as
//! `docs/gateway.md` and `docs/services.md` describe (the platform's own is tested through
//! the binary in `crates/tongban`).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post};
use http::HeaderMap;
use serde_json::{Value, json};
use tongban_sdk::platform::PlatformConfig;
use tongban_social_insurance::Platform;
use zeroize::Zeroizing;

use crate::support::{Db, as_zhang, seal_context, start};

const TOKEN: &str = "admin-token-for-tests";
const KEY_HEX: &str = "0707070707070707070707070707070707070707070707070707070707070707";

type Calls = Arc<Mutex<Vec<String>>>;

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes())
}

fn refused() -> axum::Json<Value> {
    axum::Json(json!({"code": 20001, "msg": "服务器拒绝请求"}))
}

async fn keys(
    State(calls): State<Calls>,
    Path(service): Path<String>,
    headers: HeaderMap,
) -> axum::Json<Value> {
    if !authorized(&headers) {
        return refused();
    }
    calls.lock().expect("calls").push(format!("keys {service}"));
    axum::Json(json!({"code": 0, "data": {"service": service, "current": 1,
        "keys": [{"version": 1, "key": KEY_HEX}]}}))
}

async fn register(
    State(calls): State<Calls>,
    headers: HeaderMap,
    axum::Json(r): axum::Json<Value>,
) -> axum::Json<Value> {
    if !authorized(&headers) {
        return refused();
    }
    calls.lock().expect("calls").push(format!(
        "register {} {}",
        r["service"].as_str().unwrap_or(""),
        r["address"].as_str().unwrap_or("")
    ));
    axum::Json(
        json!({"code": 0, "data": {"id": "i-1", "service": r["service"],
        "address": r["address"], "weight": r["weight"], "metadata": r["metadata"],
        "persistent": false, "healthy": true}}),
    )
}

async fn deregister(
    State(calls): State<Calls>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> axum::Json<Value> {
    if !authorized(&headers) {
        return refused();
    }
    calls
        .lock()
        .expect("calls")
        .push(format!("deregister {id}"));
    axum::Json(json!({"code": 0, "data": {"id": id}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_registers_with_fetched_keys_and_deregisters_on_shutdown() {
    let calls: Calls = Arc::default();
    let admin = Router::new()
        .route(
            "/api/v1/microservices/{service}/caller-context-keys",
            get(keys),
        )
        .route("/api/v1/instances", post(register))
        .route("/api/v1/instances/{id}", delete(deregister))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin_url = format!("http://{}", listener.local_addr().expect("addr"));
    let server = tokio::spawn(async move { axum::serve(listener, admin).await });

    let env = start(Db::Sqlite, |c| {
        c.service_name = "si-test".to_owned();
        c.platform = Platform::Admin(PlatformConfig {
            admin_url,
            admin_token: Zeroizing::new(TOKEN.to_owned()),
            ca_pem: None,
            resolve: None,
        });
    })
    .await;
    let addr = env.svc.addr();
    assert_eq!(env.svc.instance_id().as_deref(), Some("i-1"));
    assert_eq!(
        *calls.lock().expect("calls"),
        [
            "keys si-test".to_owned(),
            format!("register si-test {addr}")
        ]
    );

    // Contexts sealed with the issued key, for this service's name, verify.
    let key = tongban_crypto::caller_context::ContextKey::from_bytes(1, &[7; 32]);
    let who = crate::support::As {
        svc: "si-test",
        ..as_zhang()
    };
    let (status, v) = env
        .get(
            "/api/v1/contribution-records?from=2024-01&to=2024-03",
            Some(&seal_context(&key, &who)),
        )
        .await;
    assert_eq!((status, v["code"].as_u64()), (200, Some(0)), "{v}");

    env.finish().await;
    assert_eq!(
        calls.lock().expect("calls").last().map(String::as_str),
        Some("deregister i-1")
    );
    server.abort();
}
