//! The assembled platform: a route stored through the admin API is served by the gateway on
//! the public listener, its auth level enforced against identity's sessions, with metrics on
//! the admin listener behind the admin token.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use tongban::app::{self, AppState};
use tongban::platform::Platform;
use tongban_core::config::Config;
use tongban_core::routes::Routes;
use tongban_gateway::sign::canonical::{self, Signed};
use tongban_identity::ExternalIdentity;
use tower::ServiceExt;

const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

async fn call(app: &app::App, req: Request<Body>) -> (u16, String) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// An upstream microservice answering the envelope with what it was asked.
async fn upstream() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let app = Router::new().fallback(|req: Request<Body>| async move {
        axum::Json(serde_json::json!({
            "code": 0,
            "data": {"path": req.uri().path(), "request_id": req.headers().get("x-request-id").and_then(|v| v.to_str().ok())}
        }))
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    (
        addr,
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        }),
    )
}

/// The platform on a fresh data directory: it, and the public and admin applications.
async fn start() -> (Platform, app::App, app::App) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = common::temp_dir(&format!("platform-{}", N.fetch_add(1, Ordering::SeqCst)));
    let mut config = Config {
        data_dir: dir,
        ..Config::default()
    };
    config.admin.token_sm3 =
        tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(ADMIN_TOKEN.as_bytes()));
    let state = AppState::open(config).await.expect("state");
    let platform = Platform::start(&state).await.expect("platform");
    let public = app::public(state.clone(), Routes::new(), Some(platform.public_parts()));
    let admin = app::admin(state.clone(), platform.admin_routes(&state, None));
    (platform, public, admin)
}

/// A person the test login provider vouches for (real-name checked or not).
fn citizen(subject: &str, real_name: bool) -> ExternalIdentity {
    ExternalIdentity {
        provider: "test".into(),
        subject: subject.into(),
        real_name,
        person: None,
        acr: None,
        amr: Vec::new(),
    }
}

