//! A router that knows its paths. The public listener sends a request to its own routes when
//! one of their paths matches and to the gateway otherwise, deciding once; with the gateway as
//! axum's fallback, every proxied request was matched a second time, had its whole path
//! decoded into a parameter and cloned a boxed service. Routes and paths are added by the same
//! call, so the list cannot miss a route.

use axum::Router;
use axum::routing::MethodRouter;

/// An axum [`Router`] with the paths of its routes.
#[derive(Debug)]
pub struct Routes<S = ()> {
    router: Router<S>,
    paths: Vec<&'static str>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    /// As [`Router::route`] (whose rules and panics apply), remembering `path`.
    pub fn route(mut self, path: &'static str, method_router: MethodRouter<S>) -> Self {
        self.router = self.router.route(path, method_router);
        self.paths.push(path);
        self
    }

    /// As [`Router::merge`].
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.extend(other.paths);
        self
    }

    /// As [`Router::with_state`].
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            router: self.router.with_state(state),
            paths: self.paths,
        }
    }

    /// Every path a route was added for, in the order added (a path with several method
    /// routes may appear more than once).
    pub fn paths(&self) -> &[&'static str] {
        &self.paths
    }

    /// As [`Router::route_layer`]: `layer` runs for the routes added so far, on matches only.
    pub fn route_layer<L>(mut self, layer: L) -> Self
    where
        L: tower::Layer<axum::routing::Route> + Clone + Send + Sync + 'static,
        L::Service: tower::Service<axum::extract::Request> + Clone + Send + Sync + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Response:
            axum::response::IntoResponse + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Error:
            Into<std::convert::Infallible> + 'static,
        <L::Service as tower::Service<axum::extract::Request>>::Future: Send + 'static,
    {
        self.router = self.router.route_layer(layer);
        self
    }

    pub fn into_parts(self) -> (Router<S>, Vec<&'static str>) {
        (self.router, self.paths)
    }
}

impl<S> From<Routes<S>> for Router<S> {
    fn from(r: Routes<S>) -> Self {
        r.router
    }
}

#[cfg(test)]
mod tests {
    use axum::routing::{get, post};

    use super::*;

    #[test]
    fn paths_follow_routes_and_merges() {
        let a = Routes::<()>::new()
            .route("/a", get(|| async {}))
            .route("/a", post(|| async {}));
        let b = Routes::new().route("/b/{id}", get(|| async {}));
        let (_, paths) = a.merge(b).into_parts();
        assert_eq!(paths, ["/a", "/a", "/b/{id}"]);
    }
}
