//! Enforces the route's breaker: while open, the route's fallback answers at once (a static
//! envelope, the last good answer to a GET, or 10019); a half-open probe's outcome decides.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, Request};
use http_body_util::BodyExt;
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::{ApiError, AuthLevel, Code};
use tower::{Layer, Service};

use super::Permit;
use crate::normalize::is_upstream_failure;
use crate::route::Fallback;
use crate::route::active::ActiveRoute;
use crate::routed::Routed;
use crate::sync::lock;
use crate::{BoxFuture, answered};

/// Most paths remembered per route for the last-good fallback.
const LAST_GOOD_MAX: usize = 1024;
/// Largest answer remembered for the last-good fallback.
const LAST_GOOD_MAX_BYTES: usize = 256 * 1024;
const FALLBACK_HEADER: &str = "x-tongban-fallback";

/// Breakers of the request's route.
#[derive(Clone, Copy, Debug)]
pub struct BreakerLayer;

#[derive(Clone, Debug)]
pub struct BreakerService<S> {
    inner: S,
}

/// Reports the call to the breaker even if the request is abandoned midway, so a probe that
/// never finishes cannot leave the breaker half-open for ever.
struct Outcome {
    route: Arc<ActiveRoute>,
    permit: Permit,
    /// The gateway clock at admission: the call's time is read off the same clock at its end
    /// (one reading each way instead of two; an injected clock drives slow calls in tests).
    start: Duration,
    reported: bool,
}

impl<S> Layer<S> for BreakerLayer {
    type Service = BreakerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService { inner }
    }
}

impl<S> Service<Request<Body>> for BreakerService<S>
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
        let Some(route) = route.filter(|r| r.breaker.is_some()) else {
            return self.inner.call(req);
        };
        let now = route.clock.now();
        let permit = route
            .breaker
            .as_ref()
            .and_then(|b| lock(b).try_acquire(now));
        let Some(permit) = permit else {
            route.metrics.breaker_rejected(&route.spec.id);
            return answered(fallback(&route, &req));
        };
        let cache_key = last_good_key(&route, &req);
        // Made before the call, so a probe abandoned midway is still reported.
        let mut outcome = Outcome {
            route: route.clone(),
            permit,
            start: now,
            reported: false,
        };
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            let code = resp.extensions().get::<EnvelopeMeta>().map(|m| m.code);
            let failed = is_upstream_failure(resp.status(), code.unwrap_or(Code::OK));
            outcome.report(failed);
            match cache_key {
                // Boxed where it is needed (GETs of last-good routes), so this future stays
                // small on every other request: it is moved into its own box.
                Some(key) if !failed && code == Some(Code::OK) => {
                    Ok(Box::pin(remember(&route, key, resp)).await)
                }
                _ => Ok(resp),
            }
        })
    }
}

// === impl Outcome ===

impl Outcome {
    fn report(&mut self, failed: bool) {
        if self.reported {
            return;
        }
        self.reported = true;
        let now = self.route.clock.now();
        if let Some(b) = &self.route.breaker {
            let (before, after) = {
                let mut b = lock(b);
                let before = b.state(now);
                (
                    before,
                    // A wall clock stepped back reads as no time at all, not as a slow call.
                    b.on_complete(self.permit, now, now.saturating_sub(self.start), failed),
                )
            };
            if before != after {
                tracing::warn!(route = %self.route.spec.id, state = ?after, "Breaker changed state.");
            }
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.reported && self.permit == Permit::Probe {
            self.report(true);
        }
    }
}

/// Keeps a good GET answer for the last-good fallback and hands it on.
async fn remember(route: &ActiveRoute, key: String, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return ApiError::new(Code::THIRD_PARTY_FAILED).into_response(),
    };
    if bytes.len() <= LAST_GOOD_MAX_BYTES {
        let mut cache = lock(&route.last_good);
        if cache.len() >= LAST_GOOD_MAX && !cache.contains_key(&key) {
            // Crude but bounded: start over rather than grow without limit.
            cache.clear();
        }
        cache.insert(key, (parts.headers.clone(), bytes.clone()));
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Where a GET answer is remembered: by path and query, and by user on routes that need a
/// login, so that one user's data is never served to another. `None`: not remembered.
fn last_good_key(route: &ActiveRoute, req: &Request<Body>) -> Option<String> {
    if route.spec.fallback != Fallback::LastGood || req.method() != Method::GET {
        return None;
    }
    let pq = req.uri().path_and_query().map_or("", |p| p.as_str());
    if route.required_level() == AuthLevel::Anonymous {
        return Some(format!("-|{pq}"));
    }
    let user = Routed::caller_of(req)?.user.as_deref()?;
    Some(format!("u:{user}|{pq}"))
}

/// What the route answers while its breaker is open.
fn fallback(route: &ActiveRoute, req: &Request<Body>) -> Response {
    let busy = || {
        let mut r = ApiError::new(Code::BUSY_RETRY_LATER).into_response();
        r.headers_mut()
            .insert(FALLBACK_HEADER, HeaderValue::from_static("busy"));
        r
    };
    match &route.spec.fallback {
        Fallback::Busy => busy(),
        Fallback::Static { code, msg, data } => {
            let mut e = ApiError::new(Code(*code));
            e.msg.clone_from(msg);
            e.data.clone_from(data);
            let mut r = e.into_response();
            r.headers_mut()
                .insert(FALLBACK_HEADER, HeaderValue::from_static("static"));
            r
        }
        Fallback::LastGood => {
            let hit =
                last_good_key(route, req).and_then(|k| lock(&route.last_good).get(&k).cloned());
            match hit {
                Some((headers, body)) => {
                    let mut r = Response::new(Body::from(body));
                    *r.headers_mut() = headers;
                    r.headers_mut()
                        .insert(FALLBACK_HEADER, HeaderValue::from_static("last-good"));
                    r.extensions_mut().insert(EnvelopeMeta {
                        code: Code::OK,
                        status: http::StatusCode::OK,
                    });
                    r
                }
                None => busy(),
            }
        }
    }
}
