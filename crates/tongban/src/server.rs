//! A listener: accepts TCP, completes TLS within a deadline, serves HTTP/1.1 (our own
//! connection loop, `tongban_http1::server`) and HTTP/2 (hyper; chosen by ALPN over TLS, by its preface over plain
//! TCP) with the application, and on shutdown stops accepting and lets in-flight requests
//! finish.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tongban_core::net::Peer;
use tongban_http1::server as h1;
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
    // HTTP/2 connections drain through hyper's watcher, HTTP/1.1 ones by holding a sender of
    // `alive` until they end.
    let graceful = GracefulShutdown::new();
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    // hyper serves only the connections that speak HTTP/2.
    let builder = Arc::new(Builder::new(TokioExecutor::new()).http2_only());
    let h1_settings = Arc::new(h1::Settings {
        header_read_timeout: HEADER_READ_TIMEOUT,
        body_read_timeout: HEADER_READ_TIMEOUT,
    });
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
        let conn = Conn {
            peer: Peer::new(peer),
            app: app.clone(),
            builder: builder.clone(),
            graceful: graceful.watcher(),
            h1: h1_settings.clone(),
            shutdown: shutdown.clone(),
            _alive: alive.clone(),
        };
        let tls = tls.clone();
        tokio::spawn(Stamping::new(async move {
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
                    let mut stream = stream;
                    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                        conn.serve(stream, BytesMut::new(), true).await
                    } else {
                        // Without ALPN a client may still start HTTP/2 with its preface.
                        match sniff(&mut stream, conn.shutdown.clone()).await {
                            Ok(Some((first, h2))) => conn.serve(stream, first, h2).await,
                            Ok(None) => return,
                            Err(error) => Err(error.into()),
                        }
                    }
                }
                None => {
                    let mut tcp = tcp;
                    match sniff(&mut tcp, conn.shutdown.clone()).await {
                        Ok(Some((first, h2))) => conn.serve(tcp, first, h2).await,
                        Ok(None) => return,
                        Err(error) => Err(error.into()),
                    }
                }
            };
            if let Err(error) = result {
                tracing::debug!(listener = name, %error, "Connection ended with an error.");
            }
        }));
    }
    // Closing the socket now makes new clients fail fast instead of queueing in the backlog.
    drop(listener);
    tracing::info!(listener = name, "Stopped accepting; draining connections.");
    drop(alive);
    let drained = async {
        graceful.shutdown().await;
        let _ = all_ended.recv().await;
    };
    tokio::select! {
        () = drained => {
            tracing::info!(listener = name, "All connections drained.");
        }
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(listener = name, grace_secs = grace.as_secs(), "Grace period over; closing remaining connections.");
        }
    }
}

/// A client gets this long to send its request headers, and may pause its body this long
/// between two reads (slow-loris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

pin_project_lite::pin_project! {
    /// A connection's task, each poll of it stamped (`tongban_core::clock`): what it does
    /// between two waits (a request read and sent on, or an answer received and written)
    /// reads the clock once instead of at every policy, timer and log line.
    struct Stamping<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Stamping<F> {
    fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<F: std::future::Future> std::future::Future for Stamping<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _poll = tongban_core::clock::Stamped::enter();
        self.project().inner.poll(cx)
    }
}

/// What serving one accepted connection needs.
struct Conn {
    peer: Peer,
    app: App,
    builder: Arc<Builder<TokioExecutor>>,
    graceful: hyper_util::server::graceful::Watcher,
    h1: Arc<h1::Settings>,
    shutdown: watch::Receiver<bool>,
    /// Held until the connection ends: the listener drains until every one is dropped.
    _alive: mpsc::Sender<()>,
}

impl Conn {
    /// Serves `io`, whose first bytes `first` were already read, as HTTP/2 when `h2`, else as
    /// HTTP/1.1.
    async fn serve<IO>(self, io: IO, first: BytesMut, h2: bool) -> Result<(), BoxError>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if !h2 {
            return Ok(h1::serve(io, first, self.app, self.peer, &self.h1, self.shutdown).await?);
        }
        let peer = self.peer;
        let svc = self.app.map_request(move |req: http::Request<Incoming>| {
            let mut req = req.map(axum::body::Body::new);
            req.extensions_mut().insert(ConnectInfo(peer));
            req
        });
        let io = TokioIo::new(Prefixed {
            prefix: first.freeze(),
            io,
        });
        let conn = self
            .builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(svc));
        self.graceful.watch(conn.into_owned()).await
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads a connection's first bytes: whether they are HTTP/2's preface, and the bytes.
/// `None` when the client closed or sent nothing within the header timeout.
async fn sniff<IO: AsyncRead + Unpin>(
    io: &mut IO,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<Option<(BytesMut, bool)>> {
    let mut first = BytesMut::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + HEADER_READ_TIMEOUT;
    loop {
        let read = tokio::select! {
            r = tokio::time::timeout_at(deadline, io.read_buf(&mut first)) => r,
            // A connection that has sent nothing yet is idle: shutdown does not wait for it.
            _ = shutdown.wait_for(|s| *s), if first.is_empty() => return Ok(None),
        };
        match read {
            Ok(Ok(0)) | Err(_) => return Ok(None),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        let n = first.len().min(H2_PREFACE.len());
        if first[..n] != H2_PREFACE[..n] {
            return Ok(Some((first, false)));
        }
        if n == H2_PREFACE.len() {
            return Ok(Some((first, true)));
        }
    }
}

/// HTTP/2's connection preface: what a client speaking it over plain TCP sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A connection whose first bytes were already read (to tell the protocol): they are read
/// again first.
struct Prefixed<IO> {
    prefix: Bytes,
    io: IO,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Prefixed<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Prefixed<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
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
