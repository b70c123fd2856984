//! The access log: one line per request, inside a span that carries the request id so every
//! line the request causes can be found by it. Paths, queries and headers are masked here, and
//! the masking writer masks the whole line again on its way out.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::mask;
use tracing::Instrument;

use crate::request_id::RequestId;

pub(crate) async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .extensions()
        .get::<RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let path = mask::mask_path(req.uri().path());
    let query = req.uri().query().map(mask::mask_query).unwrap_or_default();
    let user_agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(mask::mask_untrusted)
        .unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %id);
    let resp = next.run(req).instrument(span.clone()).await;
    let code = resp
        .extensions()
        .get::<EnvelopeMeta>()
        .map(|m| i64::from(m.code.0))
        .unwrap_or(-1);
    let _g = span.enter();
    tracing::info!(
        %method,
        path,
        query,
        status = resp.status().as_u16(),
        code,
        // Whole microseconds: a float's long fraction could read as a card number to masking.
        latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        client_ip = peer,
        user_agent,
        "Request completed."
    );
    resp
}
