//! A listener: accepts TCP, completes TLS within a deadline, serves HTTP/1.1 and HTTP/2 with
//! the application, and on shutdown stops accepting and lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// One listener's settings.
pub struct Listener {
    /// `public` or `admin`, for logs.
    pub name: &'static str,
    pub tcp: TcpListener,
    /// `None` serves plain HTTP (test profile, loopback only: checked by config validation).
    pub tls: Option<TlsAcceptor>,
    pub app: Router,
    pub handshake_timeout: Duration,
    pub grace: Duration,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// Serves until `shutdown` turns true, then drains connections for at most the grace period.
pub async fn run(l: Listener, mut shutdown: watch::Receiver<bool>) {
    let Listener {
        name,
        tcp: listener,
        tls,
        app,
        handshake_timeout,
        grace,
    } = l;
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Slow-loris: a client gets this long to send its request headers.
        .header_read_timeout(Duration::from_secs(30));
    let builder = Arc::new(builder);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = name, %error, "Accept failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = async { let _ = shutdown.wait_for(|s| *s).await; } => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let svc = app.map_request(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let svc = TowerToHyperService::new(svc);
            let result = match tls {
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(error)) => {
                                tracing::debug!(listener = name, %error, "TLS handshake failed.");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(listener = name, "TLS handshake timed out.");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
                    watcher.watch(conn.into_owned()).await
                }
                None => {
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tcp), svc);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(error) = result {
                tracing::debug!(listener = name, %error, "Connection ended with an error.");
            }
        });
    }
    // Closing the socket now makes new clients fail fast instead of queueing in the backlog.
    drop(listener);
    tracing::info!(listener = name, "Stopped accepting; draining connections.");
    tokio::select! {
        _ = graceful.shutdown() => {
            tracing::info!(listener = name, "All connections drained.");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, grace_secs = grace.as_secs(), "Grace period over; closing remaining connections.");
        }
    }
}

/// Binds a TCP listener with a clear error naming the address.
pub async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({name} listener): {e}"))
}
