//! A listener: accepts TCP, completes TLS within a deadline, serves HTTP/1.1 (our own
//! connection loop, `tongban_http1::server`) and HTTP/2 (hyper; chosen by ALPN over TLS, by its
//! preface over plain TCP) with the application, closes connections that sit idle or wait on a
//! client too long (`[server]`'s timeouts, for both protocols), and on shutdown stops accepting
//! and lets in-flight requests finish. [`tls`] sets up the certificate the listeners serve.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::response::Response;
use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;
use tongban_core::config::ServerConfig;
use tongban_core::net::Peer;
use tongban_http1::server as h1;
use tower::ServiceExt;
use tower::util::{BoxCloneSyncService, Oneshot};

pub mod tls;

/// A listener's whole application, as the binary composes it.
pub type App = BoxCloneSyncService<axum::extract::Request, Response, Infallible>;

/// A listener that cannot be bound, named with its address.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr} ({listener} listener): {source}")]
pub struct BindError {
    pub addr: SocketAddr,
    pub listener: String,
    #[source]
    pub source: std::io::Error,
}

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
    pub limits: Limits,
}

/// How long a connection may wait on its client, and how much one HTTP/2 connection may hold:
/// `[server]`'s settings of the same names (their doc comments are the reference).
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub h2_max_concurrent_streams: u32,
    pub h2_max_header_list_bytes: u32,
    pub h2_keepalive_interval: Duration,
    pub h2_keepalive_timeout: Duration,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("name", &self.name)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Limits {
    /// The limits `[server]` sets.
    pub fn from_config(s: &ServerConfig) -> Self {
        Self {
            header_read_timeout: Duration::from_secs(s.header_read_timeout_secs),
            idle_timeout: Duration::from_secs(s.idle_timeout_secs),
            body_read_timeout: Duration::from_secs(s.body_read_timeout_secs),
            h2_max_concurrent_streams: s.h2_max_concurrent_streams,
            h2_max_header_list_bytes: s.h2_max_header_list_bytes,
            h2_keepalive_interval: Duration::from_secs(s.h2_keepalive_interval_secs),
            h2_keepalive_timeout: Duration::from_secs(s.h2_keepalive_timeout_secs),
        }
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
        limits,
    } = l;
    // Every connection holds a sender of `alive` until it ends: the drain waits for them all.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let protocols = Arc::new(Protocols::new(limits));
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
            protocols: protocols.clone(),
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
                        match sniff(&mut stream, &conn).await {
                            Ok(Some((first, h2))) => conn.serve(stream, first, h2).await,
                            Ok(None) => return,
                            Err(error) => Err(error.into()),
                        }
                    }
                }
                None => {
                    let mut tcp = tcp;
                    match sniff(&mut tcp, &conn).await {
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

/// What every connection of a listener is served with.
struct Protocols {
    h1: h1::Settings,
    /// Serves the connections that speak HTTP/2.
    h2: http2::Builder<TokioExecutor>,
    limits: Limits,
}

impl Protocols {
    fn new(limits: Limits) -> Self {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(limits.h2_max_concurrent_streams)
            .max_header_list_size(limits.h2_max_header_list_bytes)
            .keep_alive_interval(limits.h2_keepalive_interval)
            .keep_alive_timeout(limits.h2_keepalive_timeout);
        Self {
            h1: h1::Settings {
                header_read_timeout: limits.header_read_timeout,
                idle_timeout: limits.idle_timeout,
                body_read_timeout: limits.body_read_timeout,
            },
            h2,
            limits,
        }
    }
}

/// What serving one accepted connection needs.
struct Conn {
    peer: Peer,
    app: App,
    protocols: Arc<Protocols>,
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
            let h1 = &self.protocols.h1;
            return Ok(h1::serve(io, first, self.app, self.peer, h1, self.shutdown).await?);
        }
        let Conn {
            peer,
            app,
            protocols,
            mut shutdown,
            _alive,
        } = self;
        let limits = &protocols.limits;
        let streams = Arc::new(Streams::new(Instant::now()));
        let svc = H2Service {
            app,
            peer,
            body_read_timeout: limits.body_read_timeout,
            streams: streams.clone(),
        };
        let io = TokioIo::new(Prefixed {
            prefix: first.freeze(),
            io,
        });
        let conn = protocols.h2.serve_connection(io, svc);
        tokio::pin!(conn);
        // hyper has no idle timeout for HTTP/2: this timer looks at the connection's streams
        // once per idle period (or when the last one closed plus the period), and closes it
        // gracefully (GOAWAY, then close) when none has been open for that long.
        let timer = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(timer);
        let mut phase = Phase::Serving;
        loop {
            tokio::select! {
                r = conn.as_mut() => return r.map_err(Into::into),
                () = &mut timer, if phase != Phase::Draining => {
                    let now = Instant::now();
                    match (phase, streams.busy_until(limits.idle_timeout, now)) {
                        (Phase::Serving, Some(until)) => timer.as_mut().reset(until.into()),
                        (Phase::Serving, None) => {
                            tracing::debug!("Closing an idle HTTP/2 connection.");
                            conn.as_mut().graceful_shutdown();
                            phase = Phase::Closing;
                            timer.as_mut().reset((now + limits.h2_keepalive_timeout).into());
                        }
                        // The GOAWAY's PING went unanswered (or a stream that crossed it is
                        // still running: it gets its own timeouts' worth).
                        (Phase::Closing, _) if streams.open() == 0 => return Ok(()),
                        (Phase::Closing, _) => {
                            timer.as_mut().reset((now + limits.h2_keepalive_timeout).into());
                        }
                        (Phase::Draining, _) => {}
                    }
                }
                _ = shutdown.wait_for(|s| *s), if phase == Phase::Serving => {
                    // Open streams finish within the listener's grace period.
                    conn.as_mut().graceful_shutdown();
                    phase = Phase::Draining;
                }
            }
        }
    }
}

