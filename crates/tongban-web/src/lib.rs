//! H5 portal and admin console: pages rendered on the server from templates embedded in the
//! binary, with small hand-written assets, so that no Node is needed at run time.
#![forbid(unsafe_code)]

use axum::response::{Html, IntoResponse};
use axum::routing::get;
use http::header;
use tongban_core::routes::Routes;

const INDEX: &str = include_str!("../templates/index.html");
const CSS: &str = include_str!("../static/portal.css");

/// The portal's routes, mountable on any application state.
pub fn portal<S: Clone + Send + Sync + 'static>() -> Routes<S> {
    Routes::new()
        .route("/", get(index))
        .route("/static/portal.css", get(css))
}

async fn index() -> Html<&'static str> {
    Html(INDEX)
}

async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
}