fn admin_put(id: &str, spec: &serde_json::Value) -> Request<Body> {
    Request::put(format!("/api/v1/routes/{id}"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::from(spec.to_string()))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_routes_win_over_a_gateway_route_that_covers_them() {
    let (_platform, public, admin) = start().await;
    let (up, _server) = upstream().await;
    let all = serde_json::json!({
        "id": "everything", "prefix": "/api/v1", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    let (s, b) = call(&admin, admin_put("everything", &all)).await;
    assert_eq!(s, 200, "{b}");
    let get = |path: &str| Request::get(path).body(Body::empty()).expect("request");
    // The upstream echoes the path it was asked for; local routes answer their own data. Paths
    // axum's router would not give the local routes either (deeper, a trailing slash) go on.
    for path in [
        "/api/v1/notices",
        "/api/v1/consents/a/b",
        "/api/v1/purposes/1",
        "/api/v1/purposes/",
    ] {
        let (s, b) = call(&public, get(path)).await;
        assert_eq!(
            (s, json(&b)["data"]["path"].as_str()),
            (200, Some(path)),
            "{path}: {b}"
        );
    }
    for path in ["/api/v1/purposes", "/healthz", "/api/v1/envelope-keys", "/"] {
        let (s, b) = call(&public, get(path)).await;
        assert_eq!(s, 200, "{path}: {b}");
        assert!(!b.contains("\"path\""), "{path} reached the gateway: {b}");
    }
    // A local path with a parameter, asked with a method it does not serve: the local route's
    // 20002, not the gateway.
    let (s, b) = call(&public, get("/api/v1/consents/marketing")).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (405, Some(20002)), "{b}");
    // Without the gateway route, an unknown path is the gateway's 20404.
    let del = Request::delete("/api/v1/routes/everything")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .body(Body::empty())
        .expect("request");
    assert_eq!(call(&admin, del).await.0, 200);
    let (s, b) = call(&public, get("/api/v1/notices")).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (404, Some(20404)), "{b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_from_the_admin_api_are_served_with_auth_levels_enforced() {
    let (platform, public, admin) = start().await;
    let (up, _server) = upstream().await;

    // The admin API needs the token.
    let put = |id: &str, spec: serde_json::Value, token: Option<&str>| {
        let mut b =
            Request::put(format!("/api/v1/routes/{id}")).header("content-type", "application/json");
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::from(spec.to_string())).expect("request")
    };
    let materials = serde_json::json!({
        "id": "materials", "prefix": "/api/v1/materials", "auth": "real_name",
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    let (s, b) = call(&admin, put("materials", materials.clone(), None)).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (401, Some(10006)), "{b}");
    let (s, b) = call(&admin, put("materials", materials.clone(), Some("wrong"))).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (403, Some(10008)), "{b}");
    let (s, b) = call(&admin, put("materials", materials, Some(ADMIN_TOKEN))).await;
    assert_eq!(s, 200, "{b}");
    let notices = serde_json::json!({
        "id": "notices", "prefix": "/api/v1/notices", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    assert_eq!(
        call(&admin, put("notices", notices, Some(ADMIN_TOKEN)))
            .await
            .0,
        200
    );
    // URL rules and a declared auth level are checked when a route is stored.
    let bad = serde_json::json!({
        "id": "bad", "prefix": "/Get_User", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    let (s, b) = call(&admin, put("bad", bad, Some(ADMIN_TOKEN))).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (400, Some(20000)), "{b}");

    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut b = Request::get(path);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::empty()).expect("request")
    };
    // Anonymous route: proxied, with the request id passed on.
    let (s, b) = call(
        &public,
        get(
            "/api/v1/notices/1",
            &[("x-request-id", "platform-test-0001")],
        ),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(json(&b)["data"]["path"], "/api/v1/notices/1");
    assert_eq!(json(&b)["data"]["request_id"], "platform-test-0001");
    // Identity's routes share the public route table: a wrong method answers the envelope.
    let wrong = Request::put("/api/v1/login-requests")
        .body(Body::empty())
        .expect("request");
    let (s, b) = call(&public, wrong).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (405, Some(20002)), "{b}");
    // Real-name route: no token → 10006; a session from identity → through; another device → 10012.
    let (s, b) = call(&public, get("/api/v1/materials", &[])).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (401, Some(10006)), "{b}");
    let issued = platform
        .identity
        .login_external(&citizen("citizen-1", true), Some("device-1"))
        .await
        .expect("login");
    let bearer = format!("Bearer {}", issued.access_token);
    let (s, b) = call(
        &public,
        get(
            "/api/v1/materials",
            &[("authorization", &bearer), ("x-device-id", "device-1")],
        ),
    )
    .await;
    assert_eq!(
        (s, json(&b)["data"]["path"].as_str()),
        (200, Some("/api/v1/materials")),
        "{b}"
    );
    let (s, b) = call(
        &public,
        get(
            "/api/v1/materials",
            &[("authorization", &bearer), ("x-device-id", "device-2")],
        ),
    )
    .await;
    assert_eq!(json(&b)["code"], 10012, "{s} {b}");
    // Identity's own routes are served locally, before the gateway.
    let (s, b) = call(
        &public,
        get(
            "/api/v1/sessions/current",
            &[("authorization", &bearer), ("x-device-id", "device-1")],
        ),
    )
    .await;
    assert_eq!((s, json(&b)["code"].as_u64()), (200, Some(0)), "{b}");
    // Nothing matches: the gateway answers 20404.
    let (s, b) = call(&public, get("/api/v1/nothing-here", &[])).await;
    assert_eq!((s, json(&b)["code"].as_u64()), (404, Some(20404)), "{b}");

    // A signed route: the session's own signing key, issued at login, signs the request; the
    // answer comes back signed; a tampered query, a replayed nonce, or another session's key
    // id are refused before the upstream.
    let certificates = serde_json::json!({
        "id": "certificates", "prefix": "/api/v1/certificates", "auth": "real_name", "signed": true,
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    assert_eq!(
        call(&admin, put("certificates", certificates, Some(ADMIN_TOKEN)))
            .await
            .0,
        200
    );
    let key_id = issued
        .signing_key_id
        .clone()
        .expect("signing key id issued at login");
    let key =
        tongban_crypto::encoding::hex_decode(issued.signing_key.as_deref().expect("key"), "key")
            .expect("hex");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let signed_get = |path_q: &str, sign_q: Option<&str>, nonce: &str, kid: &str| {
        let (path, q) = path_q
            .split_once('?')
            .map_or((path_q, None), |(p, q)| (p, Some(q)));
        let sig_headers = Signed {
            key_id: kid,
            timestamp: &now,
            nonce,
            signature: "",
        };
        let sig = canonical::sign(
            &key,
            &canonical::request_string("GET", path, sign_q.or(q), b"", &sig_headers),
        );
        Request::get(path_q)
            .header("authorization", &bearer)
            .header("x-device-id", "device-1")
            .header("x-tb-key-id", kid)
            .header("x-tb-timestamp", &now)
            .header("x-tb-nonce", nonce)
            .header("x-tb-signature", sig)
            .body(Body::empty())
            .expect("request")
    };
    let resp = public
        .clone()
        .oneshot(signed_get(
            "/api/v1/certificates?b=2&a=1",
            None,
            "nonce-platform-000001",
            &key_id,
        ))
        .await
        .expect("infallible");
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers().contains_key("x-tb-signature"),
        "the answer is signed"
    );
    let (s, b) = call(
        &public,
        signed_get(
            "/api/v1/certificates?b=2&a=1",
            None,
            "nonce-platform-000001",
            &key_id,
        ),
    )
    .await;
    assert_eq!(
        (s, json(&b)["data"]["reason"].as_str()),
        (403, Some("nonce_replayed")),
        "{b}"
    );
    let (s, b) = call(
        &public,
        signed_get(
            "/api/v1/certificates?a=9",
            Some("a=1"),
            "nonce-platform-000002",
            &key_id,
        ),
    )
    .await;
    assert_eq!((s, json(&b)["code"].as_u64()), (403, Some(20001)), "{b}");
    let other = format!(
        "someone-elses-session.{}",
        key_id.rsplit('.').next().expect("version")
    );
    let (s, b) = call(
        &public,
        signed_get(
            "/api/v1/certificates",
            None,
            "nonce-platform-000003",
            &other,
        ),
    )
    .await;
    assert_eq!((s, json(&b)["code"].as_u64()), (403, Some(20001)), "{b}");

    // Metrics on the admin listener, behind the token.
    let (s, _) = call(&admin, get("/metrics", &[])).await;
    assert_eq!(s, 401);
    let (s, text) = call(
        &admin,
        get(
            "/metrics",
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(text.contains("materials"), "{text}");
    // Health stays open for probes.
    assert_eq!(call(&admin, get("/healthz", &[])).await.0, 200);
}

/// Two instances of a cluster (one PostgreSQL database, one NATS), each keeping the session
/// rows it read for a minute: a sign-out on one is refused by the other at once, told by the
/// cluster's session notices, not when its cache time runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_out_on_one_instance_is_refused_by_the_other_at_once() {
    let (pg, schema) = common::pg_schema_url("notices").await;
    let mut config = Config {
        data_dir: common::temp_dir("platform-notices"),
        ..Config::default()
    };
    config.storage.url = pg;
    config.cluster.nats_url = std::env::var("TONGBAN_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    config.cluster.nats_bucket_prefix = format!("t_{schema}");
    config
        .identity
        .insert("session_cache_ms".into(), toml::Value::Integer(60_000));
    // One data directory: the instances share the keyring's components, as a cluster's do.
    let state_a = AppState::open(config.clone()).await.expect("state a");
    let a = Platform::start(&state_a).await.expect("platform a");
    let state_b = AppState::open(config).await.expect("state b");
    let b = Platform::start(&state_b).await.expect("platform b");
    let public_a = app::public(state_a.clone(), Routes::new(), Some(a.public_parts()));
    let public_b = app::public(state_b.clone(), Routes::new(), Some(b.public_parts()));
    let issued = a
        .identity
        .login_external(&citizen("citizen-notices", false), Some("device-1"))
        .await
        .expect("login");
    let bearer = format!("Bearer {}", issued.access_token);
    let current = |method: &str| {
        Request::builder()
            .method(method)
            .uri("/api/v1/sessions/current")
            .header("authorization", &bearer)
            .header("x-device-id", "device-1")
            .body(Body::empty())
            .expect("request")
    };
    for _ in 0..2 {
        let (s, body) = call(&public_b, current("GET")).await;
        assert_eq!((s, json(&body)["code"].as_u64()), (200, Some(0)), "{body}");
    }
    assert!(
        matches!(
            b.identity
                .resolve_cached(&issued.access_token, Some("device-1")),
            Some(Ok(_))
        ),
        "b answers from its cache"
    );
    let (s, body) = call(&public_a, current("DELETE")).await;
    assert_eq!((s, json(&body)["code"].as_u64()), (200, Some(0)), "{body}");
    // Within seconds, where the cache alone would keep the session for a minute.
    let refused = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            let (_, body) = call(&public_b, current("GET")).await;
            if json(&body)["code"] == 10017 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(refused.is_ok(), "b still serves a signed-out session");
}

/// Every route of both listeners, whatever the method and however its parameters are broken,
/// answers the envelope: a parameter that is not UTF-8 or holds a NUL answers 20000, never the
/// framework's text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_of_both_listeners_answers_the_envelope_to_bad_parameters() {
    let (platform, public, admin) = start().await;
    let dir = common::temp_dir("platform-walk");
    let state = AppState::open(Config {
        data_dir: dir,
        ..Config::default()
    })
    .await
    .expect("state");
    let mut routes: Vec<(&app::App, &'static str)> = Vec::new();
    for p in platform.public_parts().routes.paths() {
        routes.push((&public, p));
    }
    for p in platform.admin_routes(&state, None).paths() {
        routes.push((&admin, p));
    }
    let with_params: Vec<_> = routes.iter().filter(|(_, p)| p.contains('{')).collect();
    assert!(with_params.len() >= 6, "{routes:?}");
    for (app, template) in &routes {
        for (param, bad) in [
            ("%ff", true),
            ("%c3%28", true),
            ("x%00y", true),
            ("abc", false),
        ] {
            let path = fill(template, param);
            // A path without parameters is walked once.
            if !template.contains('{') && bad {
                continue;
            }
            for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
                let req = Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                    .header("content-type", "application/json")
                    .body(Body::from("{}"))
                    .expect("request");
                let (s, b) = call(app, req).await;
                // Prometheus reads its own text format.
                if path == "/metrics" && method == "GET" {
                    assert_eq!(s, 200);
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(&b)
                    .unwrap_or_else(|e| panic!("{method} {path}: not the envelope ({e}): {b}"));
                let code = v["code"]
                    .as_u64()
                    .unwrap_or_else(|| panic!("{method} {path}: no code: {b}"));
                if bad && template.contains('{') {
                    assert_eq!((s, code), (400, 20000), "{method} {path}: {b}");
                }
            }
        }
    }
}

/// `template` with each `{name}` replaced by `param`.
fn fill(template: &str, param: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
        out.push_str(param);
        rest = &rest[close..];
    }
    out.push_str(rest);
    out
}

/// An invalid route answers 20000 naming the field and the reason, never the value sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_route_is_refused_naming_its_field() {
    let (_platform, _public, admin) = start().await;
    for (spec, field, reason) in [
        (
            serde_json::json!({"id": "items", "prefix": "/api/v1/items", "auth": "anonymous",
                "upstream": {"strip_prefix": "token-abc123", "instances": []}}),
            "upstream.strip_prefix",
            "type",
        ),
        (
            serde_json::json!({"id": "items", "prefix": "/api/v1/items", "auth": "anonymous",
                "upstream": {"instances": [{"adress": "127.0.0.1:1"}]}}),
            "upstream.instances[0].adress",
            "unknown",
        ),
        (
            serde_json::json!({"id": "items", "auth": "anonymous", "upstream": {}}),
            "prefix",
            "missing",
        ),
    ] {
        let (s, b) = call(&admin, admin_put("items", &spec)).await;
        let v = json(&b);
        assert_eq!((s, v["code"].as_u64()), (400, Some(20000)), "{b}");
        assert_eq!(v["data"]["field"], field, "{b}");
        assert_eq!(v["data"]["reason"], reason, "{b}");
        assert!(!b.contains("token-abc123"), "{b}");
    }
}
