//! Routes from the config centre: a push changes live routing on an open connection, the
//! admin API refuses bad routes naming the rule, rules survive a restart, and registry
//! instances are followed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use common::*;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tongban_gateway::{Gateway, GatewayOptions, ROUTES_NAMESPACE, admin};
use tongban_governance::config::{ConfigCentre, EmbeddedConfig, Expect};
use tongban_governance::registry::{EmbeddedRegistry, Registration, Registry, Timings};
use tongban_store::{Store, StoreOptions};
use tower::ServiceExt;

fn db_url() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tongban-gateway-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    format!("sqlite://{}/t.db", dir.display())
}

fn spec(id: &str, prefix: &str, addr: std::net::SocketAddr) -> Value {
    json!({"id": id, "prefix": prefix, "auth": "anonymous",
           "upstream": {"instances": [{"address": addr.to_string()}]}})
}

async fn admin_call(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))
        .expect("request");
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let s = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (s, serde_json::from_slice(&bytes).expect("envelope"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_push_reroutes_an_open_connection_within_a_second() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let store = Store::open(&StoreOptions::new(db_url()))
        .await
        .expect("store");
    let config: Arc<dyn ConfigCentre> = Arc::new(EmbeddedConfig::new(store));
    config
        .put(
            ROUTES_NAMESPACE,
            "users",
            &spec("users", "/api/v1/users", a.addr).to_string(),
            Expect::Any,
        )
        .await
        .expect("put");
    let gw = Gateway::new(options());
    assert!(gw.load(config.as_ref()).await.expect("load").is_empty());
    let watcher = gw.watch_config(config.clone()).await.expect("watch");
    let g = run_gateway(gw).await;

    // One HTTP/1.1 connection for the whole test: if it were dropped, sends would fail.
    let tcp = tokio::net::TcpStream::connect(g.addr)
        .await
        .expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(conn);
    let mut ask = async || {
        let req = Request::get("/api/v1/users/1")
            .header("host", "gw")
            .body(Full::new(Bytes::new()))
            .expect("req");
        sender.ready().await.expect("same connection still open");
        let resp = sender
            .send_request(req)
            .await
            .expect("same connection still open");
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice::<Value>(&body).expect("json")["data"]["instance"].clone()
    };
    assert_eq!(ask().await, "a");
    config
        .put(
            ROUTES_NAMESPACE,
            "users",
            &spec("users", "/api/v1/users", b.addr).to_string(),
            Expect::Any,
        )
        .await
        .expect("push");
    let t = Instant::now();
    loop {
        if ask().await == "b" {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "not rerouted within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Limits change the same way: a push adds a limit of one request a minute.
    let mut limited = spec("users", "/api/v1/users", b.addr);
    limited["limits"] = json!([{"by": "route", "rate": 1, "per_ms": 60000}]);
    config
        .put(ROUTES_NAMESPACE, "users", &limited.to_string(), Expect::Any)
        .await
        .expect("push limit");
    let t = Instant::now();
    // A refused request answers an envelope without data.
    while !ask().await.is_null() {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "limit not applied within 1 s"
        );
    }
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_rules_survive_a_restart_and_bad_routes_name_the_rule() {
    let up = upstream("a").await;
    let url = db_url();
    let store = Store::open(&StoreOptions::new(&url)).await.expect("store");
    let config: Arc<dyn ConfigCentre> = Arc::new(EmbeddedConfig::new(store.clone()));
    let gw = Gateway::new(options());
    let app: Router = admin::router(gw.clone(), config.clone()).into();

    let (s, v) = admin_call(
        &app,
        "PUT",
        "/api/v1/routes/bad",
        Some(spec("bad", "/Get_User", up.addr)),
    )
    .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_REQUEST, json!(20000))
    );
    let msg = v["msg"].as_str().expect("msg");
    assert!(
        msg.contains("/Get_User") && msg.contains("URL 须全部小写") && msg.contains("连字符"),
        "{msg}"
    );
    let mut no_level = spec("nolevel", "/api/v1/levels", up.addr);
    no_level.as_object_mut().expect("obj").remove("auth");
    let (_, v) = admin_call(&app, "PUT", "/api/v1/routes/nolevel", Some(no_level)).await;
    assert_eq!(v["code"], 20000);
    assert!(v["msg"].as_str().expect("msg").contains("访问级别"));

    let mut good = spec("orders", "/api/v1/orders", up.addr);
    good["limits"] = json!([{"by": "ip", "rate": 100, "burst": 100}]);
    let (s, v) = admin_call(&app, "PUT", "/api/v1/routes/orders", Some(good.clone())).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)), "{v}");
    let (_, v) = admin_call(&app, "GET", "/api/v1/routes", None).await;
    assert_eq!(v["data"].as_array().expect("list").len(), 1);
    assert_eq!(gw.routes().len(), 1, "applied at once");
    store.close().await;

    // A new process: same SQLite file, fresh gateway.
    let store = Store::open(&StoreOptions::new(&url)).await.expect("reopen");
    let config: Arc<dyn ConfigCentre> = Arc::new(EmbeddedConfig::new(store));
    let gw = Gateway::new(options());
    assert!(gw.load(config.as_ref()).await.expect("load").is_empty());
    let routes = gw.routes();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].limits.len(), 1, "the limit rule came back too");
    let g = run_gateway(gw.clone()).await;
    let (s, v) = get(&client(), format!("http://{}/api/v1/orders/5", g.addr)).await;
    assert_eq!(
        (s, v["data"]["instance"].clone()),
        (StatusCode::OK, json!("a"))
    );

    // History and rollback through the admin API.
    let app: Router = admin::router(gw, config).into();
    let mut changed = good.clone();
    changed["limits"] = json!([]);
    admin_call(&app, "PUT", "/api/v1/routes/orders", Some(changed)).await;
    let (_, v) = admin_call(&app, "GET", "/api/v1/routes/orders/versions", None).await;
    let first = v["data"][0]["version"].as_i64().expect("version");
    let (_, v) = admin_call(
        &app,
        "POST",
        "/api/v1/routes/orders/rollbacks",
        Some(json!({"version": first})),
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    let (_, v) = admin_call(&app, "GET", "/api/v1/routes/orders", None).await;
    assert_eq!(v["data"]["limits"].as_array().map(Vec::len), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_instances_are_followed() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let registry = EmbeddedRegistry::open(Timings::default(), None)
        .await
        .expect("registry");
    let reg = |addr: std::net::SocketAddr| Registration {
        service: "users".into(),
        address: addr.to_string(),
        weight: 100,
        metadata: Default::default(),
        persistent: false,
    };
    let ia = registry.register(reg(a.addr)).await.expect("a");
    let opts = GatewayOptions {
        registry: Some(Arc::new(registry.clone())),
        ..options()
    };
    let gw = Gateway::new(opts);
    gw.apply(vec![route(
        json!({"id": "users", "prefix": "/api/v1/users", "auth": "anonymous",
        "upstream": {"service": "users"}}),
    )]);
    gw.refresh_instances().await;
    let watcher = gw
        .watch_registry(Duration::from_secs(5))
        .expect("registry configured");
    let g = run_gateway(gw).await;
    let c = client();
    let url = format!("http://{}/api/v1/users", g.addr);
    assert_eq!(get(&c, url.clone()).await.1["data"]["instance"], "a");
    // A changed route keeps the service's instances: no request falls in a gap.
    let mut changed = g.gateway.routes().into_iter().next().expect("one route");
    changed.timeouts.total_ms += 1;
    assert!(g.gateway.apply(vec![changed]).is_empty());
    assert_eq!(get(&c, url.clone()).await.1["data"]["instance"], "a");
    registry.register(reg(b.addr)).await.expect("b");
    registry.deregister(&ia.id).await.expect("deregister a");
    let t = Instant::now();
    while get(&c, url.clone()).await.1["data"]["instance"] != "b" {
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "registry change not followed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    watcher.abort();
}