/// Where an HTTP/2 connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Idle too long: GOAWAY sent, waiting for the client's PING answer.
    Closing,
    /// Shutting down: open streams finish, no new ones start.
    Draining,
}

/// The streams open on one HTTP/2 connection, and when the last one closed: what tells an idle
/// connection from a busy one. Streams run in tasks of their own, so the counts are atomics.
#[derive(Debug)]
struct Streams {
    open: AtomicUsize,
    /// Milliseconds from `start` to when a stream last closed.
    last_closed_ms: AtomicU64,
    start: Instant,
}

impl Streams {
    fn new(start: Instant) -> Self {
        Self {
            open: AtomicUsize::new(0),
            last_closed_ms: AtomicU64::new(0),
            start,
        }
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Counts a stream open until the returned guard drops.
    fn enter(self: &Arc<Self>) -> Open {
        self.open.fetch_add(1, Ordering::AcqRel);
        Open(self.clone())
    }

    /// `None` when no stream has been open for `idle` at `now`; else when to look again.
    fn busy_until(&self, idle: Duration, now: Instant) -> Option<Instant> {
        if self.open() > 0 {
            return Some(now + idle);
        }
        let since = self.start + Duration::from_millis(self.last_closed_ms.load(Ordering::Relaxed));
        let until = since + idle;
        (until > now).then_some(until)
    }
}

/// A stream counted open in its connection's [`Streams`].
#[derive(Debug)]
struct Open(Arc<Streams>);

impl Drop for Open {
    fn drop(&mut self) {
        let s = &self.0;
        let ms = u64::try_from(s.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        // The time first, then the count (released): whoever sees no stream open sees when the
        // last one closed. `max`: two streams closing together may store out of order.
        s.last_closed_ms.fetch_max(ms, Ordering::Relaxed);
        s.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The application as hyper calls it on an HTTP/2 connection: each request's body paced by
/// the body read timeout, and each stream counted open from its request until its answer has
/// been sent (or the stream reset).
struct H2Service {
    app: App,
    peer: Peer,
    body_read_timeout: Duration,
    streams: Arc<Streams>,
}

impl hyper::service::Service<http::Request<Incoming>> for H2Service {
    type Response = http::Response<Tracked<axum::body::Body>>;
    type Error = Infallible;
    type Future = H2Call;

    fn call(&self, req: http::Request<Incoming>) -> H2Call {
        let open = self.streams.enter();
        let timeout = self.body_read_timeout;
        let unread = Arc::new(std::sync::Mutex::new(None));
        let mut req = req.map(|b| {
            let body = Leftover {
                body: Some(b),
                unread: unread.clone(),
            };
            axum::body::Body::new(ReadTimeout::new(body, timeout))
        });
        req.extensions_mut().insert(ConnectInfo(self.peer));
        H2Call {
            call: self.app.clone().oneshot(req),
            open: Some(open),
            unread,
            draining: None,
        }
    }
}

/// How much of a request body left unread is read and dropped before the answer is sent.
const DRAIN_BYTES: usize = 64 * 1024;
/// How long the client gets to send that much.
const DRAIN_TIME: Duration = Duration::from_secs(1);

/// A request body that, dropped before its end, hands what is left of it to its request's
/// [`H2Call`]: an answer sent while the client is still sending makes the server reset the
/// stream (RFC 9113 §8.1), and some clients lose the answer with the reset.
struct Leftover {
    body: Option<Incoming>,
    unread: Arc<std::sync::Mutex<Option<Incoming>>>,
}

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(b) = self.body.take()
            && !b.is_end_stream()
            && let Ok(mut slot) = self.unread.lock()
        {
            *slot = Some(b);
        }
    }
}

impl HttpBody for Leftover {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut().body.as_mut() {
            Some(b) => Pin::new(b).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint())
    }
}

/// An answer waiting for the rest of its request's body to be read and dropped.
struct Draining {
    resp: Response,
    body: Incoming,
    read: usize,
    until: Pin<Box<Sleep>>,
}

pin_project_lite::pin_project! {
    /// One HTTP/2 request in the application; its answer carries the stream's [`Open`] on.
    /// An answer given before the request's body was read waits for a bounded rest of that
    /// body to arrive first (as nginx and hyper's HTTP/1.1 server drain it), so the stream
    /// ends cleanly instead of with a reset that can cost the client the answer.
    struct H2Call {
        #[pin]
        call: Oneshot<App, axum::extract::Request>,
        open: Option<Open>,
        unread: Arc<std::sync::Mutex<Option<Incoming>>>,
        draining: Option<Draining>,
    }
}

impl std::future::Future for H2Call {
    type Output = Result<http::Response<Tracked<axum::body::Body>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.draining.is_none() {
            let resp: Response = match ready!(this.call.poll(cx)) {
                Ok(r) => r,
                Err(never) => match never {},
            };
            let left = this.unread.lock().ok().and_then(|mut s| s.take());
            match left {
                Some(body) => {
                    *this.draining = Some(Draining {
                        resp,
                        body,
                        read: 0,
                        until: Box::pin(tokio::time::sleep(DRAIN_TIME)),
                    });
                }
                None => {
                    let open = this.open.take();
                    return Poll::Ready(Ok(resp.map(|body| Tracked { body, _open: open })));
                }
            }
        }
        let Some(d) = this.draining.as_mut() else {
            return Poll::Pending;
        };
        // Read and drop the rest until it ends, the bound is reached, it fails, or time is up.
        loop {
            if d.read >= DRAIN_BYTES
                || d.body.is_end_stream()
                || d.until.as_mut().poll(cx).is_ready()
            {
                break;
            }
            match Pin::new(&mut d.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(f))) => {
                    d.read += f.data_ref().map_or(0, Bytes::len);
                }
                Poll::Ready(Some(Err(_)) | None) => break,
                Poll::Pending => return Poll::Pending,
            }
        }
        let Some(d) = this.draining.take() else {
            return Poll::Pending;
        };
        let open = this.open.take();
        Poll::Ready(Ok(d.resp.map(|body| Tracked { body, _open: open })))
    }
}

