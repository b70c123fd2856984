//! The HTTP applications of the two listeners and the stack every request passes through.
//! Read `stack` top to bottom to see the request path; each layer says why it is there.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use axum::routing::get;
use tongban_core::config::Config;
use tongban_core::envelope::{self, ApiError};
use tongban_core::routes::Routes;
use tongban_core::{Code, CodeRegistry};
use tongban_store::{Store, StoreOptions};

use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;

use tongban_keys::KeyService;
use tongban_log::access;

/// A listener's whole application: the common layers around its router.
pub use tongban_server::App;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub codes: Arc<CodeRegistry>,
    pub keys: Arc<KeyService>,
    /// The `[identity]` section, parsed once when the state is opened.
    pub identity: Arc<tongban_identity::IdentityConfig>,
}

impl axum::extract::FromRef<AppState> for Arc<KeyService> {
    fn from_ref(state: &AppState) -> Self {
        state.keys.clone()
    }
}

impl AppState {
    /// Opens storage and the keyring as `cfg` says (a development keyring is made in the test
    /// profile when there is none).
    pub async fn open(cfg: Config) -> anyhow::Result<AppState> {
        let identity = crate::platform::identity_config(&cfg)?;
        let mut opts = StoreOptions::new(cfg.storage_url());
        opts.max_connections = cfg.storage.max_connections;
        let store = Store::open(&opts).await.with_context(|| {
            format!(
                "cannot open storage {}",
                tongban_core::mask::mask_url(&cfg.storage_url())
            )
        })?;
        let keys = KeyService::open_or_init_dev(&store, &cfg, "tongban-serve").await?;
        Ok(AppState {
            config: Arc::new(cfg),
            store,
            codes: Arc::new(CodeRegistry::new()),
            keys: Arc::new(keys),
            identity: Arc::new(identity),
        })
    }
}

/// The platform's share of the public listener: its routes, and the gateway, which takes
/// every path none of the listener's routes owns (and answers 20404 where its table has none).
#[derive(Debug)]
pub struct Parts {
    pub routes: Routes,
    pub gateway: GatewayService,
}

/// The gateway's request path as one service.
pub type GatewayService = BoxCloneSyncService<axum::extract::Request, Response, Infallible>;

/// The public listener's application: portal pages, health, the envelope keys, whatever
/// `routes` the caller mounts, and `parts` (the platform's routes and the gateway behind
/// them), or 20404 where nothing matches.
pub fn public(state: AppState, routes: Routes<AppState>, parts: Option<Parts>) -> App {
    let local = Routes::new()
        .merge(tongban_web::portal())
        .merge(health_routes())
        // Anonymous: clients need the public keys before they can seal anything.
        .route(
            "/api/v1/envelope-keys",
            get(tongban_keys::http::envelope_keys),
        )
        .merge(routes)
        .with_state(state.clone());
    match parts {
        Some(Parts { routes, gateway }) => {
            let (router, paths) = local.merge(routes).into_parts();
            let dispatch = Dispatch::new(local_router(router, &state), &paths, gateway);
            stack(dispatch, &state)
        }
        None => stack(local_router(local.into(), &state), &state),
    }
}

/// The admin listener's application (health now; routes, keys, catalog as those parts land).
pub fn admin(state: AppState, routes: Routes<AppState>) -> App {
    let app = Router::from(health_routes().merge(routes).with_state(state.clone()));
    stack(local_router(app, &state), &state)
}

fn health_routes() -> Routes<AppState> {
    Routes::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// A listener's own routes as they answer: wrong methods and unknown paths with the envelope,
/// not the framework's text; bodies past the configured size refused by the extractors
/// (20000). The limit is an extension put on each request by these routes only; the gateway
/// applies each of its routes' own.
fn local_router(router: Router, state: &AppState) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(DefaultBodyLimit::max(state.config.server.max_body_bytes))
}

/// The public listener's dispatch: a request whose path one of the local routes owns goes to
/// the local router, every other to the gateway. Local routes win, as they did when the
/// gateway was the router's fallback; the paths are matched by the same matcher (and version)
/// as axum's router, so the two agree on every path.
#[derive(Clone)]
struct Dispatch {
    local: Router,
    paths: Arc<matchit::Router<()>>,
    gateway: GatewayService,
}

