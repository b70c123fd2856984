//! Auth levels per route (6.2.2.1 a): who the caller is comes from an [`AuthResolver`] (the
//! identity part implements it); whether that is enough is decided here, free of I/O, and
//! enforced by [`AuthLayer`]. A refused request never reaches the upstream.

use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::Request;
use http::request::Parts;
use tongban_core::{ApiError, AuthLevel, Code};
use tower::{Layer, Service, ServiceExt};

use crate::route::active::ActiveRoute;
use crate::routed::{Caller, Routed};
use crate::{BoxFuture, answered};

/// Resolves the caller of a request.
#[async_trait::async_trait]
pub trait AuthResolver: Send + Sync + Debug + 'static {
    /// The caller, or the login error to answer (10006 no token, 10002 / 10007 / 10017 expired).
    /// Called only for routes that need more than `anonymous`, and only after
    /// [`resolve_now`](Self::resolve_now) answered `None`, so it need not look where that did.
    async fn resolve(&self, parts: &Parts) -> Result<Caller, ApiError>;

    /// [`resolve`](Self::resolve) when the answer is at hand without waiting (a cached
    /// session); `None` when it must be awaited. Spares the request a boxed future and a
    /// clone of the rest of the stack.
    fn resolve_now(&self, _parts: &Parts) -> Option<Result<Caller, ApiError>> {
        None
    }
}

/// A resolver for deployments without identity yet: every caller is anonymous.
#[derive(Clone, Copy, Debug, Default)]
pub struct AnonymousOnly;

/// Enforces route auth levels.
#[derive(Clone, Debug)]
pub struct AuthLayer {
    resolver: Arc<dyn AuthResolver>,
}

#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    resolver: Arc<dyn AuthResolver>,
}

// === impl Caller ===

impl Caller {
    pub fn anonymous() -> Self {
        Self {
            level: AuthLevel::Anonymous,
            user: None,
            app: None,
            face_age: None,
            session: None,
            face_verified_at: None,
        }
    }
}

#[async_trait::async_trait]
impl AuthResolver for AnonymousOnly {
    async fn resolve(&self, _: &Parts) -> Result<Caller, ApiError> {
        Ok(Caller::anonymous())
    }

    fn resolve_now(&self, _: &Parts) -> Option<Result<Caller, ApiError>> {
        Some(Ok(Caller::anonymous()))
    }
}

/// Whether `resolved` may use a route requiring `required`.
pub fn decide(
    required: AuthLevel,
    face_max_age: Duration,
    resolved: Result<Caller, ApiError>,
) -> Result<Caller, ApiError> {
    if required == AuthLevel::Anonymous {
        return Ok(resolved.unwrap_or_else(|_| Caller::anonymous()));
    }
    let caller = resolved?;
    if caller.level < AuthLevel::RealName {
        return Err(ApiError::new(Code::TOKEN_MISSING));
    }
    if required == AuthLevel::FaceVerified {
        let fresh = caller.level >= AuthLevel::FaceVerified
            && caller.face_age.is_some_and(|a| a <= face_max_age);
        if !fresh {
            return Err(
                ApiError::new(Code::FACE_REQUIRED).with_data(serde_json::json!({
                    "required": AuthLevel::FaceVerified.as_str(),
                    "max_age": face_max_age.as_secs(),
                })),
            );
        }
    }
    Ok(caller)
}

// === impl AuthLayer ===

