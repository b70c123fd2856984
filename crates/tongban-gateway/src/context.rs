//! The caller context on every forwarded request (`tongban_crypto::caller_context`): the
//! gateway removes whatever a client sent under its name and adds its own, sealed with the
//! upstream service's key, so a service learns who calls without trusting the client.

use std::fmt::Debug;
use std::sync::Arc;

use http::{HeaderMap, HeaderValue};
use tongban_core::AuthLevel;
use tongban_core::clock::Clock;
use tongban_core::header::{X_DEVICE_ID, X_REQUEST_ID};
use tongban_crypto::caller_context::{self, CallerContext, ContextKey};
use tongban_crypto::sm3::HmacSm3Key;

use crate::route::active::ActiveRoute;
use crate::routed::Caller;

/// How long a context is accepted after the gateway made it, milliseconds: long enough for
/// the retries of one request, short enough that a context captured inside the network is
/// of little use.
pub const CONTEXT_TTL_MS: i64 = 60_000;

/// One service's keys: its context key, and the platform's pseudonym key.
#[derive(Clone, Debug)]
pub struct ServiceKeys {
    pub context: ContextKey,
    pub subject: HmacSm3Key,
}

/// Where the gateway gets each service's keys (the binary: the key service's keyring).
pub trait CallerContextKeys: Send + Sync + Debug {
    /// The current keys of `service`; `None` when the keyring has none, and the request then
    /// goes without a context (the service refuses it).
    fn for_service(&self, service: &str) -> Option<Arc<ServiceKeys>>;
}

/// No keys: forwarded requests carry no context (a gateway built without a keyring).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallerContext;

impl CallerContextKeys for NoCallerContext {
    fn for_service(&self, _: &str) -> Option<Arc<ServiceKeys>> {
        None
    }
}

/// The service name a route's contexts are made for: its registry service, or, for a route
/// with fixed instances, the route's id.
pub fn service_of(route: &ActiveRoute) -> &str {
    route
        .spec
        .upstream
        .service
        .as_deref()
        .unwrap_or(&route.spec.id)
}

/// Makes the context header of forwarded requests.
#[derive(Clone, Debug)]
pub(crate) struct Contexts {
    pub(crate) keys: Arc<dyn CallerContextKeys>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Contexts {
    /// The header for a request of `caller` (`None`: not resolved, as on anonymous routes)
    /// through `route`; `headers` are the request's, before credentials are stripped.
    pub(crate) fn header(
        &self,
        route: &ActiveRoute,
        caller: Option<&Caller>,
        headers: &HeaderMap,
    ) -> Option<HeaderValue> {
        let svc = service_of(route);
        let keys = self.keys.for_service(svc)?;
        let now = self.clock.now_ms();
        let text = |v: &HeaderValue| v.to_str().ok().map(str::to_owned);
        let session = caller.and_then(|c| c.session.clone());
        let ctx = CallerContext {
            svc: svc.to_owned(),
            route: route.spec.id.clone(),
            sub: caller
                .and_then(|c| c.user.as_deref())
                .map(|user| caller_context::subject(&keys.subject, svc, user)),
            lvl: caller
                .map_or(AuthLevel::Anonymous, |c| c.level)
                .as_str()
                .to_owned(),
            face_at: caller.and_then(|c| c.face_verified_at),
            // A device id is vouched for only when a session was checked against it.
            dev: session
                .as_ref()
                .and(headers.get(X_DEVICE_ID))
                .and_then(text),
            sid: session,
            app: caller.and_then(|c| c.app.clone()),
            rid: headers.get(X_REQUEST_ID).and_then(text),
            iat: now,
            exp: now + CONTEXT_TTL_MS,
        };
        HeaderValue::try_from(caller_context::seal(&ctx, &keys.context)).ok()
    }
}
