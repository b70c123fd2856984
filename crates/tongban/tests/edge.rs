//! The HTTP stack in process (no socket needed): bad input answers the envelope, and nothing a
//! request carries reaches the log unmasked, however a handler logs it.

use axum::body::Body;
use axum::routing::post;
use http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tongban::app::{self, AppState};
use tongban_core::config::{Config, LogConfig};
use tongban_core::envelope;
use tongban_core::extract::Json;
use tongban_core::routes::Routes;
use tongban_log::{Capture, subscriber};
use tower::ServiceExt;

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Application {
    name: String,
    id_card: String,
    phone: String,
    count: u32,
}

/// A handler written carelessly on purpose: it logs the whole body and its fields.
async fn submit(Json(a): Json<Application>) -> envelope::Ok<u32> {
    tracing::info!("Received {a:?}");
    tracing::info!(name = %a.name, id_card = %a.id_card, phone = %a.phone, "Fields.");
    tracing::info!(
        "Applicant {} with {} called from {}.",
        a.name,
        a.id_card,
        a.phone
    );
    envelope::Ok(a.count)
}

async fn boom() -> envelope::Ok<()> {
    panic!("handler bug with 11010519491231002X")
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

async fn app(max_body: usize) -> app::App {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("tongban-edge-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = Config {
        data_dir: dir,
        ..Config::default()
    };
    config.server.max_body_bytes = max_body;
    let state = AppState::open(config).await.expect("state");
    app::public(
        state,
        Routes::new()
            .route("/api/v1/applications", post(submit))
            .route("/api/v1/bugs", post(boom)),
        None,
    )
}

async fn call(app: &app::App, req: Request<Body>) -> (u16, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.expect("infallible");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&body).expect("envelope JSON"),
    )
}

fn post_json(path: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request")
}

