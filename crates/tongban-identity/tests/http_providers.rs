//! The HTTP face-verification and real-name adapters against stub services on loopback: what
//! they send, and how each failure of a service maps to the 30000 series.

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use tongban_core::ApiError;
use tongban_identity::face::{FaceProvider, FaceRequest, HttpFaceProvider};
use tongban_identity::realname::{HttpRealNameProvider, RealNameProvider, RealNameVerdict};

async fn stub(headers: HeaderMap, axum::Json(b): axum::Json<Value>) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer face-key") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    assert_eq!(b["name"], "张三");
    assert_eq!(b["id_number"], "11010519491231002X");
    match b["image"].as_str() {
        // Base64 of "live" and "fake".
        Some("bGl2ZQ==") => {
            axum::Json(json!({"code": 0, "data": {"passed": true}})).into_response()
        }
        Some("ZmFrZQ==") => {
            axum::Json(json!({"code": 0, "data": {"passed": false}})).into_response()
        }
        Some("ZXJy") => axum::Json(json!({"code": 4001, "msg": "liveness failed"})).into_response(),
        Some("YnJva2Vu") => (StatusCode::OK, "not json").into_response(),
        Some("c2xvdw==") => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            StatusCode::OK.into_response()
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn code(p: &HttpFaceProvider, image: &[u8]) -> u32 {
    let r = p
        .verify(&FaceRequest {
            name: "张三",
            id_number: "11010519491231002X",
            image,
        })
        .await;
    ApiError::from(r.expect_err("an error")).code.0
}

#[tokio::test]
async fn http_adapter_verdicts_and_failures() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/face", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(l, Router::new().route("/face", post(stub)))
            .await
            .expect("serve")
    });
    let p = HttpFaceProvider::new(&url, "face-key", Duration::from_millis(500)).expect("provider");
    let req = |image: &'static [u8]| FaceRequest {
        name: "张三",
        id_number: "11010519491231002X",
        image,
    };
    assert!(p.verify(&req(b"live")).await.expect("pass"));
    assert!(!p.verify(&req(b"fake")).await.expect("fail"));
    assert_eq!(
        code(&p, b"err").await,
        30012,
        "the service's own error code"
    );
    assert_eq!(code(&p, b"broken").await, 30011, "unreadable answer");
    assert_eq!(code(&p, b"other").await, 30013, "HTTP 500");
    assert_eq!(code(&p, b"slow").await, 30001, "timeout");
    let wrong_key =
        HttpFaceProvider::new(&url, "other-key", Duration::from_millis(500)).expect("provider");
    assert_eq!(code(&wrong_key, b"live").await, 30013);
    // Nothing listens on port 9 of loopback: the connection is refused (30000; 30002 is a
    // connect that does not complete in time).
    let closed = HttpFaceProvider::new("http://127.0.0.1:9/face", "k", Duration::from_millis(500))
        .expect("provider");
    assert_eq!(code(&closed, b"live").await, 30000);
}

async fn real_name_stub(
    headers: HeaderMap,
    axum::Json(b): axum::Json<Value>,
) -> axum::response::Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer rn-key") {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let result = match (b["name"].as_str(), b["id_number"].as_str()) {
        (Some("张三"), Some("11010519491231002X")) => "match",
        (Some(_), Some("11010519491231002X")) => "mismatch",
        (Some("坏"), _) => return axum::Json(json!({"code": 500})).into_response(),
        (Some("怪"), _) => "maybe",
        _ => "unknown",
    };
    axum::Json(json!({"code": 0, "data": {"result": result}})).into_response()
}

#[tokio::test]
async fn http_real_name_adapter_verdicts_and_failures() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/rn", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(l, Router::new().route("/rn", post(real_name_stub)))
            .await
            .expect("serve")
    });
    let p = HttpRealNameProvider::new(&url, "rn-key", Duration::from_secs(2)).expect("provider");
    let id = "11010519491231002X";
    assert_eq!(
        p.verify("张三", id).await.expect("match"),
        RealNameVerdict::Match
    );
    assert_eq!(
        p.verify("李四", id).await.expect("mismatch"),
        RealNameVerdict::Mismatch
    );
    assert_eq!(
        p.verify("王五", "110105194912310021")
            .await
            .expect("unknown"),
        RealNameVerdict::Failed
    );
    let code = |r: Result<RealNameVerdict, tongban_identity::IdentityError>| {
        ApiError::from(r.expect_err("error")).code.0
    };
    assert_eq!(code(p.verify("坏", "2").await), 30012);
    assert_eq!(code(p.verify("怪", "1").await), 30011);
    let wrong = HttpRealNameProvider::new(&url, "nope", Duration::from_secs(2)).expect("provider");
    assert_eq!(code(wrong.verify("张三", id).await), 30013);
}
