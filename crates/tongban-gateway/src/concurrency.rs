//! A cap on a route's requests in flight: past it, requests are refused at once (10019, 429)
//! instead of queueing behind a slow upstream.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower::{Layer, Service};

use crate::respond;
use crate::route::layer::Routed;
use crate::{BoxFuture, answered};

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
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>,
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
        match sem.try_acquire_owned() {
            Ok(permit) => {
                let answer = self.inner.call(req);
                Box::pin(async move {
                    let resp = answer.await;
                    drop(permit);
                    resp
                })
            }
            Err(_) => answered(respond::overloaded()),
        }
    }
}
