//! A listener: accepts TCP, completes TLS within a deadline, serves HTTP/1.1 and HTTP/2 with
//! the application, and on shutdown stops accepting and lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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

use crate::app::App;

/// One listener's settings.
pub struct Listener {
    /// `public` or `admin`, for logs.
    pub name: &'static str,
    pub tcp: TcpListener,
    /// `None` serves plain HTTP (test profile, loopback only: checked by config validation).
    pub tls: Option<TlsAcceptor>,
    pub app: App,
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
            let svc = app.map_request(move |req: http::Request<Incoming>| {
                let mut req = req.map(axum::body::Body::new);
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

/// Serves `l` on `workers` threads, each running its own single-threaded event loop on its own
/// socket bound to the same address (`SO_REUSEPORT`: the kernel spreads connections across
/// them). A request then stays on one thread from accept to answer, without the wake-ups and
/// task hand-offs between threads of a shared runtime. Returns once every thread has drained.
pub async fn run_per_core(l: Listener, workers: usize, shutdown: watch::Receiver<bool>) {
    let workers = workers.max(1);
    let addr = match l.tcp.local_addr() {
        Ok(a) => a,
        Err(error) => {
            tracing::error!(listener = l.name, %error, "Listener has no address.");
            return;
        }
    };
    // The listener already bound (with SO_REUSEPORT, by `bind_shared`) serves the first
    // thread; the others bind their own sockets to the same address.
    let mut sockets = Vec::with_capacity(workers);
    match l.tcp.into_std() {
        Ok(s) => sockets.push(s),
        Err(error) => {
            tracing::error!(listener = l.name, %error, "Cannot hand the listener to a worker.");
            return;
        }
    }
    for _ in 1..workers {
        match reuseport_socket(addr).and_then(|t| t.into_std()) {
            Ok(s) => sockets.push(s),
            Err(error) => {
                tracing::warn!(listener = l.name, %error, "Cannot open another socket; serving on fewer threads.");
                break;
            }
        }
    }
    let mut threads = Vec::with_capacity(sockets.len());
    for (i, socket) in sockets.into_iter().enumerate() {
        let (name, tls, app, rx) = (l.name, l.tls.clone(), l.app.clone(), shutdown.clone());
        let (handshake_timeout, grace) = (l.handshake_timeout, l.grace);
        let spawned = std::thread::Builder::new()
            .name(format!("tongban-{name}-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(error) => {
                        tracing::error!(listener = name, %error, "Cannot start a worker's event loop.");
                        return;
                    }
                };
                rt.block_on(async move {
                    let tcp = match TcpListener::from_std(socket) {
                        Ok(t) => t,
                        Err(error) => {
                            tracing::error!(listener = name, %error, "Cannot register the socket.");
                            return;
                        }
                    };
                    let l = Listener {
                        name,
                        tcp,
                        tls,
                        app,
                        handshake_timeout,
                        grace,
                    };
                    run(l, rx).await;
                });
            });
        match spawned {
            Ok(t) => threads.push(t),
            Err(error) => {
                tracing::error!(listener = l.name, %error, "Cannot start a worker thread.")
            }
        }
    }
    let _ = tokio::task::spawn_blocking(move || {
        for t in threads {
            let _ = t.join();
        }
    })
    .await;
}

/// Binds a listener other sockets may share (`SO_REUSEPORT`), with a clear error naming the
/// address.
pub async fn bind_shared(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let err = |e: std::io::Error| anyhow::anyhow!("cannot listen on {addr} ({name} listener): {e}");
    // A plain bind first: with SO_REUSEPORT alone, a second instance started by mistake on the
    // same port would silently share its traffic instead of failing.
    let probe = std::net::TcpListener::bind(addr).map_err(err)?;
    let actual = probe.local_addr().map_err(err)?;
    drop(probe);
    reuseport_socket(actual).map_err(err)
}

fn reuseport_socket(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Binds a TCP listener with a clear error naming the address.
pub async fn bind(name: &str, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} ({name} listener): {e}"))
}
