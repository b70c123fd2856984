//! Records each routed answer in the route's metrics: its envelope code (the HTTP status for
//! raw routes) and its latency, refusals by later layers included.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tongban_core::envelope::EnvelopeMeta;
use tower::{Layer, Service};

use crate::BoxFuture;
use crate::routed::Routed;

/// Counts each routed request by code and latency.
#[derive(Clone, Debug)]
pub(crate) struct MetricsLayer;

#[derive(Clone, Debug)]
pub(crate) struct MetricsService<S> {
    inner: S,
}

// === impl MetricsLayer ===

impl<S> Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService { inner }
    }
}

impl<S> Service<Request<Body>> for MetricsService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let route = Routed::route_of(&req);
        // The poll's reading (see `tongban_core::clock`); the end reads the clock.
        let start = tongban_core::clock::instant();
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            if let Some(route) = route {
                let code = resp
                    .extensions()
                    .get::<EnvelopeMeta>()
                    .map_or_else(|| u32::from(resp.status().as_u16()), |m| m.code.0);
                route.metrics.record(&route.spec.id, code, start.elapsed());
            }
            Ok(resp)
        })
    }
}
