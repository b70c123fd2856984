//! The wiring the binary uses: the gateway as the public router's fallback behind local
//! routes, and the registry and gateway admin APIs merged on one admin router (axum panics on
//! overlapping routes, so merging here proves they do not collide); admin paths follow 6.2.3.

mod common;

use std::sync::Arc;

use axum::Router;
use axum::routing::get as get_route;
use common::*;
use http::StatusCode;
use serde_json::json;
use tongban_gateway::route::url_rules;
use tongban_gateway::{Gateway, admin};
use tongban_governance::config::{ConfigCentre, EmbeddedConfig};
use tongban_governance::registry::{self, EmbeddedRegistry, Registry, Timings};
use tongban_store::{Store, StoreOptions};

#[derive(Clone)]
struct AppState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_routes_first_then_the_gateway() {
    let up = upstream("a").await;
    let gw = Gateway::new(options());
    gw.apply(vec![route(
        json!({"id": "users", "prefix": "/api/v1/users", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]}}),
    )]);
    let public: Router = Router::<AppState>::new()
        .route("/healthz", get_route(|| async { "live" }))
        .fallback_service(gw.service())
        .with_state(AppState);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(serve(listener, public));
    let c = client();
    let (s, _, _) = send(&c, "GET", format!("http://{addr}/healthz"), "").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = get(&c, format!("http://{addr}/api/v1/users")).await;
    assert_eq!(
        (s, v["data"]["instance"].clone()),
        (StatusCode::OK, json!("a"))
    );
    let (s, v) = get(&c, format!("http://{addr}/elsewhere")).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!(20404))
    );
    server.abort();
}

#[tokio::test]
async fn admin_apis_merge_and_follow_the_url_rules() {
    let dir = std::env::temp_dir().join(format!("tongban-wiring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&StoreOptions::new(format!(
        "sqlite://{}/t.db",
        dir.display()
    )))
    .await
    .expect("store");
    let config: Arc<dyn ConfigCentre> = Arc::new(EmbeddedConfig::new(store.clone()));
    let reg: Arc<dyn Registry> = Arc::new(
        EmbeddedRegistry::open(Timings::default(), Some(store))
            .await
            .expect("registry"),
    );
    let gw = Gateway::new(options());
    let _admin: Router = Router::<AppState>::new()
        .route("/healthz", get_route(|| async { "live" }))
        .merge(registry::http::router(reg))
        .merge(admin::router(gw, config))
        .with_state(AppState);
    for path in [
        "/api/v1/instances",
        "/api/v1/instances/{id}/heartbeats",
        "/api/v1/microservices/{service}/instances",
        "/api/v1/routes/{id}/versions",
        "/api/v1/routes/{id}/rollbacks",
        "/api/v1/breakers",
        "/api/v1/route-stats",
    ] {
        assert_eq!(url_rules::check(path), Ok(()), "{path}");
    }
}