impl AuthLayer {
    pub fn new(resolver: Arc<dyn AuthResolver>) -> Self {
        Self { resolver }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            resolver: self.resolver.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for AuthService<S>
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
        let Some(route) = Routed::route_of(&req) else {
            return self.inner.call(req);
        };
        let (parts, body) = req.into_parts();
        let required = route.required_level();
        // Anonymous routes resolve only when something needs to know the caller (per-user
        // or per-app limits, hashing by user, or the client sent a token, whose account the
        // caller context then names); otherwise identity is not consulted at all. A token
        // that does not resolve leaves such a caller anonymous (`decide`).
        let now = if required != AuthLevel::Anonymous
            || route.needs_caller()
            || carries_token(&parts.headers)
        {
            self.resolver.resolve_now(&parts)
        } else {
            Some(Ok(Caller::anonymous()))
        };
        if let Some(resolved) = now {
            return match admit(&route, parts, body, resolved) {
                Ok(req) => self.inner.call(req),
                Err(refused) => answered(refused.into_response()),
            };
        }
        let mut inner = self.inner.clone();
        let resolver = self.resolver.clone();
        Box::pin(async move {
            let resolved = resolver.resolve(&parts).await;
            match admit(&route, parts, body, resolved) {
                Ok(req) => inner.ready().await?.call(req).await,
                Err(refused) => Ok(refused.into_response()),
            }
        })
    }
}

fn carries_token(h: &http::HeaderMap) -> bool {
    h.contains_key(http::header::AUTHORIZATION) || h.contains_key(tongban_core::header::TOKEN)
}

/// The request with its caller, or the refusal to answer.
fn admit(
    route: &ActiveRoute,
    mut parts: Parts,
    body: Body,
    resolved: Result<Caller, ApiError>,
) -> Result<Request<Body>, ApiError> {
    let caller = decide(route.required_level(), route.face_max_age(), resolved)?;
    if let Some(r) = parts.extensions.get_mut::<Routed>() {
        r.caller = Some(caller);
    }
    Ok(Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(level: AuthLevel, face_age: Option<u64>) -> Result<Caller, ApiError> {
        Ok(Caller {
            level,
            user: Some("u1".into()),
            app: None,
            face_age: face_age.map(Duration::from_secs),
            session: None,
            face_verified_at: None,
        })
    }

    const MAX: Duration = Duration::from_secs(300);

    #[test]
    fn anonymous_routes_admit_everyone() {
        let r = decide(
            AuthLevel::Anonymous,
            MAX,
            Err(ApiError::new(Code::TOKEN_MISSING)),
        );
        assert_eq!(r.expect("admitted").level, AuthLevel::Anonymous);
    }

    #[test]
    fn real_name_routes_need_a_login() {
        let e =
            decide(AuthLevel::RealName, MAX, caller(AuthLevel::Anonymous, None)).expect_err("no");
        assert_eq!(e.code, Code::TOKEN_MISSING);
        let e = decide(
            AuthLevel::RealName,
            MAX,
            Err(ApiError::new(Code::SESSION_EXPIRED)),
        )
        .expect_err("no");
        assert_eq!(e.code, Code::SESSION_EXPIRED, "the resolver's code is kept");
        assert!(decide(AuthLevel::RealName, MAX, caller(AuthLevel::RealName, None)).is_ok());
        assert!(
            decide(
                AuthLevel::RealName,
                MAX,
                caller(AuthLevel::FaceVerified, Some(1))
            )
            .is_ok()
        );
    }

    #[test]
    fn face_routes_need_a_fresh_face_check() {
        let e = decide(
            AuthLevel::FaceVerified,
            MAX,
            caller(AuthLevel::RealName, None),
        )
        .expect_err("no");
        assert_eq!(e.code, Code::FACE_REQUIRED);
        assert_eq!(
            e.data,
            Some(serde_json::json!({"required": "face_verified", "max_age": 300}))
        );
        let e = decide(
            AuthLevel::FaceVerified,
            MAX,
            caller(AuthLevel::FaceVerified, Some(301)),
        )
        .expect_err("stale");
        assert_eq!(e.code, Code::FACE_REQUIRED);
        assert!(
            decide(
                AuthLevel::FaceVerified,
                MAX,
                caller(AuthLevel::FaceVerified, Some(300))
            )
            .is_ok()
        );
        let e = decide(
            AuthLevel::FaceVerified,
            MAX,
            caller(AuthLevel::Anonymous, None),
        )
        .expect_err("no");
        assert_eq!(e.code, Code::TOKEN_MISSING, "login first, then face");
    }
}
