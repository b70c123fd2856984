//! A request body read whole within the route's limit, by whichever layer needs it first (the
//! signature check, the concurrency cap, the proxy): a declared length past the limit is
//! refused at once, before any of the body is read, and a body that grows past it as soon as
//! it does. The reader replaces the body with the bytes it read, so a later reader gets them
//! without waiting.

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::HeaderMap;
use http::header::CONTENT_LENGTH;
use http_body_util::{BodyExt, Limited};
use tongban_core::{ApiError, Code};

/// The whole body, or the answer refusing it (20000, HTTP 413 when too large).
pub(crate) async fn read(headers: &HeaderMap, body: Body, max: usize) -> Result<Bytes, Response> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = u64::try_from(max).unwrap_or(u64::MAX);
    if declared.is_some_and(|n| n > limit) || body.size_hint().lower() > limit {
        return Err(too_large());
    }
    match Limited::new(body, max).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(ApiError::new(Code::BAD_PARAMETER)
            .with_msg("请求体无法读取（中断或超时）")
            .into_response()),
    }
}

fn too_large() -> Response {
    let mut resp = ApiError::new(Code::BAD_PARAMETER)
        .with_msg("请求体过大")
        .into_response();
    *resp.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(len: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, len.parse().expect("value"));
        h
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let got = read(&head("5"), Body::from("hello"), 5)
            .await
            .expect("read");
        assert_eq!(got, "hello");
    }

    #[tokio::test]
    async fn a_declared_length_past_the_limit_is_refused_before_reading() {
        // A body that never ends: only the declared length can refuse it.
        let (_tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        let endless = Body::from_stream(tokio_stream_like(rx));
        let resp = read(&head("9999999999999999999"), endless, 1024)
            .await
            .expect_err("refused");
        assert_eq!(resp.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[tokio::test]
    async fn a_body_that_grows_past_the_limit_is_refused() {
        let resp = read(&HeaderMap::new(), Body::from("x".repeat(11)), 10)
            .await
            .expect_err("refused");
        assert_eq!(resp.status(), http::StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A stream of what `rx` receives.
    fn tokio_stream_like(
        mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
        futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
