//! What is known of a request once it is routed, carried past the router in its extensions
//! as one value: the route in force, the client's address, and (after the auth layer) the
//! caller. Every layer reads it from here; none reads another layer's module for it.

use std::sync::Arc;
use std::time::Duration;

use http::Request;
use tongban_core::AuthLevel;

use crate::client_ip::ClientIp;
use crate::route::active::ActiveRoute;

/// Who is calling, as the identity part sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub level: AuthLevel,
    /// A stable user id (never personal data): for per-user limits and consistent hashing.
    pub user: Option<String>,
    /// The calling application, when known.
    pub app: Option<String>,
    /// How long ago the face check was passed, for `face_verified` callers.
    pub face_age: Option<Duration>,
    /// The session the request belongs to (for the caller context).
    pub session: Option<String>,
    /// When the session's last face check passed, Unix milliseconds.
    pub face_verified_at: Option<i64>,
}

/// What is known of a routed request, carried past the router as one extension (one map
/// insert and allocation per request).
#[derive(Clone, Debug)]
pub(crate) struct Routed {
    pub(crate) route: Arc<ActiveRoute>,
    /// `None` when the connection's peer is unknown (a request made in process).
    pub(crate) client: Option<ClientIp>,
    /// Set by the auth layer.
    pub(crate) caller: Option<Caller>,
}

impl Routed {
    pub(crate) fn of<B>(req: &Request<B>) -> Option<&Routed> {
        req.extensions().get::<Routed>()
    }

    /// The request's route, for a layer's future to keep.
    pub(crate) fn route_of<B>(req: &Request<B>) -> Option<Arc<ActiveRoute>> {
        Self::of(req).map(|r| r.route.clone())
    }

    pub(crate) fn caller_of<B>(req: &Request<B>) -> Option<&Caller> {
        Self::of(req)?.caller.as_ref()
    }
}
