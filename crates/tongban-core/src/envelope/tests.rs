use super::*;
use http_body_util::BodyExt;

async fn body_json(resp: Response) -> serde_json::Value {
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("json body")
}

#[tokio::test]
async fn ok_wraps_data_with_code_zero() {
    let resp = Ok(serde_json::json!({"n": 1})).into_response();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    assert_eq!(
        body_json(resp).await,
        serde_json::json!({"code": 0, "data": {"n": 1}})
    );
}

#[tokio::test]
async fn error_carries_code_default_message_and_status() {
    let resp = ApiError::new(Code::NOT_FOUND).into_response();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        body_json(resp).await,
        serde_json::json!({"code": 20404, "msg": "404"})
    );

    let resp = ApiError::new(Code::FACE_REQUIRED)
        .with_data(serde_json::json!({"required": "face_verified", "max_age": 600}))
        .into_response();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let v = body_json(resp).await;
    assert_eq!(v["code"], 10003);
    assert_eq!(v["msg"], "已经登入，未验证人脸");
    assert_eq!(v["data"]["required"], "face_verified");
}

#[tokio::test]
async fn message_override_replaces_default() {
    let resp = ApiError::new(Code::BAD_PARAMETER)
        .with_msg("身份证号格式不正确")
        .into_response();
    assert_eq!(body_json(resp).await["msg"], "身份证号格式不正确");
}

#[tokio::test]
async fn always_200_flattens_envelope_statuses_only() {
    let resp = always_200(ApiError::new(Code::THIRD_PARTY_TIMEOUT).into_response());
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(body_json(resp).await["code"], 30001);

    // A non-envelope response (for example a static file's 304) keeps its status.
    let plain = (StatusCode::NOT_MODIFIED, "").into_response();
    assert_eq!(always_200(plain).status(), StatusCode::NOT_MODIFIED);
}

#[test]
fn envelope_omits_absent_fields() {
    let env: Envelope<()> = Envelope {
        code: 0,
        msg: None,
        data: None,
    };
    assert_eq!(
        serde_json::to_string(&env).expect("serialise"),
        r#"{"code":0}"#
    );
}