impl Dispatch {
    fn new(local: Router, paths: &[&'static str], gateway: GatewayService) -> Self {
        let mut m = matchit::Router::new();
        for p in paths {
            // axum has accepted every path (and refused any conflict) as the routes were
            // built; what is left is a path listed again for another method.
            let _ = m.insert(*p, ());
        }
        Dispatch {
            local,
            paths: Arc::new(m),
            gateway,
        }
    }
}

impl Service<axum::extract::Request> for Dispatch {
    type Response = Response;
    type Error = Infallible;
    type Future = Dispatched<<GatewayService as Service<axum::extract::Request>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // axum's router is always ready.
        self.gateway.poll_ready(cx)
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        if self.paths.at(req.uri().path()).is_ok() {
            Dispatched::Local {
                inner: self.local.call(req),
            }
        } else {
            Dispatched::Gateway {
                inner: self.gateway.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of whichever side took the request.
    #[project = DispatchedProj]
    enum Dispatched<G> {
        Local { #[pin] inner: RouteFuture<Infallible> },
        Gateway { #[pin] inner: G },
    }
}

impl<G> Future for Dispatched<G>
where
    G: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            DispatchedProj::Local { inner } => inner.poll(cx),
            DispatchedProj::Gateway { inner } => inner.poll(cx),
        }
    }
}

/// The layers common to both listeners, outermost first.
fn stack<S>(app: S, state: &AppState) -> App
where
    S: Service<axum::extract::Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let always_200 = state.config.server.always_200;
    // The layers wrap the router once, as one tower stack: `Router::layer` would wrap every
    // route in every layer, each in a boxed service that a request clones again (about 20
    // allocations per request).
    let stack = ServiceBuilder::new()
        // Every request gets an id before anything can log; one masked line per request, with
        // the id as the logging context of everything the request does.
        .layer(access::AccessLogLayer)
        // Routes match, auth levels are decided and the gateway forwards on one canonical path
        // (dot-segments removed, escapes decoded); what cannot be made canonical is refused.
        .layer(tower::layer::layer_fn(CanonicalPath))
        // Legacy clients that only read the body: the code still says what happened.
        .map_response(move |resp: Response<_>| {
            let resp = resp.into_response();
            if always_200 {
                envelope::always_200(resp)
            } else {
                resp
            }
        })
        // A bug in a handler answers 10000 instead of dropping the connection.
        .layer(CatchPanicLayer::custom(panic_response))
        .service(app);
    // Served as is: another router around it would match every path once more.
    BoxCloneSyncService::new(stack)
}

/// Makes each request's path canonical (`tongban_core::path`) before the routers see it;
/// 20000 when it cannot be.
#[derive(Clone, Debug)]
struct CanonicalPath<S>(S);

impl<S> Service<axum::extract::Request> for CanonicalPath<S>
where
    S: Service<axum::extract::Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Canonical<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::extract::Request) -> Self::Future {
        match tongban_core::path::normalize_uri(req.uri_mut()) {
            Ok(()) => Canonical::Inner {
                inner: self.0.call(req),
            },
            Err(e) => Canonical::Refused {
                resp: Some(
                    ApiError::new(Code::BAD_PARAMETER)
                        .with_msg(e.to_string())
                        .into_response(),
                ),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, or the refusal of a path that cannot be made canonical.
    #[project = CanonicalProj]
    enum Canonical<F> {
        Refused { resp: Option<Response> },
        Inner { #[pin] inner: F },
    }
}

impl<F> Future for Canonical<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            CanonicalProj::Refused { resp } => Poll::Ready(Ok(resp
                .take()
                .unwrap_or_else(|| ApiError::new(Code::BUSY).into_response()))),
            CanonicalProj::Inner { inner } => inner.poll(cx),
        }
    }
}

async fn healthz() -> impl IntoResponse {
    envelope::Ok(serde_json::json!({ "status": "live" }))
}

async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(envelope::Ok(serde_json::json!({
            "status": "ready",
            "storage": state.store.backend().as_str(),
        }))),
        Ok(Err(error)) => {
            tracing::warn!(%error, "Storage is not reachable.");
            Err(ApiError::new(Code::BUSY_RETRY_LATER).with_msg("存储不可用，请稍后重试"))
        }
        Err(_) => {
            tracing::warn!("Storage did not answer within 2 s.");
            Err(ApiError::new(Code::BUSY_RETRY_LATER).with_msg("存储不可用，请稍后重试"))
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NOT_FOUND)
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::METHOD_NOT_SUPPORTED)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic payload may hold input data: it is not logged or returned.
    tracing::error!("A handler panicked; answered 10000.");
    ApiError::new(Code::BUSY).into_response()
}
