//! Requests: the same stream served by our `server::serve` and by hyper's `http1` server,
//! each calling an echo service that notes what it was given; and the raw-byte reading that
//! tells whether a disagreement is a documented refusal.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tongban_core::net::Peer;
use tongban_http1::server::{self, Settings};

use crate::{Stricter, runtime};

/// What an echo service was given of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Served {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) version: Version,
    /// The body as read; `None` when reading it failed.
    pub(crate) body: Option<Vec<u8>>,
}

type Log = Arc<Mutex<Vec<Served>>>;

/// Reads the whole request and notes it.
async fn record<B: hyper::body::Body<Data = Bytes>>(log: &Log, req: Request<B>) {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.ok().map(|c| c.to_bytes().to_vec());
    log.lock().expect("log").push(Served {
        method: parts.method.to_string(),
        target: parts.uri.to_string(),
        version: parts.version,
        body,
    });
}

/// Writes `stream` and then ends the client's half of the connection, while reading (and
/// dropping) whatever the server answers, until the server closes.
async fn send<IO: AsyncRead + AsyncWrite>(client: IO, stream: &[u8]) {
    let (mut rd, mut wr) = tokio::io::split(client);
    let write = async {
        // The server may close first (a refusal): the rest is not wanted.
        let _ = wr.write_all(stream).await;
        let _ = wr.shutdown().await;
    };
    let read = async {
        let mut sink = Vec::new();
        let _ = rd.read_to_end(&mut sink).await;
    };
    tokio::join!(write, read);
}

/// The requests our server hands its application from `stream`.
async fn ours_serve(stream: &[u8]) -> Vec<Served> {
    let log = Log::default();
    let app = {
        let log = log.clone();
        tower::service_fn(move |req: Request<axum::body::Body>| {
            let log = log.clone();
            async move {
                record(&log, req).await;
                Ok::<_, Infallible>(Response::new(axum::body::Body::from("ok")))
            }
        })
    };
    let (client, io) = tokio::io::duplex(64 * 1024);
    let (_stop, stopped) = watch::channel(false);
    let settings = Settings {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(10),
        body_read_timeout: Duration::from_secs(10),
    };
    let peer = Peer::new(([127, 0, 0, 1], 9).into());
    let served = async {
        let _ = server::serve(io, BytesMut::new(), app, peer, &settings, stopped).await;
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(served, send(client, stream))
    })
    .await
    .expect("our server finished");
    log.lock().expect("log").clone()
}

/// The requests hyper's server hands its application from `stream`.
async fn hyper_serves(stream: &[u8]) -> Vec<Served> {
    let log = Log::default();
    let app = {
        let log = log.clone();
        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let log = log.clone();
            async move {
                record(&log, req).await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        })
    };
    let (client, io) = tokio::io::duplex(64 * 1024);
    // Half-closed like ours: a client that has sent everything still gets its answers.
    let served = async {
        let _ = hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(io), app)
            .await;
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(served, send(client, stream))
    })
    .await
    .expect("hyper's server finished");
    log.lock().expect("log").clone()
}

/// The requests served whole: up to the first whose body could not be read (after which
/// both servers close; whether a request refused mid-body was handed on before its body
/// failed is no difference to the application).
pub(crate) fn whole(served: &[Served]) -> &[Served] {
    let n = served.iter().take_while(|s| s.body.is_some()).count();
    &served[..n]
}

/// How our reading of a request stream compares with hyper's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Same,
    /// We served the first `k` requests as hyper did and stopped where hyper served one more.
    OursStopped(usize),
    /// We served a request hyper did not, or served one differently.
    Differs,
}

pub(crate) fn verdict(ours: &[Served], hypers: &[Served]) -> Verdict {
    let (ours, hypers) = (whole(ours), whole(hypers));
    let k = ours.iter().zip(hypers).take_while(|(a, b)| a == b).count();
    if k == ours.len() && k == hypers.len() {
        Verdict::Same
    } else if k == ours.len() {
        Verdict::OursStopped(k)
    } else {
        Verdict::Differs
    }
}

/// Which documented refusal explains ours stopping at the request hyper served as `req`:
/// its head is found in `stream` by its request line and read line by line, then its
/// chunked body, if it has one.
pub(crate) fn explain(stream: &[u8], req: &Served) -> Option<Stricter> {
    let line = format!("{} {} ", req.method, req.target);
    let starts = (0..stream.len()).filter(|i| stream[*i..].starts_with(line.as_bytes()));
    starts.into_iter().find_map(|at| {
        let (why, head_len, coded) = explain_head(&stream[at..]);
        why.or_else(|| coded.then(|| explain_chunked(&stream[at + head_len..]))?)
    })
}

/// The documented refusal a raw request head falls under, if any, the head's length, and
/// whether it has a `Transfer-Encoding`.
fn explain_head(raw: &[u8]) -> (Option<Stricter>, usize, bool) {
    let mut size = 0;
    let mut lines = raw.split(|b| *b == b'\n').map(|l| {
        size += l.len() + 1;
        l.strip_suffix(b"\r").unwrap_or(l)
    });
    let http11 = lines.next().is_some_and(|l| l.ends_with(b"HTTP/1.1"));
    let (mut hosts, mut lengths, mut codings) = (0, 0, Vec::new());
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            lengths += 1;
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            codings.push(value.to_vec());
        }
    }
    let why = if size > 64 * 1024 {
        Some(Stricter::LargeHead)
    } else if hosts > 1 || (http11 && hosts == 0) {
        Some(Stricter::Host)
    } else if !codings.is_empty() && lengths > 0 {
        Some(Stricter::CodingWithLength)
    } else if codings.len() > 1
        || codings
            .first()
            .is_some_and(|c| !c.eq_ignore_ascii_case(b"chunked"))
    {
        Some(Stricter::Coding)
    } else {
        None
    };
    (why, size.min(raw.len()), !codings.is_empty())
}

/// The documented refusal the chunked body at the start of `raw` falls under, if any: its
/// chunks are skipped as hyper reads them, then its lines checked for length and bare LFs.
pub(crate) fn explain_chunked(raw: &[u8]) -> Option<Stricter> {
    let crlf = |from: usize| {
        raw.get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| from + p)
    };
    let mut at = 0;
    loop {
        let end = crlf(at)?;
        if end - at > 4096 {
            return Some(Stricter::LongLine);
        }
        let digits = raw[at..end]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[at..at + digits]).ok()?, 16).ok()?;
        at = end + 2;
        if size == 0 {
            break;
        }
        at += size + 2;
    }
    for line in raw.get(at..)?.split_inclusive(|b| *b == b'\n') {
        if line.len() > 4096 {
            return Some(Stricter::LongLine);
        }
        if !line.ends_with(b"\r\n") {
            return line.ends_with(b"\n").then_some(Stricter::BareLfInTrailers);
        }
        if line == b"\r\n" {
            return None;
        }
    }
    None
}

/// Both servers' reading of `stream`.
pub(crate) fn both_serve(stream: &[u8]) -> (Vec<Served>, Vec<Served>) {
    runtime().block_on(async { (ours_serve(stream).await, hyper_serves(stream).await) })
}
