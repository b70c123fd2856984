//! Enforces a route's rate limits: every limit must admit the request; a queueing limit makes
//! it wait its turn (up to `max_wait_ms`); a refusal answers 10019 with HTTP 429.
//! If the limiter backend cannot answer, the request goes on (fail open) and a warning is
//! logged: a Redis outage must not take every route down.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tower::{Layer, Service, ServiceExt};

use super::{Decision, LimitKey, RateLimiter};
use crate::BoxFuture;
use crate::auth::Caller;
use crate::client_ip::peer_ip;
use crate::clock::Clock;
use crate::gateway::ActiveRoute;
use crate::respond;

/// Rate limits of the request's route.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Debug)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: Arc<dyn RateLimiter>,
    clock: Arc<dyn Clock>,
}

impl RateLimitLayer {
    pub fn new(limiter: Arc<dyn RateLimiter>, clock: Arc<dyn Clock>) -> Self {
        Self { limiter, clock }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            clock: self.clock.clone(),
        }
    }
}

/// The key a limit counts under for this request.
pub fn key_for(route: &str, by: LimitKey, req: &Request<Body>) -> String {
    let ip = || peer_ip(req).map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let caller = req.extensions().get::<Caller>();
    let value = match by {
        LimitKey::Route => String::new(),
        LimitKey::Ip => ip(),
        LimitKey::User => caller
            .and_then(|c| c.user.clone())
            .map_or_else(|| format!("ip-{}", ip()), |u| format!("u-{u}")),
        LimitKey::App => caller
            .and_then(|c| c.app.clone())
            .map_or_else(|| format!("ip-{}", ip()), |a| format!("a-{a}")),
    };
    format!("{route}:{}:{value}", by.as_str())
}

impl<S> Service<Request<Body>> for RateLimitService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            let Some(route) = req.extensions().get::<Arc<ActiveRoute>>().cloned() else {
                return inner.oneshot(req).await;
            };
            for rule in &route.spec.limits {
                let key = key_for(&route.spec.id, rule.by, &req);
                match limiter.check(&key, &rule.params(), clock.now()).await {
                    Ok(Decision::Allow { wait }) if wait.is_zero() => {}
                    Ok(Decision::Allow { wait }) => tokio::time::sleep(wait).await,
                    Ok(Decision::Deny { retry_after }) => {
                        route.metrics.limited(&route.spec.id);
                        return Ok(respond::limited(retry_after));
                    }
                    Err(error) => {
                        tracing::warn!(route = %route.spec.id, %error, "Rate limiter unavailable; request admitted.");
                    }
                }
            }
            inner.oneshot(req).await
        })
    }
}
