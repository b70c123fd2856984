//! HTTP/1.1 connections to upstream instances, pooled per thread and address, spoken by the
//! request's own task (`tongban_http1::client` holds the protocol, without I/O).
//!
//! A general client (hyper's) runs each connection as a task of its own and hands requests and
//! answers to it through channels: a queue, a one-shot channel and two task wake-ups per
//! request, and a dispatcher built for streaming bodies both ways. The gateway has the whole
//! request before it sends and wants the whole answer before it judges it, so here the task
//! that needs the answer writes the request in one buffer and reads the answer itself.
//!
//! An idle connection is checked before reuse: one the upstream has closed (or that holds
//! bytes nobody asked for) is dropped, instead of failing the request sent on it. If a reused
//! connection still turns out closed before a byte of the answer arrives, the request goes
//! out once more on a new connection when that cannot repeat an action: it was not written at
//! all, or its method is idempotent. A POST the upstream may have received is never resent
//! here (the retry policy decides, and by default it does not).

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::normalize::Failure;
use crate::retry::is_idempotent;
use tongban_http1::{Chunked, client as h1};

/// Idle connections older than this are closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Largest answer head accepted, in bytes.
const MAX_HEAD: usize = 64 * 1024;

/// Bodies up to this size go out in the same write as the head.
const INLINE_BODY: usize = 16 * 1024;

/// Answer bodies up to this size are read into the connection's buffer; larger ones get their
/// own, so an idle connection keeps at most about this much.
const SMALL_BODY: usize = 64 * 1024;

/// A whole upstream answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

/// A request to send: the client's, already read whole and with hop-by-hop headers removed.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a Method,
    /// Origin form: path and query.
    pub(crate) target: &'a str,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) body: &'a Bytes,
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

/// A pooled connection and the timer that bounds each exchange on it.
struct Upstream {
    conn: Conn,
    /// Reset for each exchange. A try's end is nearly always later than the last one's, and
    /// then resetting the registered timer only moves its deadline (an atomic store), where a
    /// timer per try was an insert into the runtime's timer wheel and a removal (an earlier
    /// end, from a route with a shorter timeout to the same address, registers it anew).
    until: Pin<Box<Sleep>>,
    /// The start of the try that last used it (or that opened it): a little before it fell
    /// idle, so it is retired a little early rather than reading the clock again.
    idle_since: Instant,
}

/// One connection with its buffers.
struct Conn {
    io: TcpStream,
    /// Bytes read and not yet consumed (empty between exchanges: a connection left with
    /// bytes is not reused).
    rbuf: BytesMut,
    /// The request being written.
    wbuf: Vec<u8>,
}

/// How one exchange on a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Not a byte of the request was written.
    Unsent,
    /// The connection ended (or reset) before a byte of the answer arrived.
    NoAnswer,
    /// The answer broke off, could not be parsed, or was too large.
    Broken,
    /// No whole answer by the try's end.
    TimedOut,
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

    /// Sends `req` to `address` and reads the whole answer, at most `max_body` bytes of body,
    /// by `until` (else [`Failure::ReadTimeout`]); the try started at `now`.
    pub(crate) async fn send(
        &self,
        address: &str,
        req: &Outgoing<'_>,
        max_body: usize,
        now: Instant,
        until: Instant,
    ) -> Result<Answer, Failure> {
        if let Some(mut up) = self.checkout(address, now) {
            match up.exchange(address, req, max_body, until).await {
                Ok(done) => return Ok(self.finish(address, up, done, now)),
                // The upstream closed it as it was taken: a new connection gets the request
                // if sending it again cannot repeat an action.
                Err(Fault::Unsent) => {}
                Err(Fault::NoAnswer) if is_idempotent(req.method) => {}
                Err(Fault::NoAnswer | Fault::Broken) => return Err(Failure::Broken),
                Err(Fault::TimedOut) => return Err(Failure::ReadTimeout),
            }
        }
        let mut up = tokio::time::timeout_at(until, self.connect(address, now, until))
            .await
            .map_err(|_| Failure::ReadTimeout)??;
        match up.exchange(address, req, max_body, until).await {
            Ok(done) => Ok(self.finish(address, up, done, now)),
            // A new connection that takes nothing was as good as refused.
            Err(Fault::Unsent) => Err(Failure::Connect),
            Err(Fault::NoAnswer | Fault::Broken) => Err(Failure::Broken),
            Err(Fault::TimedOut) => Err(Failure::ReadTimeout),
        }
    }

    fn finish(
        &self,
        address: &str,
        mut up: Upstream,
        (answer, reusable): (Answer, bool),
        now: Instant,
    ) -> Answer {
        if reusable {
            up.idle_since = now;
            self.checkin(address, up);
        }
        answer
    }

    /// A live idle connection to `address`, if there is one.
    fn checkout(&self, address: &str, now: Instant) -> Option<Upstream> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let list = idle
            .get_mut(&std::thread::current().id())?
            .get_mut(address)?;
        while let Some(up) = list.pop() {
            if now.saturating_duration_since(up.idle_since) < IDLE_TIMEOUT && up.conn.is_alive() {
                return Some(up);
            }
        }
        None
    }

    fn checkin(&self, address: &str, up: Upstream) {
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

    async fn connect(
        &self,
        address: &str,
        now: Instant,
        until: Instant,
    ) -> Result<Upstream, Failure> {
        let io = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(address)).await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(_)) => return Err(Failure::Connect),
            Err(_) => return Err(Failure::ConnectTimeout),
        };
        let _ = io.set_nodelay(true);
        Ok(Upstream {
            conn: Conn {
                io,
                rbuf: BytesMut::new(),
                wbuf: Vec::new(),
            },
            until: Box::pin(tokio::time::sleep_until(until)),
            idle_since: now,
        })
    }
}

