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
use tongban_core::net::IpText;
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
    let mut key = String::with_capacity(route.len() + 64);
    write_key(&mut key, route, by, req);
    key
}

/// [`key_for`] into `key` (cleared first), so a route's limits share one buffer.
fn write_key(key: &mut String, route: &str, by: LimitKey, req: &Request<Body>) {
    key.clear();
    key.push_str(route);
    key.push(':');
    key.push_str(by.as_str());
    key.push(':');
    let push_ip = |key: &mut String| match peer_ip(req) {
        Some(ip) => key.push_str(&IpText::new(ip)),
        None => key.push('-'),
    };
    let caller = req.extensions().get::<Caller>();
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
            let Some(route) = req.extensions().get::<Arc<ActiveRoute>>().cloned() else {
                return inner.ready().await?.call(req).await;
            };
            let mut now = clock.now();
            let mut key = String::new();
            for rule in &route.spec.limits {
                write_key(&mut key, &route.spec.id, rule.by, &req);
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
    use crate::client_ip::ClientIp;
    use tongban_core::AuthLevel;

    fn req(ip: Option<&str>, user: Option<&str>) -> Request<Body> {
        let mut r = Request::new(Body::empty());
        if let Some(ip) = ip {
            let ip = ip.parse().expect("address");
            r.extensions_mut().insert(ClientIp {
                ip,
                peer: ip,
                via_trusted_proxy: false,
            });
        }
        if let Some(u) = user {
            r.extensions_mut().insert(Caller {
                level: AuthLevel::RealName,
                user: Some(u.to_owned()),
                app: None,
                face_age: None,
            });
        }
        r
    }

    #[test]
    fn keys_name_the_route_the_kind_and_the_caller() {
        let both = req(Some("203.0.113.7"), Some("u42"));
        assert_eq!(key_for("r", LimitKey::Route, &both), "r:route:");
        assert_eq!(key_for("r", LimitKey::Ip, &both), "r:ip:203.0.113.7");
        assert_eq!(key_for("r", LimitKey::User, &both), "r:user:u-u42");
        // Without an app (or user) the caller is counted by address, apart from address keys.
        assert_eq!(key_for("r", LimitKey::App, &both), "r:app:ip-203.0.113.7");
        let anonymous = req(Some("2001:db8::1"), None);
        assert_eq!(
            key_for("r", LimitKey::User, &anonymous),
            "r:user:ip-2001:db8::1"
        );
        assert_eq!(key_for("r", LimitKey::Ip, &req(None, None)), "r:ip:-");
    }
}
