//! The request's id and its access log, as one layer: every request gets an id before anything
//! can log, runs with that id as its logging context (so every line it causes carries it and
//! can be found by it), and ends with one line. Paths, queries and headers are masked here; the
//! log formatter masks every field again as it writes the line.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::HeaderValue;
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::mask;
use tongban_core::net::IpText;
use tower::{Layer, Service};

use crate::logging::context;
use crate::request_id::{self, RequestId};

/// Assigns the request id and writes the access line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AccessLogLayer;

#[derive(Clone, Debug)]
pub(crate) struct AccessLog<S> {
    inner: S,
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let started = Instant::now();
        let id = request_id::of(&req);
        let header = HeaderValue::from_str(&id).ok();
        if let Some(v) = &header {
            req.headers_mut().insert(request_id::HEADER, v.clone());
        }
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| IpText::new(c.0.ip()));
        let method = req.method().clone();
        let path = mask::mask_path(req.uri().path());
        let query = req.uri().query().map(mask::mask_query).unwrap_or_default();
        let user_agent = req
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(mask::mask_untrusted)
            .unwrap_or_default();
        let scope: Arc<str> = Arc::from(id.as_str());
        req.extensions_mut().insert(RequestId(id));
        // The ready service is used and a clone left for the next call (tower's idiom).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let fut = context::within(&scope, || inner.call(req));
        Box::pin(context::scope(scope, async move {
            let Ok(mut resp) = fut.await;
            if let Some(v) = header {
                resp.headers_mut().insert(request_id::HEADER, v);
            }
            let code = resp
                .extensions()
                .get::<EnvelopeMeta>()
                .map(|m| i64::from(m.code.0))
                .unwrap_or(-1);
            tracing::info!(
                method = method.as_str(),
                path,
                query,
                status = resp.status().as_u16(),
                code,
                // Whole microseconds: a float's long fraction could read as a card number to
                // masking.
                latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                client_ip = peer.as_deref().unwrap_or_default(),
                user_agent,
                "Request completed."
            );
            Ok(resp)
        }))
    }
}
