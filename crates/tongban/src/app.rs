//! The HTTP applications of the two listeners and the stack every request passes through.
//! Read `stack` top to bottom to see the request path; each layer says why it is there.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tongban_core::config::Config;
use tongban_core::envelope::{self, ApiError};
use tongban_core::{Code, CodeRegistry};
use tongban_store::{Store, StoreOptions};

use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;
use tower_http::catch_panic::CatchPanicLayer;

use crate::access_log;
use crate::keys::KeyService;

/// A listener's whole application: the common layers around its router.
pub type App = BoxCloneSyncService<axum::extract::Request, Response, Infallible>;

/// What handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub codes: Arc<CodeRegistry>,
    pub keys: Arc<KeyService>,
}

impl AppState {
    /// Opens storage and the keyring as `cfg` says (a development keyring is made in the test
    /// profile when there is none).
    pub async fn open(cfg: Config) -> anyhow::Result<AppState> {
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
        })
    }
}

/// The public listener's application: portal pages, health, the envelope keys, whatever
/// `routes` the caller mounts, and `parts` (the platform's routes, whose own fallback, the
/// gateway, takes every other path), or 20404 where nothing matches.
pub fn public(state: AppState, routes: Router<AppState>, parts: Option<Router>) -> App {
    let local = Router::new()
        .merge(tongban_web::portal())
        .merge(health_routes())
        // Anonymous: clients need the public keys before they can seal anything.
        .route("/api/v1/envelope-keys", get(crate::envelope::keys))
        .merge(routes)
        .with_state(state.clone());
    let app = match parts {
        // The parts' routes join the same table, so a request is matched once; their
        // fallback (the gateway) takes every path no route owns.
        Some(parts) => local.merge(parts),
        None => local.fallback(not_found),
    };
    stack(app, &state)
}

/// The admin listener's application (health now; routes, keys, catalog as those parts land).
pub fn admin(state: AppState, routes: Router<AppState>) -> App {
    let app = Router::new()
        .merge(health_routes())
        .merge(routes)
        .fallback(not_found)
        .with_state(state.clone());
    stack(app, &state)
}

fn health_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// The layers common to both listeners, outermost first.
fn stack(app: Router, state: &AppState) -> App {
    let always_200 = state.config.server.always_200;
    let max_body = state.config.server.max_body_bytes;
    // Wrong methods answer the envelope, not the framework's text. Extractors refuse bodies
    // past the configured size (answered as 20000): on the routes only, as the limit is an
    // extension put on each request; the gateway (the fallback) applies each route's own.
    let app = app
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(DefaultBodyLimit::max(max_body));
    // The layers wrap the router once, as one tower stack: `Router::layer` would wrap every
    // route in every layer, each in a boxed service that a request clones again (about 20
    // allocations per request).
    let stack = ServiceBuilder::new()
        // Every request gets an id before anything can log; one masked line per request, with
        // the id as the logging context of everything the request does.
        .layer(access_log::AccessLogLayer)
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
    // Served as is: another router around it would match every path once more only to reach
    // its fallback.
    BoxCloneSyncService::new(stack)
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
