//! The digital envelope over HTTP: published keys, an enveloped request opened by the extractor,
//! the answer sealed with the request's key, and every malformed or forged envelope → 20004.

use axum::body::Body;
use axum::routing::post;
use http::Request;
use http_body_util::BodyExt;
use tongban::app::{self, AppState};
use tongban_core::config::{Config, LogConfig};
use tongban_core::routes::Routes;
use tongban_crypto::encoding::hex_decode;
use tongban_crypto::envelope::{EnvelopeSession, RequestEnvelope, seal_request};
use tongban_crypto::sm2::{Sm2CipherFormat, Sm2PublicKey};
use tongban_keys::http::{Enveloped, Sealed};
use tongban_log::{Capture, subscriber};
use tower::ServiceExt;

#[derive(Debug, serde::Deserialize)]
struct Query {
    id_number: String,
}

/// A sensitive lookup: the request and the answer travel sealed.
async fn lookup(Enveloped { value, session }: Enveloped<Query>) -> Sealed<serde_json::Value> {
    Sealed(
        session,
        serde_json::json!({"id_number": value.id_number, "status": "已办结"}),
    )
}

async fn app() -> app::App {
    let dir = std::env::temp_dir().join(format!("tongban-envelope-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Config {
        data_dir: dir,
        ..Config::default()
    };
    let state = AppState::open(config).await.expect("state");
    app::public(
        state,
        Routes::new().route("/api/v1/progress-queries", post(lookup)),
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

fn post_json(path: &str, body: String) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("req")
}

async fn server_key(app: &app::App) -> (String, Sm2PublicKey) {
    let (status, v) = call(
        app,
        Request::get("/api/v1/envelope-keys")
            .body(Body::empty())
            .expect("req"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(v["data"]["sm2_cipher_order"], "C1C3C2");
    let key = v["data"]["keys"]
        .as_array()
        .and_then(|a| a.iter().find(|k| k["current"] == true))
        .expect("current key");
    let kid = key["kid"].as_str().expect("kid").to_owned();
    let raw = hex_decode(key["public_key"].as_str().expect("pk"), "pk").expect("hex");
    (kid, Sm2PublicKey::from_bytes(&raw).expect("point"))
}

fn seal(
    kid: &str,
    pk: &Sm2PublicKey,
    body: &serde_json::Value,
) -> (RequestEnvelope, EnvelopeSession) {
    seal_request(
        pk,
        kid,
        body.to_string().as_bytes(),
        Sm2CipherFormat::default(),
    )
    .expect("seal")
}

#[test]
fn enveloped_request_and_sealed_answer_round_trip() {
    let capture = Capture::default();
    let sub = subscriber(&LogConfig::default(), capture.clone()).expect("subscriber");
    tracing::subscriber::with_default(sub, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt")
            .block_on(async {
                let app = app().await;
                let (kid, pk) = server_key(&app).await;
                let (env, session) = seal(
                    &kid,
                    &pk,
                    &serde_json::json!({"id_number": "11010519491231002X"}),
                );
                let (status, v) = call(
                    &app,
                    post_json(
                        "/api/v1/progress-queries",
                        serde_json::to_string(&env).expect("json"),
                    ),
                )
                .await;
                assert_eq!((status, v["code"].as_u64()), (200, Some(0)), "{v}");
                assert!(
                    v["data"]["iv"].is_string() && v["data"]["data"].is_string(),
                    "{v}"
                );
                assert!(
                    !v.to_string().contains("11010519491231002X"),
                    "the answer is sealed"
                );
                let plain = session
                    .open_response_json(v["data"].to_string().as_bytes())
                    .expect("open answer");
                let answer: serde_json::Value = serde_json::from_slice(&plain).expect("json");
                assert_eq!(answer["id_number"], "11010519491231002X");
                assert_eq!(answer["status"], "已办结");

                // Forged, malformed and misaddressed envelopes: 20004, the handler never runs.
                let mut tampered = env.clone();
                tampered.data = {
                    let mut d = tampered.data.into_bytes();
                    d[4] = if d[4] == b'A' { b'B' } else { b'A' };
                    String::from_utf8(d).expect("ascii")
                };
                let mut wrong_kid = env.clone();
                wrong_kid.kid = "env-000000000000".to_owned();
                let mut bad_key = env.clone();
                bad_key.key = "AAAA".to_owned();
                let mut bad_iv = env.clone();
                bad_iv.iv = "!!".to_owned();
                let bodies = [
                    serde_json::to_string(&tampered).expect("json"),
                    serde_json::to_string(&wrong_kid).expect("json"),
                    serde_json::to_string(&bad_key).expect("json"),
                    serde_json::to_string(&bad_iv).expect("json"),
                    "{\"kid\":1}".to_owned(),
                    "not json".to_owned(),
                    String::new(),
                ];
                for b in bodies {
                    let (status, v) =
                        call(&app, post_json("/api/v1/progress-queries", b.clone())).await;
                    assert_eq!((status, v["code"].as_u64()), (400, Some(20004)), "{b}: {v}");
                    assert_eq!(v["msg"], "参数解密失败");
                }
                // A well-sealed envelope whose content is not the route's shape: 20000.
                let (env, _) = seal(&kid, &pk, &serde_json::json!({"other": 1}));
                let (_, v) = call(
                    &app,
                    post_json(
                        "/api/v1/progress-queries",
                        serde_json::to_string(&env).expect("json"),
                    ),
                )
                .await;
                assert_eq!(v["code"], 20000);
            })
    });
    let logs = capture.text();
    assert!(logs.contains("Envelope refused."), "{logs}");
    assert!(
        !logs.contains("11010519491231002"),
        "no payload in logs: {logs}"
    );
}
