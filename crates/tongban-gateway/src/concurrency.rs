//! A cap on a route's requests in flight: past it, requests are refused at once (10019, 429)
//! instead of queueing behind a slow upstream. A request takes its slot only once its body has
//! been read whole: a client trickling a body holds its own request, never a slot others need.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::response::Response;
use http::Request;
use tower::{Layer, Service, ServiceExt};

use crate::BoxFuture;
use crate::respond;
use crate::routed::Routed;

/// Enforces `max_concurrency` of the request's route.
#[derive(Clone, Copy, Debug)]
pub struct ConcurrencyLayer;

#[derive(Clone, Debug)]
pub struct ConcurrencyService<S> {
    inner: S,
}

impl<S> Layer<S> for ConcurrencyLayer {
    type Service = ConcurrencyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyService { inner }
    }
}

impl<S> Service<Request<Body>> for ConcurrencyService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let sem = Routed::of(&req).and_then(|r| r.route.concurrency.clone());
        let Some(sem) = sem else {
            return self.inner.call(req);
        };
        // Nothing left to read (a GET, an empty body): the slot is taken at once.
        if req.body().is_end_stream() {
            let Ok(permit) = sem.try_acquire_owned() else {
                return crate::answered(respond::overloaded());
            };
            let answer = self.inner.call(req);
            return Box::pin(async move {
                let resp = answer.await;
                drop(permit);
                resp
            });
        }
        let max = Routed::of(&req).map_or(0, |r| r.route.spec.max_body_bytes);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = match crate::body::read(&parts.headers, body, max).await {
                Ok(b) => b,
                Err(refused) => return Ok(refused),
            };
            let Ok(permit) = sem.try_acquire_owned() else {
                return Ok(respond::overloaded());
            };
            let resp = inner
                .ready()
                .await?
                .call(Request::from_parts(parts, Body::from(body)))
                .await;
            drop(permit);
            resp
        })
    }
}