#[test]
fn bad_bodies_answer_20000() {
    rt().block_on(async {
        let app = app(256).await;
        let good =
            r#"{"name":"张三","id_card":"11010519491231002X","phone":"13812341234","count":2}"#;
        assert_eq!(
            call(&app, post_json("/api/v1/applications", good)).await,
            (200, serde_json::json!({"code":0,"data":2}))
        );
        for (what, body) in [
            ("malformed", "{\"name\":".to_owned()),
            ("wrong type", good.replace("2}", "\"two\"}")),
            ("missing field", r#"{"name":"张三"}"#.to_owned()),
            ("oversized", format!("{{\"name\":\"{}\"}}", "x".repeat(300))),
        ] {
            let (status, v) = call(&app, post_json("/api/v1/applications", body)).await;
            assert_eq!(
                (status, v["code"].as_u64()),
                (400, Some(20000)),
                "{what}: {v}"
            );
            assert!(v["msg"].is_string(), "{what}");
        }
        let no_type = Request::post("/api/v1/applications")
            .body(Body::from(good))
            .expect("req");
        assert_eq!(call(&app, no_type).await.1["code"], 20000);
        let (status, v) = call(
            &app,
            Request::get("/api/v1/applications")
                .body(Body::empty())
                .expect("req"),
        )
        .await;
        assert_eq!((status, v["code"].as_u64()), (405, Some(20002)));
    });
}

#[test]
fn a_panicking_handler_answers_10000_and_logs_no_payload() {
    let capture = Capture::default();
    let sub = subscriber(&LogConfig::default(), capture.clone()).expect("subscriber");
    tracing::subscriber::with_default(sub, || {
        rt().block_on(async {
            let app = app(1024).await;
            let (status, v) = call(&app, post_json("/api/v1/bugs", "{}")).await;
            assert_eq!((status, v["code"].as_u64()), (500, Some(10000)));
        })
    });
    let logs = capture.text();
    assert!(logs.contains("A handler panicked"), "{logs}");
    assert!(!logs.contains("11010519491231002X"), "{logs}");
}

fn id_number() -> impl Strategy<Value = String> {
    (
        110000u32..660000,
        1930u32..2020,
        1u32..13,
        1u32..29,
        0u32..1000,
    )
        .prop_map(|(r, y, m, d, s)| {
            tongban_core::idcard::with_check_char(&format!("{r:06}{y:04}{m:02}{d:02}{s:03}"))
                .expect("17 digits")
        })
}

fn phone() -> impl Strategy<Value = String> {
    (3u8..10, 0u64..1_000_000_000).prop_map(|(s, r)| format!("1{s}{r:09}"))
}

fn name() -> impl Strategy<Value = String> {
    let surnames = prop::sample::select(vec!['张', '王', '李', '赵', '欧', '陈', '刘', '黄']);
    (surnames, prop::collection::vec(0x4E00u32..0x9FA5, 1..3)).prop_map(|(s, rest)| {
        std::iter::once(s)
            .chain(rest.into_iter().filter_map(char::from_u32))
            .collect()
    })
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random valid ID numbers, phones and names in the query string, headers and JSON body
    /// never appear in the captured log output.
    #[test]
    fn pii_in_query_headers_and_body_never_reaches_the_log(id in id_number(), ph in phone(), nm in name()) {
        let capture = Capture::default();
        let sub = subscriber(&LogConfig::default(), capture.clone()).expect("subscriber");
        tracing::subscriber::with_default(sub, || {
            rt().block_on(async {
                let app = app(4096).await;
                let body = serde_json::json!({"name": nm, "id_card": id, "phone": ph, "count": 1}).to_string();
                let req = Request::post(format!(
                    "/api/v1/applications?sfzh={id}&tel={ph}&xm={}&free={id}-{ph}&who={}",
                    pct(&nm), pct(&nm)
                ))
                .header("content-type", "application/json")
                .header("user-agent", format!("quickapp {nm} {id} {ph}"))
                .header("x-citizen-name", pct(&nm))
                .header("x-id-card", &id)
                .header("authorization", format!("Bearer {id}"))
                .body(Body::from(body))
                .expect("request");
                let (status, _) = call(&app, req).await;
                assert_eq!(status, 200);
                let unknown = Request::get(format!("/api/v1/citizens/{id}?mobile={ph}")).body(Body::empty()).expect("req");
                assert_eq!(call(&app, unknown).await.0, 404);
            })
        });
        let logs = capture.text();
        prop_assert!(logs.contains("Request completed."), "the access log was captured");
        prop_assert!(logs.contains("Received"), "the handler's lines were captured");
        prop_assert!(!logs.contains(&id), "ID number leaked: {logs}");
        prop_assert!(!logs.contains(&ph), "phone leaked: {logs}");
        prop_assert!(!logs.contains(&nm), "name leaked: {logs}");
    }
}

#[test]
fn every_line_a_request_causes_carries_its_id_and_no_other_line_does() {
    let capture = Capture::default();
    let sub = subscriber(&LogConfig::default(), capture.clone()).expect("subscriber");
    tracing::subscriber::with_default(sub, || {
        rt().block_on(async {
            let app = app(4096).await;
            tracing::info!("Before any request.");
            let body =
                r#"{"name":"张三","id_card":"11010519491231002X","phone":"13812345678","count":1}"#;
            let mut req = post_json("/api/v1/applications", body);
            req.headers_mut()
                .insert("x-request-id", "edge-req-0001".parse().expect("header"));
            let (status, _) = call(&app, req).await;
            assert_eq!(status, 200);
            tracing::info!("After the request.");
        })
    });
    let logs = capture.text();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let of = |msg: &str| {
        lines
            .iter()
            .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with(msg)))
            .unwrap_or_else(|| panic!("no line {msg:?} in {logs}"))
    };
    // The handler's own lines and the access line.
    for msg in ["Received", "Fields.", "Applicant", "Request completed."] {
        assert_eq!(of(msg)["request_id"], "edge-req-0001", "{msg}: {logs}");
    }
    for msg in ["Before any request.", "After the request."] {
        assert!(of(msg).get("request_id").is_none(), "{msg}: {logs}");
    }
}

#[test]
fn text_lines_a_request_causes_lead_with_its_id() {
    let capture = Capture::default();
    let cfg = LogConfig {
        format: tongban_core::config::LogFormat::Text,
        ..LogConfig::default()
    };
    let sub = subscriber(&cfg, capture.clone()).expect("subscriber");
    tracing::subscriber::with_default(sub, || {
        rt().block_on(async {
            let app = app(4096).await;
            let body =
                r#"{"name":"张三","id_card":"11010519491231002X","phone":"13812345678","count":1}"#;
            let mut req = post_json("/api/v1/applications", body);
            req.headers_mut()
                .insert("x-request-id", "edge-req-0002".parse().expect("header"));
            assert_eq!(call(&app, req).await.0, 200);
            tracing::info!("After the request.");
        })
    });
    let logs = capture.text();
    let line = |msg: &str| {
        logs.lines()
            .find(|l| l.contains(msg))
            .unwrap_or_else(|| panic!("no line {msg:?} in {logs}"))
    };
    for msg in ["Fields.", "Request completed."] {
        assert!(line(msg).starts_with("request_id=edge-req-0002 "), "{logs}");
    }
    assert!(
        !line("After the request.").contains("request_id="),
        "{logs}"
    );
    assert!(!logs.contains("11010519491231002X"), "{logs}");
}
