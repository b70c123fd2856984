//! HTTP/1.1 connections to upstream instances, pooled per address and driven by the task of
//! the request using them.
//!
//! A general client runs each connection as a task of its own and hands requests and answers
//! to it through channels: two task wake-ups per request, often across threads. Here the
//! request's task polls the connection itself while it waits, so an answer is read by the
//! task that needs it. An idle connection is polled once before reuse: one the upstream has
//! closed is found then and dropped, instead of failing the request sent on it. A request that
//! hyper hands back unsent (the connection ended before writing it) goes out on a new
//! connection, so such a failure never reaches the retry policy.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::normalize::Failure;

/// Idle connections older than this are closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A whole upstream answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// Idle connections per thread and upstream address.
pub(crate) struct Pool {
    /// Kept per thread: a connection is registered with the event loop of the thread that
    /// opened it, and the server runs one event loop per thread, so reusing it on its own
    /// thread keeps its wake-ups there.
    idle: Mutex<PerThread>,
    max_idle_per_host: usize,
    connect_timeout: Duration,
}

type Hasher = foldhash::fast::RandomState;
type PerThread = HashMap<ThreadId, HashMap<String, Vec<Upstream>, Hasher>, Hasher>;

/// One connection: the handle requests are sent on, and the connection it drives.
struct Upstream {
    sender: SendRequest<Full<Bytes>>,
    link: Link,
    idle_since: Instant,
}

/// The connection itself, polled by whichever task uses it.
struct Link {
    conn: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
    /// The connection has ended (closed or failed); it is never reused.
    ended: bool,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

// === impl Pool ===

impl Pool {
    pub(crate) fn new(max_idle_per_host: usize, connect_timeout: Duration) -> Self {
        Self {
            idle: Mutex::new(HashMap::default()),
            max_idle_per_host,
            connect_timeout,
        }
    }

    /// Sends `req` (origin-form URI) to `address` and reads the whole answer, at most
    /// `max_body` bytes of it.
    pub(crate) async fn send(
        &self,
        address: &str,
        mut req: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<Answer, Failure> {
        if !req.headers().contains_key(http::header::HOST)
            && let Ok(v) = http::HeaderValue::from_str(address)
        {
            req.headers_mut().insert(http::header::HOST, v);
        }
        // A request comes back unsent only when its connection ended before writing it; a
        // fresh connection gets it then (once: a fresh connection that ends at once fails).
        for fresh in [false, true] {
            // The retry goes out on a new connection without touching the idle ones.
            let pooled = if fresh { None } else { self.checkout(address) };
            let mut up = match pooled {
                Some(up) => up,
                None => self.connect(address).await?,
            };
            let Upstream { sender, link, .. } = &mut up;
            if link
                .drive(std::future::poll_fn(|cx| sender.poll_ready(cx)))
                .await
                .is_err()
            {
                if fresh {
                    return Err(Failure::Connect);
                }
                continue;
            }
            let resp = match link.drive(sender.try_send_request(req)).await {
                Ok(resp) => resp,
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !fresh => {
                        req = unsent;
                        continue;
                    }
                    _ => return Err(Failure::Broken),
                },
            };
            let (parts, body) = resp.into_parts();
            let body = link
                .drive(Limited::new(body, max_body).collect())
                .await
                .map_err(|_| Failure::Broken)?
                .to_bytes();
            self.checkin(address, up);
            return Ok(Answer {
                status: parts.status,
                headers: parts.headers,
                body,
            });
        }
        Err(Failure::Broken)
    }

    /// A live idle connection to `address`, if there is one.
    fn checkout(&self, address: &str) -> Option<Upstream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle
            .get_mut(&std::thread::current().id())?
            .get_mut(address)?;
        while let Some(mut up) = list.pop() {
            if up.idle_since.elapsed() < IDLE_TIMEOUT && up.is_alive() {
                return Some(up);
            }
        }
        None
    }

    fn checkin(&self, address: &str, mut up: Upstream) {
        if up.link.ended || up.sender.is_closed() {
            return;
        }
        up.idle_since = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let mine = idle.entry(std::thread::current().id()).or_default();
        let list = match mine.get_mut(address) {
            Some(l) => l,
            None => mine.entry(address.to_owned()).or_default(),
        };
        if list.len() < self.max_idle_per_host {
            list.push(up);
        }
    }

    async fn connect(&self, address: &str) -> Result<Upstream, Failure> {
        let tcp =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => tcp,
                Ok(Err(_)) => return Err(Failure::Connect),
                Err(_) => return Err(Failure::ConnectTimeout),
            };
        let _ = tcp.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|_| Failure::Connect)?;
        Ok(Upstream {
            sender,
            link: Link {
                conn: Box::pin(conn),
                ended: false,
            },
            idle_since: Instant::now(),
        })
    }
}

// === impl Upstream ===

impl Upstream {
    /// Whether an idle connection is still usable: polling it once finds a close.
    fn is_alive(&mut self) -> bool {
        self.link.poll(&mut Context::from_waker(Waker::noop()));
        !self.link.ended && !self.sender.is_closed()
    }
}

// === impl Link ===

impl Link {
    /// Polls `fut` to completion, driving the connection meanwhile. If the connection ends
    /// first, `fut` ends with hyper's error for it.
    async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                return Poll::Ready(out);
            }
            // Writes what `fut` queued, reads what answers it; then `fut` may be done.
            self.poll(cx);
            fut.as_mut().poll(cx)
        })
        .await
    }

    fn poll(&mut self, cx: &mut Context<'_>) {
        if self.ended {
            return;
        }
        if let Poll::Ready(result) = self.conn.as_mut().poll(cx) {
            if let Err(error) = result {
                tracing::debug!(%error, "Upstream connection ended.");
            }
            self.ended = true;
        }
    }
}
