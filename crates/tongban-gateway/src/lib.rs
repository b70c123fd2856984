//! The gateway's data path: routing, auth levels, rate and concurrency limits, circuit
//! breakers with fallbacks, balancing with outlier ejection, timeouts and retries, envelope
//! normalization and per-route metrics. Each policy is a tower layer whose decisions live in an
//! I/O-free module; [`gateway::Gateway::service`] stacks them in request-path order.
#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod balance;
mod body;
pub mod breaker;
pub mod client_ip;
pub mod concurrency;
pub mod context;
pub mod envelope;
pub mod gateway;
pub mod limit;
pub mod metrics;
pub mod normalize;
pub mod proxy;
pub mod respond;
pub mod retry;
pub mod route;
pub mod routed;
pub mod sign;
mod sync;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::response::Response;

pub use gateway::{Gateway, GatewayOptions, ROUTES_NAMESPACE};
pub use route::RouteSpec;

/// The future every gateway layer returns.
pub type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// A layer's answer given at once, without calling the next layer (a refusal, a fallback).
pub(crate) fn answered(resp: Response) -> BoxFuture {
    Box::pin(std::future::ready(Ok(resp)))
}
