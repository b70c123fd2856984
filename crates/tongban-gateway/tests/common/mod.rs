//! Test helpers: upstreams and gateways on real sockets (127.0.0.1:0), and a client.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tongban_core::clock::SystemClock;
use tongban_gateway::auth::AnonymousOnly;
use tongban_gateway::limit::LocalLimiter;
use tongban_gateway::{Gateway, GatewayOptions, RouteSpec};

/// How an upstream behaves.
#[derive(Debug, Default)]
pub struct Behaviour {
    pub hang: AtomicBool,
    pub fail_500: AtomicBool,
    pub hits: AtomicU64,
}

/// An upstream server; dropping or killing it closes the listener and every connection.
#[derive(Debug)]
pub struct Upstream {
    pub addr: SocketAddr,
    pub behaviour: Arc<Behaviour>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Stops the upstream and returns once its port refuses connections: `abort` only asks the
    /// runtime to drop the task, which it may do a moment later on another thread.
    pub async fn kill(&self) {
        self.task.abort();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(self.addr).await.is_err() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("upstream {} still accepts after being killed", self.addr);
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An upstream answering `{"code":0,"data":{"instance":NAME,"path":..,"query":..,
/// "forwarded_for":..}}` on every path, plus
/// `/answers/html` (HTML), `/answers/text-500` (plain 500), `/answers/gzip` (a gzip envelope).
pub async fn upstream(name: &'static str) -> Upstream {
    let behaviour = Arc::new(Behaviour::default());
    let app = Router::new()
        .route(
            "/answers/html",
            axum::routing::any(|| async { ([("content-type", "text/html")], "<html>hi</html>") }),
        )
        .route(
            "/answers/text-500",
            axum::routing::any(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom") }),
        )
        .route("/answers/gzip", axum::routing::any(gzip_envelope))
        .fallback(
            move |State(b): State<Arc<Behaviour>>, req: Request<Body>| async move {
                b.hits.fetch_add(1, Ordering::SeqCst);
                if b.hang.load(Ordering::SeqCst) {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                if b.fail_500.load(Ordering::SeqCst) {
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        r#"{"code":10000,"msg":"x"}"#,
                    )
                        .into_response();
                }
                let path = req.uri().path().to_owned();
                let query = req.uri().query().map(str::to_owned);
                let forwarded_for = req
                    .headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                axum::Json(serde_json::json!({"code": 0, "data": {"instance": name, "path": path, "query": query, "forwarded_for": forwarded_for}}))
                    .into_response()
            },
        )
        .with_state(behaviour.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(serve(listener, app));
    Upstream {
        addr,
        behaviour,
        task,
    }
}

async fn gzip_envelope() -> Response {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(br#"{"code":0,"data":"zipped"}"#)
        .expect("gzip");
    let body = enc.finish().expect("gzip");
    (
        [
            ("content-encoding", "gzip"),
            ("content-type", "application/json"),
        ],
        body,
    )
        .into_response()
}

/// Serves `app`; connections live in a JoinSet owned by this task, so aborting the task
/// closes them all (a killed process, as far as clients can tell).
pub async fn serve(listener: TcpListener, app: Router) {
    let mut conns = JoinSet::new();
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let app = app.clone();
        // As the server does: the peer's address, with its text, once per connection.
        let peer = tongban_core::net::Peer::new(peer);
        conns.spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                let app = app.clone();
                async move {
                    use tower::ServiceExt;
                    app.oneshot(req.map(Body::new)).await
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct RunningGateway {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    task: JoinHandle<()>,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn options() -> GatewayOptions {
    GatewayOptions::new(
        Arc::new(SystemClock),
        Arc::new(LocalLimiter::default()),
        Arc::new(AnonymousOnly),
    )
}

/// Serves the gateway (as the binary will: the fallback of the public router).
pub async fn run_gateway(gateway: Gateway) -> RunningGateway {
    let app = Router::new().fallback_service(gateway.service());
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(serve(listener, app));
    RunningGateway {
        addr,
        gateway,
        task,
    }
}

pub fn route(value: serde_json::Value) -> RouteSpec {
    serde_json::from_value(value).expect("route spec")
}

pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// Sends a request; returns status, headers and the body as JSON (Null if not JSON).
pub async fn send(
    c: &Client<HttpConnector, Full<Bytes>>,
    method: &str,
    url: String,
    body: &str,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .expect("request");
    request(c, req).await
}

/// Sends `req` as built; returns status, headers and the body as JSON (Null if not JSON).
pub async fn request(
    c: &Client<HttpConnector, Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, serde_json::Value) {
    let resp = c.request(req).await.expect("gateway answers");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

pub async fn get(
    c: &Client<HttpConnector, Full<Bytes>>,
    url: String,
) -> (StatusCode, serde_json::Value) {
    let (s, _, v) = send(c, "GET", url, "").await;
    (s, v)
}
