//! The gateway's own answers, in one place: every refusal is the envelope with a registered
//! code and the status DESIGN.md gives it.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::{ApiError, Code};

/// A rate limit refused the request: 10019 with HTTP 429 and `Retry-After`.
pub fn limited(retry_after: Duration) -> Response {
    let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
    let mut resp = with_status(
        ApiError::new(Code::BUSY_RETRY_LATER)
            .with_msg("请求过于频繁，请稍后重试")
            .into_response(),
        StatusCode::TOO_MANY_REQUESTS,
    );
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

/// The route's concurrency cap is reached: 10019 with HTTP 429.
pub fn overloaded() -> Response {
    with_status(
        ApiError::new(Code::BUSY_RETRY_LATER)
            .with_msg("当前请求过多，请稍后重试")
            .into_response(),
        StatusCode::TOO_MANY_REQUESTS,
    )
}

/// The upstream failed or could not be reached: a 30000-series code (or 10019 when there is
/// no instance at all), with the request id in `data` so support can find the log lines.
pub fn upstream(code: Code, request_id: Option<&str>) -> Response {
    let mut e = ApiError::new(code);
    if let Some(id) = request_id {
        e = e.with_data(serde_json::json!({ "request_id": id }));
    }
    e.into_response()
}

fn with_status(mut resp: Response, status: StatusCode) -> Response {
    *resp.status_mut() = status;
    if let Some(m) = resp.extensions_mut().get_mut::<EnvelopeMeta>() {
        m.status = status;
    }
    resp
}