// === impl Upstream ===

impl Upstream {
    /// [`Conn::exchange`], given up at `until` (the connection is then out of step).
    async fn exchange(
        &mut self,
        host: &str,
        req: &Outgoing<'_>,
        max_body: usize,
        until: tokio::time::Instant,
    ) -> Result<(Answer, bool), Fault> {
        self.until.as_mut().reset(until);
        tokio::select! {
            biased;
            r = self.conn.exchange(host, req, max_body) => r,
            () = self.until.as_mut() => Err(Fault::TimedOut),
        }
    }
}

// === impl Conn ===

impl Conn {
    /// Whether an idle connection is still usable. The event loop has marked it readable if
    /// the upstream closed it or sent anything since; either way it is done with.
    fn is_alive(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    /// Writes `req`, reads the answer; the answer and whether the connection may be reused.
    async fn exchange(
        &mut self,
        host: &str,
        req: &Outgoing<'_>,
        max_body: usize,
    ) -> Result<(Answer, bool), Fault> {
        self.wbuf.clear();
        h1::encode_request(
            &mut self.wbuf,
            req.method,
            req.target,
            req.headers,
            host,
            req.body.len(),
        );
        let inline = req.body.len() <= INLINE_BODY;
        if inline {
            self.wbuf.extend_from_slice(req.body);
        }
        let mut written = 0;
        while written < self.wbuf.len() {
            match self.io.write(&self.wbuf[written..]).await {
                Ok(0) | Err(_) if written == 0 => return Err(Fault::Unsent),
                Ok(0) | Err(_) => return Err(Fault::Broken),
                Ok(n) => written += n,
            }
        }
        if !inline {
            self.io
                .write_all(req.body)
                .await
                .map_err(|_| Fault::Broken)?;
        }

        self.rbuf.clear();
        let mut answered = false;
        let (head, len) = loop {
            // Nothing to parse before the first read.
            if !self.rbuf.is_empty() {
                match h1::parse_head(&self.rbuf, req.method).map_err(|_| Fault::Broken)? {
                    h1::Parsed::Head(head, len) => break (head, len),
                    h1::Parsed::Interim(len) => {
                        let _ = self.rbuf.split_to(len);
                        continue;
                    }
                    h1::Parsed::Partial => {}
                }
            }
            if self.rbuf.len() > MAX_HEAD {
                return Err(Fault::Broken);
            }
            match self.read_more().await {
                Ok(0) | Err(_) if !answered => return Err(Fault::NoAnswer),
                Ok(0) | Err(_) => return Err(Fault::Broken),
                Ok(_) => answered = true,
            }
        };
        let _ = self.rbuf.split_to(len);
        let body = self.read_body(head.framing, max_body).await?;
        // Bytes after the answer were not asked for: the connection is out of step.
        let reusable = head.keep_alive && self.rbuf.is_empty();
        Ok((
            Answer {
                status: head.status,
                headers: head.headers,
                body,
            },
            reusable,
        ))
    }

    /// The answer's body as `framing` delimits it, at most `max_body` bytes.
    async fn read_body(&mut self, framing: h1::Framing, max_body: usize) -> Result<Bytes, Fault> {
        Ok(match framing {
            h1::Framing::Empty => Bytes::new(),
            h1::Framing::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|n| *n <= max_body)
                    .ok_or(Fault::Broken)?;
                if n <= SMALL_BODY {
                    while self.rbuf.len() < n {
                        self.read_some().await?;
                    }
                    self.rbuf.split_to(n).freeze()
                } else {
                    // A buffer of its own: read into the connection's, a large body would
                    // leave its allocation to the idle connection once the body is dropped.
                    let mut body = BytesMut::with_capacity(n);
                    let have = self.rbuf.len().min(n);
                    body.extend_from_slice(&self.rbuf.split_to(have));
                    // Capacity is exactly `n`: a read cannot take bytes past the body.
                    while body.len() < n {
                        if !matches!(self.io.read_buf(&mut body).await, Ok(1..)) {
                            return Err(Fault::Broken);
                        }
                    }
                    body.freeze()
                }
            }
            h1::Framing::Chunked => {
                let mut decoder = Chunked::default();
                let mut body = BytesMut::new();
                while !decoder
                    .feed(&mut self.rbuf, &mut body, max_body)
                    .map_err(|_| Fault::Broken)?
                {
                    self.read_some().await?;
                }
                body.freeze()
            }
            h1::Framing::Close => loop {
                if self.rbuf.len() > max_body {
                    return Err(Fault::Broken);
                }
                match self.read_more().await {
                    Ok(0) => break self.rbuf.split().freeze(),
                    Ok(_) => {}
                    Err(_) => return Err(Fault::Broken),
                }
            },
        })
    }

    /// [`Upstream::read_more`] inside a body: the connection must not end there.
    async fn read_some(&mut self) -> Result<(), Fault> {
        match self.read_more().await {
            Ok(1..) => Ok(()),
            _ => Err(Fault::Broken),
        }
    }

    async fn read_more(&mut self) -> std::io::Result<usize> {
        if self.rbuf.capacity() - self.rbuf.len() < 1024 {
            self.rbuf.reserve(8 * 1024);
        }
        self.io.read_buf(&mut self.rbuf).await
    }
}
