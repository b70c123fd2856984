//! Enforces a route's rate limits: every limit must admit the request; a queueing limit makes
//! it wait its turn (up to `max_wait_ms`); a refusal answers 10019 with HTTP 429.
//! If the limiter backend cannot answer, the request goes on (fail open) and a warning is
//! logged: a Redis outage must not take every route down.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tongban_core::net::IpText;
use tower::{Layer, Service, ServiceExt};

use super::{Decision, LimitError, LimitKey, RateLimiter};
use crate::respond;
use crate::route::active::ActiveRoute;
use crate::routed::Caller;
use crate::routed::Routed;
use crate::{BoxFuture, answered};
use tongban_core::clock::Clock;

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

/// The key a limit counts under for a request from `ip` (as the router determined it) by
/// `caller`.
pub fn key_for(route: &str, by: LimitKey, ip: Option<IpAddr>, caller: Option<&Caller>) -> String {
    let mut key = String::with_capacity(route.len() + 64);
    let ip = ip.map(IpText::new);
    write_key(&mut key, route, by, ip.as_ref(), caller);
    key
}

/// [`key_for`] into `key` (cleared first), so a route's limits share one buffer.
fn write_key(
    key: &mut String,
    route: &str,
    by: LimitKey,
    ip: Option<&IpText>,
    caller: Option<&Caller>,
) {
    key.clear();
    key.push_str(route);
    key.push(':');
    key.push_str(by.as_str());
    key.push(':');
    let push_ip = |key: &mut String| match ip {
        Some(ip) => key.push_str(ip),
        None => key.push('-'),
    };
    let (own, prefix) = match by {
        LimitKey::Route => return,
        LimitKey::Ip => {
            push_ip(key);
            return;
        }
        LimitKey::User => (caller.and_then(|c| c.user.as_deref()), "u-"),
        LimitKey::App => (caller.and_then(|c| c.app.as_deref()), "a-"),
    };
    match own {
        Some(id) => {
            key.push_str(prefix);
            key.push_str(id);
        }
        // Without a user (or app) the caller is counted by address.
        None => {
            key.push_str("ip-");
            push_ip(key);
        }
    }
}

/// [`write_key`] for a routed request (the address as the router determined it).
fn request_key(key: &mut String, route: &ActiveRoute, by: LimitKey, req: &Request<Body>) {
    let routed = Routed::of(req);
    write_key(
        key,
        &route.spec.id,
        by,
        routed.and_then(|r| r.client.as_ref()).map(|c| &c.text),
        routed.and_then(|r| r.caller.as_ref()),
    );
}

/// What one limit's decision means for the request.
enum Step {
    Next,
    Wait(Duration),
    Refuse(Response),
}

fn step(route: &ActiveRoute, decision: Result<Decision, LimitError>) -> Step {
    match decision {
        Ok(Decision::Allow { wait }) if wait.is_zero() => Step::Next,
        Ok(Decision::Allow { wait }) => Step::Wait(wait),
        Ok(Decision::Deny { retry_after }) => {
            route.metrics.limited(&route.spec.id);
            Step::Refuse(respond::limited(retry_after))
        }
        Err(error) => {
            tracing::warn!(route = %route.spec.id, %error, "Rate limiter unavailable; request admitted.");
            Step::Next
        }
    }
}

impl<S> Service<Request<Body>> for RateLimitService<S>
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
        // Borrowed while every limit answers at once; the route's count (shared by every
        // worker thread) is taken only for a request that must wait.
        let Some(routed) = Routed::of(&req).filter(|r| !r.route.spec.limits.is_empty()) else {
            return self.inner.call(req);
        };
        let route = &routed.route;
        // Decided here while every limit answers at once (in process, no queueing); the
        // first that must be awaited sends the rest of the request to `later`.
        let now = self.clock.now();
        let mut key = String::with_capacity(route.spec.id.len() + 64);
        for (i, rule) in route.spec.limits.iter().enumerate() {
            request_key(&mut key, route, rule.by, &req);
            let Some(decision) = self.limiter.check_now(&key, &rule.params(), now) else {
                return self.later(route.clone(), req, i, Duration::ZERO);
            };
            match step(route, decision) {
                Step::Next => {}
                Step::Wait(wait) => return self.later(route.clone(), req, i + 1, wait),
                Step::Refuse(resp) => return answered(resp),
            }
        }
        self.inner.call(req)
    }
}

impl<S> RateLimitService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>
        + Clone
        + Send
        + 'static,
{
    /// Waits `wait` (a queued admission), then the limits from `from` on, each awaited if its
    /// backend must be (Redis), then the inner service (a clone: this one is called again
    /// before that).
    fn later(
        &self,
        route: Arc<ActiveRoute>,
        req: Request<Body>,
        from: usize,
        wait: Duration,
    ) -> BoxFuture {
        let mut inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            let mut key = String::with_capacity(route.spec.id.len() + 64);
            for rule in route.spec.limits.iter().skip(from) {
                request_key(&mut key, &route, rule.by, &req);
                let (params, now) = (rule.params(), clock.now());
                let decision = match limiter.check_now(&key, &params, now) {
                    Some(d) => d,
                    None => limiter.check(&key, &params, now).await,
                };
                match step(&route, decision) {
                    Step::Next => {}
                    Step::Wait(wait) => tokio::time::sleep(wait).await,
                    Step::Refuse(resp) => return Ok(resp),
                }
            }
            inner.ready().await?.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_core::AuthLevel;

    fn user(u: &str) -> Caller {
        Caller {
            level: AuthLevel::RealName,
            user: Some(u.to_owned()),
            app: None,
            face_age: None,
            session: None,
            face_verified_at: None,
        }
    }

    #[test]
    fn keys_name_the_route_the_kind_and_the_caller() {
        let ip = Some("203.0.113.7".parse().expect("address"));
        let u42 = user("u42");
        let both = |by| key_for("r", by, ip, Some(&u42));
        assert_eq!(both(LimitKey::Route), "r:route:");
        assert_eq!(both(LimitKey::Ip), "r:ip:203.0.113.7");
        assert_eq!(both(LimitKey::User), "r:user:u-u42");
        // Without an app (or user) the caller is counted by address, apart from address keys.
        assert_eq!(both(LimitKey::App), "r:app:ip-203.0.113.7");
        let v6 = Some("2001:db8::1".parse().expect("address"));
        assert_eq!(
            key_for("r", LimitKey::User, v6, None),
            "r:user:ip-2001:db8::1"
        );
        assert_eq!(key_for("r", LimitKey::Ip, None, None), "r:ip:-");
    }
}
