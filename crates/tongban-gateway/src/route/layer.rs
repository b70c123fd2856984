//! Routing as a layer: makes the path canonical (20000 when it cannot be), finds the request's route (20404 when none matches, 20002 when only the
//! method is wrong) and puts it, with the client's address, in the request's extensions for
//! every later layer ([`crate::routed::Routed`]).

use std::convert::Infallible;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use http::Request;
use tongban_core::header::X_FORWARDED_FOR;
use tongban_core::net::{IpNet, Peer};
use tongban_core::{ApiError, Code};
use tower::{Layer, Service};

use super::active::ActiveRoute;
use super::{Match, Table};
use crate::client_ip::client_ip;
use crate::routed::Routed;
use crate::{BoxFuture, answered};

/// The live route table, swapped whole on reload.
pub(crate) type SharedTable = Arc<RwLock<Arc<Table<Arc<ActiveRoute>>>>>;

/// Picks the route of each request (20404 / 20002 when none) and hands it to the stack.
#[derive(Clone, Debug)]
pub(crate) struct RouteLayer {
    pub(crate) table: SharedTable,
    pub(crate) trusted: Arc<[IpNet]>,
}

#[derive(Clone, Debug)]
pub(crate) struct RouteService<S> {
    inner: S,
    table: SharedTable,
    trusted: Arc<[IpNet]>,
}

// === impl RouteLayer ===

impl<S> Layer<S> for RouteLayer {
    type Service = RouteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RouteService {
            inner,
            table: self.table.clone(),
            trusted: self.trusted.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for RouteService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        // The route, its auth level and the forwarded path all come from the canonical path
        // (already canonical behind the binary's listeners: then this only scans it).
        if let Err(e) = tongban_core::path::normalize_uri(req.uri_mut()) {
            return answered(
                ApiError::new(Code::BAD_PARAMETER)
                    .with_msg(e.to_string())
                    .into_response(),
            );
        }
        let table = self
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| req.uri().host());
        let found = match table.find(host, req.method(), req.uri().path()) {
            Match::Found(r) => Ok(r.clone()),
            Match::WrongMethod => Err(Code::METHOD_NOT_SUPPORTED),
            Match::None => Err(Code::NOT_FOUND),
        };
        match found {
            Ok(route) => {
                let client = req.extensions().get::<ConnectInfo<Peer>>().map(|c| {
                    let xff = || {
                        req.headers()
                            .get(&X_FORWARDED_FOR)
                            .and_then(|v| v.to_str().ok())
                    };
                    client_ip(&c.0, xff, &self.trusted)
                });
                req.extensions_mut().insert(Routed {
                    route,
                    client,
                    caller: None,
                });
                self.inner.call(req)
            }
            Err(code) => answered(ApiError::new(code).into_response()),
        }
    }
}