pin_project_lite::pin_project! {
    /// An answer's body that keeps its stream counted open until hyper drops it, sent whole.
    struct Tracked<B> {
        #[pin]
        body: B,
        _open: Option<Open>,
    }
}

impl<B: HttpBody> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        self.project().body.poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails when, being read, it pauses longer than `limit` (nginx's
    /// `client_body_timeout`): a client that never sends its body cannot hold its request, and
    /// what the request holds, for as long as it likes. The application then answers (20000),
    /// as it does for a body cut off. The clock runs only while the application waits for the
    /// body, not while it does something else.
    struct ReadTimeout<B> {
        #[pin]
        body: B,
        // One timer for the body, moved for each wait, created at the first.
        #[pin]
        timer: Option<Sleep>,
        armed: bool,
        limit: Duration,
    }
}

impl<B> ReadTimeout<B> {
    fn new(body: B, limit: Duration) -> Self {
        Self {
            body,
            timer: None,
            armed: false,
            limit,
        }
    }
}

impl<B> HttpBody for ReadTimeout<B>
where
    B: HttpBody,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, BoxError>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.body.poll_frame(cx) {
            *this.armed = false;
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        if !*this.armed {
            let deadline = tokio::time::Instant::now() + *this.limit;
            match this.timer.as_mut().as_pin_mut() {
                Some(t) => t.reset(deadline),
                None => this.timer.set(Some(tokio::time::sleep_until(deadline))),
            }
            *this.armed = true;
        }
        if let Some(t) = this.timer.as_pin_mut()
            && t.poll(cx).is_ready()
        {
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "request body timed out");
            return Poll::Ready(Some(Err(e.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Reads a connection's first bytes: whether they are HTTP/2's preface, and the bytes.
/// `None` when the client closed or sent nothing within the header timeout.
async fn sniff<IO: AsyncRead + Unpin>(
    io: &mut IO,
    conn: &Conn,
) -> std::io::Result<Option<(BytesMut, bool)>> {
    let mut shutdown = conn.shutdown.clone();
    let mut first = BytesMut::with_capacity(4096);
    let deadline = tokio::time::Instant::now() + conn.protocols.limits.header_read_timeout;
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
            if self.prefix.is_empty() {
                // An emptied view still holds the sniffing buffer (4 KiB) for the connection's
                // life; an idle HTTP/2 connection is mostly such buffers.
                self.prefix = Bytes::new();
            }
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
        let (handshake_timeout, grace, limits) = (l.handshake_timeout, l.grace, l.limits.clone());
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
                        limits,
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
pub async fn bind_shared(name: &str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    let err = |e: std::io::Error| BindError {
        addr,
        listener: name.to_owned(),
        source: e,
    };
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
pub async fn bind(name: &str, addr: SocketAddr) -> Result<TcpListener, BindError> {
    TcpListener::bind(addr).await.map_err(|e| BindError {
        addr,
        listener: name.to_owned(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[test]
    fn a_connection_is_idle_once_no_stream_has_been_open_for_the_period() {
        let idle = Duration::from_secs(10);
        let now = Instant::now();
        let start = now.checked_sub(Duration::from_secs(100)).expect("uptime");
        let s = Arc::new(Streams::new(start));
        // No stream yet: idle since the connection began.
        let at = |secs| start + Duration::from_secs(secs);
        assert_eq!(s.busy_until(idle, at(3)), Some(at(10)));
        assert_eq!(s.busy_until(idle, at(10)), None);
        // A stream open: busy however long it runs; looked at again a period later.
        let open = s.enter();
        assert_eq!(s.busy_until(idle, at(1000)), Some(at(1010)));
        // Closed (about 100 s after the start): idle from then.
        drop(open);
        assert_eq!(s.open(), 0);
        assert!(s.busy_until(idle, at(105)).is_some_and(|t| t >= at(109)));
        assert_eq!(s.busy_until(idle, at(200)), None);
    }

    /// A body fed by a channel, one frame per message.
    struct Fed(mpsc::Receiver<Bytes>);

    impl HttpBody for Fed {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
        }
    }

    #[tokio::test]
    async fn a_body_fails_when_it_pauses_too_long_not_when_it_keeps_coming() {
        let limit = Duration::from_secs(1);
        // Five pieces a quarter of the limit apart: longer than the limit in all, never
        // between two reads.
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(limit / 4).await;
                if tx.send(Bytes::from_static(b"ab")).await.is_err() {
                    return;
                }
            }
        });
        let body = ReadTimeout::new(Fed(rx), limit).collect().await;
        assert_eq!(body.expect("whole body").to_bytes().len(), 10);

        // A body that stops: an error after the limit (bounded generously), not a wait for ever.
        let (tx, rx) = mpsc::channel(1);
        let read = ReadTimeout::new(Fed(rx), limit).collect();
        let ended = tokio::time::timeout(Duration::from_secs(10), read).await;
        let error = ended.expect("ended in time").expect_err("an error");
        assert!(error.to_string().contains("timed out"), "{error}");
        drop(tx);
    }
}
