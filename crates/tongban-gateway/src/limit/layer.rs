//! Enforces a route's rate limits: every limit must admit the request; a queueing limit makes
//! it wait its turn (up to `max_wait_ms`); a refusal answers 10019 with HTTP 429.
//! If the limiter backend cannot answer, the request goes on (fail open) and a warning is
//! logged: a Redis outage must not take every route down.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tongban_core::net::IpText;
use tower::{Layer, Service, ServiceExt};

use super::{Decision, LimitKey, RateLimiter};
use crate::BoxFuture;
use crate::auth::Caller;
use crate::client_ip::peer_ip;
use crate::clock::Clock;
use crate::respond;
use crate::route::layer::Routed;

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
    write_key(&mut key, route, by, ip, caller);
    key
}

/// [`key_for`] into `key` (cleared first), so a route's limits share one buffer.
fn write_key(
    key: &mut String,
    route: &str,
    by: LimitKey,
    ip: Option<IpAddr>,
    caller: Option<&Caller>,
) {
    key.clear();
    key.push_str(route);
    key.push(':');
    key.push_str(by.as_str());
    key.push(':');
    let push_ip = |key: &mut String| match ip {
        Some(ip) => key.push_str(&IpText::new(ip)),
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
        let mut inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let clock = self.clock.clone();
        Box::pin(async move {
            let Some(route) = Routed::route_of(&req) else {
                return inner.ready().await?.call(req).await;
            };
            let mut now = clock.now();
            let mut key = String::with_capacity(route.spec.id.len() + 64);
            for rule in &route.spec.limits {
                write_key(
                    &mut key,
                    &route.spec.id,
                    rule.by,
                    peer_ip(&req),
                    Routed::caller_of(&req),
                );
                let params = rule.params();
                let decision = match limiter.check_now(&key, &params, now) {
                    Some(d) => d,
                    None => limiter.check(&key, &params, now).await,
                };
                match decision {
                    Ok(Decision::Allow { wait }) if wait.is_zero() => {}
                    Ok(Decision::Allow { wait }) => {
                        tokio::time::sleep(wait).await;
                        now = clock.now();
                    }
                    Ok(Decision::Deny { retry_after }) => {
                        route.metrics.limited(&route.spec.id);
                        return Ok(respond::limited(retry_after));
                    }
                    Err(error) => {
                        tracing::warn!(route = %route.spec.id, %error, "Rate limiter unavailable; request admitted.");
                    }
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
