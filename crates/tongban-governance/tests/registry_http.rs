//! The registry's HTTP API end to end (no socket needed): envelope answers, URL shapes.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tongban_governance::registry::{self, EmbeddedRegistry, Registry, Timings};
use tower::ServiceExt;

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(uri);
    let body = match body {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let resp = app
        .clone()
        .oneshot(b.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).expect("envelope json"),
    )
}

#[tokio::test]
async fn register_beat_list_and_deregister_over_http() {
    let reg = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("open");
    let app: Router = registry::http::router(Arc::new(reg.clone()) as Arc<dyn Registry>).into();
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/instances",
        Some(json!({"service": "users", "address": "127.0.0.1:9001", "weight": 50, "metadata": {"zone": "a"}})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["code"], 0);
    let id = v["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(v["data"]["weight"], 50);

    let (s, v) = call(
        &app,
        "POST",
        &format!("/api/v1/instances/{id}/heartbeats"),
        None,
    )
    .await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));

    let (_, v) = call(
        &app,
        "GET",
        "/api/v1/microservices/users/instances?healthy=true",
        None,
    )
    .await;
    assert_eq!(v["data"][0]["address"], "127.0.0.1:9001");
    let (_, v) = call(&app, "GET", "/api/v1/microservices", None).await;
    assert_eq!(v["data"], json!(["users"]));

    let (s, v) = call(&app, "DELETE", &format!("/api/v1/instances/{id}"), None).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    let (s, v) = call(
        &app,
        "POST",
        &format!("/api/v1/instances/{id}/heartbeats"),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!(20404))
    );
}

#[tokio::test]
async fn bad_registrations_answer_20000() {
    let reg = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("open");
    let app: Router = registry::http::router(Arc::new(reg) as Arc<dyn Registry>).into();
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/instances",
        Some(json!({"service": "Bad_Name", "address": "127.0.0.1:9001"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(20000))
    );
    let (s, v) = call(
        &app,
        "POST",
        "/api/v1/instances",
        Some(json!({"service": "x"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(20000))
    );
}

#[tokio::test]
async fn persistent_instances_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!("tongban-registry-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/t.db", dir.display());
    let store = tongban_store::Store::open(&tongban_store::StoreOptions::new(&url))
        .await
        .expect("open");
    let reg = EmbeddedRegistry::open(Timings::default(), Some(store.clone()))
        .await
        .expect("reg");
    let mut r: tongban_governance::Registration = serde_json::from_value(
        json!({"service": "archive", "address": "127.0.0.1:9002", "persistent": true}),
    )
    .expect("registration");
    reg.register(r.clone()).await.expect("register");
    r.address = "127.0.0.1:9003".into();
    r.persistent = false;
    reg.register(r.clone()).await.expect("ephemeral");
    // Persistent, then registered again as ephemeral: it must not come back.
    r.address = "127.0.0.1:9004".into();
    r.persistent = true;
    reg.register(r.clone()).await.expect("persistent");
    r.persistent = false;
    reg.register(r).await.expect("now ephemeral");
    store.close().await;
    let store = tongban_store::Store::open(&tongban_store::StoreOptions::new(&url))
        .await
        .expect("reopen");
    let reg = EmbeddedRegistry::open(Timings::default(), Some(store))
        .await
        .expect("reg");
    let all = reg.instances("archive").await.expect("list");
    assert_eq!(all.len(), 1, "only the persistent instance is stored");
    assert_eq!(all[0].address, "127.0.0.1:9002");
}
