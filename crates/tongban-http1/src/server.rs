//! HTTP/1.1 served by a connection loop of our own: one read buffer and one write buffer per
//! connection, the head parsed by `httparse`, the service called directly, and the answer
//! written head and body in one write. hyper's general server (a dispatcher, a body channel
//! per request, boxed futures between them) was a fifth of the instructions of a proxied
//! request.
//!
//! Requests are read as RFC 9112 says, refusing what could be read two ways: a
//! `Transfer-Encoding` other than one line of `chunked` alone, one together with a
//! `Content-Length`, lengths that disagree, obsolete line folding. A body that has fully
//! arrived with its head (most of them) is handed over as one piece; a longer one streams to
//! the application while it runs, with `100 Continue` sent first when the client waits for it.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::ConnectInfo;
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tongban_core::clock;
use tongban_core::net::Peer;
use tongban_core::{ApiError, Code};
use tower::Service;

use crate::{Chunked, FramingHeaders};

/// Longest request head accepted (hyper's default buffer limit was about 400 KiB; no
/// legitimate client of this platform sends a head near this).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Most header lines a request may have.
const MAX_HEADERS: usize = 100;

/// Answers up to this size are written together with their head, in one write.
const INLINE_BODY: usize = 64 * 1024;

/// How a connection is served.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A client gets this long to send a whole request head, counted from its first byte (or
    /// from the start of serving, for a head partly read already).
    pub header_read_timeout: Duration,
    /// A kept-alive connection may wait this long for the next request's first byte.
    pub idle_timeout: Duration,
    /// A request body streamed to the application may pause this long between two reads.
    pub body_read_timeout: Duration,
}

/// Serves HTTP/1.1 requests on `io` until the client closes, an error ends the connection, or
/// `shutdown` turns true (then the request being served is answered first, with
/// `Connection: close`). `rbuf` holds bytes already read from `io`.
pub async fn serve<IO, S, B>(
    mut io: IO,
    mut rbuf: BytesMut,
    mut app: S,
    peer: Peer,
    settings: &Settings,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<()>
where
    IO: AsyncRead + AsyncWrite + Unpin,
    S: Service<Request<Body>, Response = Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let mut wbuf: Vec<u8> = Vec::with_capacity(4096);
    // One timer for the connection, moved later for each head: moving a registered timer's
    // deadline later is an atomic store, where a timer per request was an insert into the
    // runtime's timer wheel and a removal.
    let head_timer = tokio::time::sleep(settings.header_read_timeout);
    tokio::pin!(head_timer);
    // One wait for shutdown for the connection's life: a wait made afresh before each head
    // joined the channel's waiters and left them again on every request.
    let mut stop = shutdown.clone();
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopping);
    loop {
        // The head: parsed from what has arrived, else read more within the deadline. Until its
        // first byte the connection is idle, and waits the idle timeout instead.
        let mut idle = rbuf.is_empty();
        let wait = if idle {
            settings.idle_timeout
        } else {
            settings.header_read_timeout
        };
        head_timer
            .as_mut()
            .reset(tokio::time::Instant::from_std(clock::instant()) + wait);
        let (head, head_len) = loop {
            if !rbuf.is_empty() {
                match parse_head(&rbuf) {
                    Ok(Some(parsed)) => break parsed,
                    Ok(None) if rbuf.len() > MAX_HEAD => {
                        return refuse(&mut io, &mut wbuf, rbuf, Refusal::HeadTooLarge).await;
                    }
                    Ok(None) => {}
                    Err(r) => return refuse(&mut io, &mut wbuf, rbuf, r).await,
                }
            }
            if *shutdown.borrow() && rbuf.is_empty() {
                return Ok(());
            }
            if idle && !rbuf.is_empty() {
                // A head has begun but is not whole: the rest of it gets the header timeout.
                idle = false;
                head_timer.as_mut().reset(
                    tokio::time::Instant::from_std(clock::instant()) + settings.header_read_timeout,
                );
            }
            rbuf.reserve(4096);
            let read = tokio::select! {
                biased;
                r = io.read_buf(&mut rbuf) => r,
                // Slow-loris: the head did not come in time.
                _ = &mut head_timer => return Ok(()),
                // Only an idle connection stops here; one with part of a head finishes it.
                () = &mut stopping, if rbuf.is_empty() => return Ok(()),
            };
            match read {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        };
        rbuf.advance(head_len);

        let Head {
            method,
            uri,
            version,
            headers,
            body: framing,
            mut keep_alive,
            expect_continue,
        } = head;
        let is_head = method == Method::HEAD;
        let is_connect = method == Method::CONNECT;
        // The body: whole when it has already arrived, else streamed while the app runs.
        let (body, pending) = match framing {
            BodyFraming::Length(0) => (Body::empty(), None),
            BodyFraming::Length(n) if n <= rbuf.len() as u64 => {
                (Body::from(rbuf.split_to(n as usize).freeze()), None)
            }
            _ => {
                let (tx, rx) = mpsc::channel(2);
                let reader = match framing {
                    BodyFraming::Length(n) => BodyReader::Length(n),
                    BodyFraming::Chunked => BodyReader::Chunked(Chunked::default()),
                };
                (Body::new(ChannelBody { rx }), Some((reader, tx)))
            }
        };
        if expect_continue && pending.is_some() {
            io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            io.flush().await?;
        }
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        *req.version_mut() = version;
        *req.headers_mut() = headers;
        req.extensions_mut().insert(ConnectInfo(peer));

        poll_fn(|cx| app.poll_ready(cx))
            .await
            .unwrap_or_else(|e| match e {});
        let call = app.call(req);
        tokio::pin!(call);
        let resp = match pending {
            None => call.await,
            Some((mut reader, tx)) => {
                // The body is fed as it arrives; the answer may come before all of it. The
                // sender goes with the pump, so the body ends when the pump does.
                let mut tx = Some(tx);
                let resp = loop {
                    tokio::select! {
                        biased;
                        r = &mut call => break r,
                        r = reader.pump(&mut io, &mut rbuf, tx.take(), settings.body_read_timeout),
                            if tx.is_some() => {
                            // A body cut off or malformed: the connection cannot go on.
                            if r.is_err() {
                                keep_alive = false;
                            }
                        }
                    }
                };
                // Unread body bytes would be read as the next request.
                if !reader.done() {
                    keep_alive = false;
                }
                resp
            }
        };
        let Ok(resp) = resp;
        // A 2xx answer to CONNECT turns the connection into a tunnel (RFC 9110 §9.3.6), which
        // this server does not carry: what the client sends next is not HTTP.
        if *shutdown.borrow() || (is_connect && resp.status().is_success()) {
            keep_alive = false;
        }
        if !write_response(&mut io, &mut wbuf, resp, version, is_head, keep_alive).await? {
            linger(&mut io, rbuf).await;
            return Ok(());
        }
    }
}

/// A request head as read.
pub(crate) struct Head {
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
    pub(crate) body: BodyFraming,
    pub(crate) keep_alive: bool,
    pub(crate) expect_continue: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    Length(u64),
    Chunked,
}

/// Requests refused before the application sees them; the connection closes after.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    Malformed,
    HeadTooLarge,
    UnknownCoding,
}

/// The head at the start of `buf`, with its length; `None` until all of it has arrived.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, Refusal> {
    // Left uninitialized: filling every slot before each parse costs more than parsing a
    // short request's few headers.
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_request_with_uninit_headers(&mut req, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Refusal::HeadTooLarge),
        Err(_) => return Err(Refusal::Malformed),
    };
    if len > MAX_HEAD {
        return Err(Refusal::HeadTooLarge);
    }
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| Refusal::Malformed)?;
    let uri = req
        .path
        .unwrap_or_default()
        .parse::<Uri>()
        .map_err(|_| Refusal::Malformed)?;
    let http11 = req.version == Some(1);
    // Room for the three the request gains on its way (the access layer's X-Request-Id, the
    // proxy's X-Forwarded-For and Accept-Encoding): growing the map rehashes every header.
    let mut headers = HeaderMap::with_capacity(req.headers.len() + 3);
    let mut seen = FramingHeaders::default();
    let mut expect_continue = false;
    let mut hosts = 0;
    for h in req.headers.iter() {
        let name = tongban_core::header::name(h.name.as_bytes()).map_err(|_| Refusal::Malformed)?;
        let value = HeaderValue::from_bytes(h.value).map_err(|_| Refusal::Malformed)?;
        seen.see(&name, h.value).map_err(|_| Refusal::Malformed)?;
        if name == header::EXPECT {
            expect_continue = h.value.eq_ignore_ascii_case(b"100-continue");
        } else if name == header::HOST {
            hosts += 1;
        }
        headers.append(name, value);
    }
    let body = if seen.coded {
        // Both framings at once is how requests are smuggled past one reader to another
        // (RFC 9112 §6.3, 3), and so are several `Transfer-Encoding` lines that readers
        // combine differently (first, last, or joined): refused rather than guessed.
        if seen.length.is_some() || seen.coding_lines > 1 {
            return Err(Refusal::Malformed);
        }
        // Only `chunked` alone is implemented (RFC 9112 §6.1: 501 for the others): a coding
        // before it would be dropped when the body is de-chunked, and the application would
        // take compressed bytes for the content.
        if !seen.chunked_only || !http11 {
            return Err(Refusal::UnknownCoding);
        }
        BodyFraming::Chunked
    } else {
        BodyFraming::Length(seen.length.unwrap_or(0))
    };
    // HTTP/1.1 requires exactly one Host (RFC 9112 §3.2); routes match on it, so two could
    // send one request down two routes.
    if hosts > 1 || (http11 && hosts == 0) {
        return Err(Refusal::Malformed);
    }
    let keep_alive = seen.persistent(http11);
    Ok(Some((
        Head {
            method,
            uri,
            version: if http11 {
                Version::HTTP_11
            } else {
                Version::HTTP_10
            },
            headers,
            body,
            keep_alive,
            expect_continue: expect_continue && http11,
        },
        len,
    )))
}

/// Reads a request body that had not arrived with its head.
enum BodyReader {
    /// Bytes still to come.
    Length(u64),
    Chunked(Chunked),
    Done,
}

impl BodyReader {
    fn done(&self) -> bool {
        matches!(self, BodyReader::Done)
    }

    /// Moves the body from the connection to the application until it ends; `Err` when it
    /// cannot (cut off, malformed, too slow, or the application stopped reading it), and then
    /// the connection is out of step.
    async fn pump<IO: AsyncRead + Unpin>(
        &mut self,
        io: &mut IO,
        rbuf: &mut BytesMut,
        tx: Option<mpsc::Sender<Result<Bytes, std::io::Error>>>,
        read_timeout: Duration,
    ) -> Result<(), ()> {
        let Some(tx) = tx else { return Ok(()) };
        loop {
            let chunk = match self {
                BodyReader::Done => return Ok(()),
                BodyReader::Length(left) => {
                    if rbuf.is_empty() {
                        None
                    } else {
                        let n = usize::try_from(*left).map_or(rbuf.len(), |l| l.min(rbuf.len()));
                        *left -= n as u64;
                        let data = rbuf.split_to(n).freeze();
                        if *left == 0 {
                            *self = BodyReader::Done;
                        }
                        Some(data)
                    }
                }
                BodyReader::Chunked(decoder) => {
                    let mut out = BytesMut::new();
                    // No limit here: the application's own limits bound the body.
                    match decoder.feed(rbuf, &mut out, usize::MAX) {
                        Ok(true) => {
                            *self = BodyReader::Done;
                            Some(out.freeze())
                        }
                        Ok(false) => (!out.is_empty()).then(|| out.freeze()),
                        Err(_) => {
                            let _ = tx.send(Err(bad_body("malformed chunked body"))).await;
                            return Err(());
                        }
                    }
                }
            };
            if let Some(data) = chunk
                && !data.is_empty()
                && tx.send(Ok(data)).await.is_err()
            {
                // The application no longer reads the body.
                return Err(());
            }
            if self.done() {
                return Ok(());
            }
            if rbuf.is_empty() || matches!(self, BodyReader::Chunked(_)) {
                rbuf.reserve(16 * 1024);
                match tokio::time::timeout(read_timeout, io.read_buf(rbuf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    Ok(_) => {
                        let _ = tx.send(Err(bad_body("request body cut off"))).await;
                        return Err(());
                    }
                    // A client trickling its body holds the request: it gets this long between
                    // two reads (nginx's `client_body_timeout`).
                    Err(_) => {
                        let _ = tx.send(Err(bad_body("request body timed out"))).await;
                        return Err(());
                    }
                }
            }
        }
    }
}

fn bad_body(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what)
}

/// A request body fed by the connection as it arrives.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl HttpBody for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|o| o.map(|r| r.map(hyper::body::Frame::data)))
    }
}

/// Answers a request refused before the application, then closes.
async fn refuse<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    wbuf: &mut Vec<u8>,
    rbuf: BytesMut,
    why: Refusal,
) -> std::io::Result<()> {
    let (status, msg) = match why {
        Refusal::Malformed => (StatusCode::BAD_REQUEST, "请求格式错误"),
        Refusal::HeadTooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "请求头过大"),
        Refusal::UnknownCoding => (StatusCode::NOT_IMPLEMENTED, "不支持的传输编码"),
    };
    let mut resp = ApiError::new(Code::BAD_PARAMETER)
        .with_msg(msg)
        .into_response();
    *resp.status_mut() = status;
    write_response(io, wbuf, resp, Version::HTTP_11, false, false).await?;
    linger(io, rbuf).await;
    Ok(())
}

/// Closes our side, then reads and drops what the client still sends (for a while, up to a
/// limit) before the connection is dropped: closing with unread bytes makes the kernel reset
/// the connection, and a reset can destroy the answer before the client has read it.
async fn linger<IO: AsyncRead + AsyncWrite + Unpin>(io: &mut IO, mut rbuf: BytesMut) {
    const LINGER: Duration = Duration::from_secs(2);
    const MAX_DRAIN: usize = 1024 * 1024;
    if io.shutdown().await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(LINGER, async {
        let mut drained = 0;
        while drained < MAX_DRAIN {
            rbuf.clear();
            rbuf.reserve(16 * 1024);
            match io.read_buf(&mut rbuf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}

/// Writes `resp`: head and body together when the body is whole and small, else the head then
/// the body as it comes (chunked for HTTP/1.1, until close for HTTP/1.0).
async fn write_response<IO, B>(
    io: &mut IO,
    wbuf: &mut Vec<u8>,
    resp: Response<B>,
    version: Version,
    is_head: bool,
    keep_alive: bool,
) -> std::io::Result<bool>
where
    IO: AsyncWrite + Unpin,
    B: HttpBody<Data = Bytes>,
    B::Error: std::fmt::Display,
{
    let (parts, body) = resp.into_parts();
    let mut body = std::pin::pin!(body);
    let status = parts.status;
    let bodiless = is_head
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let exact = body.size_hint().exact();
    // Without a known length an HTTP/1.0 answer ends when the connection does.
    let chunked = !bodiless && exact.is_none() && version == Version::HTTP_11;
    let keep_alive = keep_alive && (bodiless || exact.is_some() || chunked);
    // The application may end the connection after its answer (RFC 9112 §9.6); its
    // `Connection` is read by the rules the request's was.
    let mut connection = FramingHeaders::default();
    wbuf.clear();
    wbuf.extend_from_slice(if version == Version::HTTP_11 {
        b"HTTP/1.1 "
    } else {
        b"HTTP/1.0 "
    });
    wbuf.extend_from_slice(status.as_str().as_bytes());
    wbuf.push(b' ');
    wbuf.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    wbuf.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        // Framing and connection are this writer's to say, from what it actually sends; a
        // HEAD answer keeps the length the application says a GET would have (its body is
        // already gone).
        if name == header::CONNECTION {
            // Only `Connection` is given, which `see` cannot refuse.
            let _ = connection.see(name, value.as_bytes());
            continue;
        }
        if (name == header::CONTENT_LENGTH && !is_head) || name == header::TRANSFER_ENCODING {
            continue;
        }
        wbuf.extend_from_slice(name.as_str().as_bytes());
        wbuf.extend_from_slice(b": ");
        wbuf.extend_from_slice(value.as_bytes());
        wbuf.extend_from_slice(b"\r\n");
    }
    if !parts.headers.contains_key(header::DATE) {
        wbuf.extend_from_slice(b"date: ");
        date::now(wbuf);
        wbuf.extend_from_slice(b"\r\n");
    }
    if chunked {
        wbuf.extend_from_slice(b"transfer-encoding: chunked\r\n");
    } else if let Some(n) = exact
        && !bodiless
    {
        wbuf.extend_from_slice(b"content-length: ");
        wbuf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        wbuf.extend_from_slice(b"\r\n");
    }
    let keep_alive = keep_alive && !connection.close;
    if !keep_alive {
        wbuf.extend_from_slice(b"connection: close\r\n");
    } else if version == Version::HTTP_10 {
        wbuf.extend_from_slice(b"connection: keep-alive\r\n");
    }
    wbuf.extend_from_slice(b"\r\n");
    if bodiless {
        io.write_all(wbuf).await?;
        // A TLS stream may hold the records until flushed.
        io.flush().await?;
        return Ok(keep_alive);
    }
    let mut trailers = None;
    // Frames until the body ends; a whole small body joins the head.
    while let Some(frame) = body.frame().await {
        let data = match frame {
            Ok(f) => match f.into_data() {
                Ok(d) => d,
                // Sent after the last chunk; a body of known length has nowhere to put them.
                Err(f) => {
                    trailers = f.into_trailers().ok();
                    continue;
                }
            },
            Err(error) => {
                // The answer cannot be completed; the client sees the connection end.
                tracing::debug!(%error, "Response body failed.");
                return Err(std::io::Error::other("response body failed"));
            }
        };
        if data.is_empty() {
            continue;
        }
        if chunked {
            let _ = write!(wbuf, "{:x}\r\n", data.len());
        }
        if wbuf.len() + data.len() <= INLINE_BODY {
            wbuf.extend_from_slice(&data);
        } else {
            io.write_all(wbuf).await?;
            wbuf.clear();
            io.write_all(&data).await?;
        }
        if chunked {
            wbuf.extend_from_slice(b"\r\n");
        }
    }
    if chunked {
        wbuf.extend_from_slice(b"0\r\n");
        for (name, value) in trailers.iter().flatten() {
            if may_trail(name) {
                wbuf.extend_from_slice(name.as_str().as_bytes());
                wbuf.extend_from_slice(b": ");
                wbuf.extend_from_slice(value.as_bytes());
                wbuf.extend_from_slice(b"\r\n");
            }
        }
        wbuf.extend_from_slice(b"\r\n");
    }
    if !wbuf.is_empty() {
        io.write_all(wbuf).await?;
    }
    io.flush().await?;
    Ok(keep_alive)
}

/// Fields that must not be sent as trailers: framing, routing, authentication, and those that
/// say how to read the content (RFC 9110 §6.5.1); a recipient could act on them too late.
fn may_trail(name: &HeaderName) -> bool {
    ![
        header::CONTENT_LENGTH,
        header::TRANSFER_ENCODING,
        header::CONNECTION,
        header::TRAILER,
        header::TE,
        header::HOST,
        header::CONTENT_ENCODING,
        header::CONTENT_TYPE,
        header::CONTENT_RANGE,
        header::AUTHORIZATION,
        header::WWW_AUTHENTICATE,
        header::SET_COOKIE,
        header::CACHE_CONTROL,
        header::EXPIRES,
        header::DATE,
        header::LOCATION,
        header::RETRY_AFTER,
        header::VARY,
    ]
    .contains(name)
}

/// The `Date` header's value, formatted once a second per thread.
mod date {
    use std::cell::RefCell;
    use std::time::{Duration, UNIX_EPOCH};

    thread_local! {
        static CACHED: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
    }

    /// Appends the current time as an IMF-fixdate (`Sun, 29 Nov 2026 10:00:00 GMT`).
    pub(super) fn now(out: &mut Vec<u8>) {
        let secs = tongban_core::clock::wall().as_secs();
        CACHED.with(|c| {
            let mut c = c.borrow_mut();
            if c.0 != secs {
                *c = (secs, format(secs));
            }
            out.extend_from_slice(&c.1);
        });
    }

    pub(super) fn format(secs: u64) -> [u8; 29] {
        let text = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
        let mut b = [b' '; 29];
        // An IMF-fixdate is always 29 bytes (years 1970 to 9999).
        let n = text.len().min(29);
        b[..n].copy_from_slice(&text.as_bytes()[..n]);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Option<(Head, usize)>, Refusal> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn dates_are_imf_fixdates() {
        assert_eq!(&date::format(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        // 2000-02-29 01:01:01 UTC, a Tuesday.
        assert_eq!(&date::format(951_786_061), b"Tue, 29 Feb 2000 01:01:01 GMT");
        assert_eq!(
            &date::format(1_795_910_400),
            b"Sun, 29 Nov 2026 00:00:00 GMT"
        );
    }

    #[test]
    fn a_head_is_read_once_whole() {
        assert!(
            head("GET /a HTTP/1.1\r\nHost: x\r\n")
                .expect("partial")
                .is_none()
        );
        let (h, n) = head("GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nNEXT")
            .expect("valid")
            .expect("whole");
        assert_eq!(n, "GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\n".len());
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.uri, "/a?b=1");
        assert_eq!(h.headers["host"], "x");
        assert_eq!(h.body, BodyFraming::Length(0));
        assert!(h.keep_alive);
    }

    #[test]
    fn framing_and_persistence_follow_rfc_9112() {
        let framing = |raw: &str| head(raw).map(|h| h.expect("whole").0.body);
        assert_eq!(
            framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(
            framing("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0000000000000000000005\r\n\r\n"),
            Ok(BodyFraming::Length(5))
        );
        for chunked in ["chunked", "Chunked", " CHUNKED ", "\tchunked"] {
            assert_eq!(
                framing(&format!(
                    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:{chunked}\r\n\r\n"
                )),
                Ok(BodyFraming::Chunked),
                "{chunked:?}"
            );
        }
        for (raw, why) in [
            // Smuggling shapes.
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            // Codings before chunked are not implemented: de-chunking would drop them.
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            // Several Transfer-Encoding lines, whatever they say.
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
                Refusal::UnknownCoding,
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n",
                Refusal::Malformed,
            ),
            // No Host, or two.
            ("GET / HTTP/1.1\r\n\r\n", Refusal::Malformed),
            (
                "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                Refusal::Malformed,
            ),
            (
                "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",
                Refusal::Malformed,
            ),
            ("GET /a b HTTP/1.1\r\n\r\n", Refusal::Malformed),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
                Refusal::Malformed,
            ),
        ] {
            assert_eq!(framing(raw).map(|_| ()), Err(why), "{raw:?}");
        }
        let many: String = (0..=MAX_HEADERS).map(|i| format!("h{i}: v\r\n")).collect();
        assert_eq!(
            framing(&format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n")).map(|_| ()),
            Err(Refusal::HeadTooLarge)
        );
        let alive = |raw: &str| head(raw).expect("valid").expect("whole").0.keep_alive;
        assert!(alive("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!alive(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ));
        assert!(!alive("GET / HTTP/1.0\r\n\r\n"));
        assert!(alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use tower::util::BoxCloneSyncService;

    type App = BoxCloneSyncService<Request<Body>, Response, Infallible>;

    /// Sends `request` on an in-memory connection served with [`echo_app`]; everything read
    /// until the server closes.
    async fn exchange(request: Vec<u8>) -> String {
        let (mut client, server) = tokio::io::duplex(8192);
        let (_tx, rx) = watch::channel(false);
        let served = spawn_serve(server, Duration::from_secs(5), rx);
        let writer = tokio::spawn(async move {
            client.write_all(&request).await.expect("write");
            client.shutdown().await.expect("shutdown");
            let mut out = Vec::new();
            client.read_to_end(&mut out).await.expect("read");
            out
        });
        let out = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("answered in time")
            .expect("joined");
        let _ = served.await;
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Answers each request with its body's length; `/closing` answers with `Connection:
    /// close`, `/trailing` with a body of unknown length followed by trailers.
    fn echo_app() -> App {
        let trailing = || async {
            let mut t = HeaderMap::new();
            t.insert("x-digest", HeaderValue::from_static("sm3=abc"));
            t.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
            Body::new(Trailing {
                data: Some(Bytes::from_static(b"hello")),
                trailers: Some(t),
            })
        };
        BoxCloneSyncService::new(
            axum::Router::new()
                .route(
                    "/closing",
                    axum::routing::get(|| async { ([(header::CONNECTION, "Close")], "bye") }),
                )
                .route("/trailing", axum::routing::get(trailing))
                .fallback(|body: axum::body::Bytes| async move { format!("len={}", body.len()) }),
        )
    }

    /// A body of unknown length: its data, then its trailers.
    struct Trailing {
        data: Option<Bytes>,
        trailers: Option<HeaderMap>,
    }

    impl HttpBody for Trailing {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            let this = self.get_mut();
            let frame = match this.data.take() {
                Some(d) => hyper::body::Frame::data(d),
                None => match this.trailers.take() {
                    Some(t) => hyper::body::Frame::trailers(t),
                    None => return Poll::Ready(None),
                },
            };
            Poll::Ready(Some(Ok(frame)))
        }
    }

    #[tokio::test]
    async fn an_answer_with_connection_close_ends_the_connection() {
        // Two pipelined requests: the first answer says close, so the second is not served.
        let out = exchange(
            b"GET /closing HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nbye"), "one answer only: {out}");
    }

    #[tokio::test]
    async fn trailers_follow_the_last_chunk_and_only_allowed_fields() {
        let out =
            exchange(b"GET /trailing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec())
                .await;
        assert!(out.contains("\r\ntransfer-encoding: chunked\r\n"), "{out}");
        assert!(
            out.ends_with("\r\n\r\n5\r\nhello\r\n0\r\nx-digest: sm3=abc\r\n\r\n"),
            "{out}"
        );
        // HTTP/1.0 has no chunks: the body ends with the connection, without trailers (and
        // the connection does end, though the client asked to keep it).
        let out = exchange(
            b"GET /trailing HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n"
                .to_vec(),
        )
        .await;
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert!(out.ends_with("\r\n\r\nhello"), "{out}");
    }

    /// Serves [`echo_app`] on `io` in a task of its own.
    fn spawn_serve(
        io: tokio::io::DuplexStream,
        header_read_timeout: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<std::io::Result<()>> {
        tokio::spawn(async move {
            let settings = Settings {
                header_read_timeout,
                idle_timeout: header_read_timeout,
                body_read_timeout: header_read_timeout,
            };
            let peer = Peer::new(([127, 0, 0, 1], 9).into());
            serve(io, BytesMut::new(), echo_app(), peer, &settings, shutdown).await
        })
    }

    /// Everything `client` reads until the server closes the connection (within 5 s).
    async fn read_until_closed(client: &mut tokio::io::DuplexStream) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out))
            .await
            .expect("closed in time")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_head_that_does_not_come_in_time_ends_the_connection() {
        let (mut client, server) = tokio::io::duplex(8192);
        let (_tx, rx) = watch::channel(false);
        let served = spawn_serve(server, Duration::from_millis(200), rx);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let out = read_until_closed(&mut client).await;
        assert!(out.is_empty(), "closed without an answer: {out}");
        assert!(served.await.expect("joined").is_ok());
    }

    #[tokio::test]
    async fn shutdown_closes_idle_connections_and_answers_the_one_in_flight_with_close() {
        let (tx, rx) = watch::channel(false);
        // Idle: ends as soon as shutdown starts.
        let (_idle_client, idle) = tokio::io::duplex(8192);
        let idle = spawn_serve(idle, Duration::from_secs(30), rx.clone());
        // Idle after an answer, kept alive: ends too (one wait spans the connection's requests).
        let (mut kept_client, kept) = tokio::io::duplex(8192);
        let kept = spawn_serve(kept, Duration::from_secs(30), rx.clone());
        kept_client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut answer = Vec::new();
        while !answer.ends_with(b"len=0") {
            let mut chunk = [0u8; 512];
            let n = kept_client.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed before the answer");
            answer.extend_from_slice(&chunk[..n]);
        }
        // Half a head in flight: finished and answered, then closed.
        let (mut client, busy) = tokio::io::duplex(8192);
        let busy = spawn_serve(busy, Duration::from_secs(30), rx);
        client
            .write_all(b"GET / HTTP/1.1\r\n")
            .await
            .expect("write");
        tokio::time::sleep(Duration::from_millis(50)).await;
        tx.send(true).expect("shutdown");
        let ended = tokio::time::timeout(Duration::from_secs(5), idle).await;
        assert!(matches!(ended, Ok(Ok(Ok(())))), "idle connection ended");
        let ended = tokio::time::timeout(Duration::from_secs(5), kept).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "kept-alive connection ended"
        );
        client.write_all(b"Host: x\r\n\r\n").await.expect("write");
        let out = read_until_closed(&mut client).await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(
            out.contains("\r\nconnection: close\r\n") && out.ends_with("len=0"),
            "{out}"
        );
        assert!(busy.await.expect("joined").is_ok());
    }

    /// Sends `request` and leaves the connection open: what the server answers before it
    /// closes the connection by itself.
    async fn answer_then_close(request: &[u8]) -> String {
        let (mut client, server) = tokio::io::duplex(8192);
        let (_tx, rx) = watch::channel(false);
        let served = spawn_serve(server, Duration::from_secs(30), rx);
        client.write_all(request).await.expect("write");
        let out = read_until_closed(&mut client).await;
        drop(client);
        assert!(served.await.expect("joined").is_ok());
        out
    }

    #[tokio::test]
    async fn a_coding_before_chunked_is_not_implemented_and_ends_the_connection() {
        // Without the refusal the body was de-chunked and handed on as `hello`, its gzip
        // coding dropped; the request after it would have been served too.
        let out = answer_then_close(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
              5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 501 Not Implemented\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert_eq!(
            out.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {out}"
        );
        assert!(!out.contains("len="), "{out}");
    }

    #[tokio::test]
    async fn a_2xx_answer_to_connect_ends_the_connection() {
        // The client takes the connection for a tunnel after it: the GET is tunnel data, not
        // a request to serve.
        let out = answer_then_close(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\
              GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert_eq!(
            out.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {out}"
        );
    }

    #[tokio::test]
    async fn several_transfer_encoding_lines_are_refused_and_end_the_connection() {
        // Read as chunked before: `identity` on one line, `chunked` on the next.
        let out = answer_then_close(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
              GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("\r\nconnection: close\r\n"), "{out}");
        assert_eq!(
            out.matches("HTTP/1.1 ").count(),
            1,
            "one answer only: {out}"
        );
        assert!(!out.contains("len="), "{out}");
    }

    #[tokio::test]
    async fn a_body_that_stops_coming_ends_the_request_and_the_connection() {
        let (mut client, server) = tokio::io::duplex(8192);
        let (_tx, rx) = watch::channel(false);
        let served = spawn_serve(server, Duration::from_millis(200), rx);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
            .await
            .expect("write");
        let out = read_until_closed(&mut client).await;
        // The application saw the body fail (axum answers 400), never a 3-byte body.
        assert!(out.starts_with("HTTP/1.1 400 "), "{out}");
        assert!(
            out.contains("\r\nconnection: close\r\n") && !out.contains("len="),
            "{out}"
        );
        assert!(served.await.expect("joined").is_ok());
    }

    #[tokio::test]
    async fn a_body_longer_than_one_read_streams_to_the_app() {
        let body = vec![b'x'; 100_000];
        let mut req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let out = exchange(req).await;
        assert!(out.ends_with("len=100000"), "{out}");
    }

    /// Writes `stream` in pieces of the sizes in `cuts` (cycled) through a small in-memory
    /// connection while reading the answers; everything read until the server closes.
    async fn exchange_in_pieces(stream: Vec<u8>, cuts: Vec<usize>) -> String {
        let (client, server) = tokio::io::duplex(256);
        let (_tx, rx) = watch::channel(false);
        let served = spawn_serve(server, Duration::from_secs(5), rx);
        let (mut read, mut write) = tokio::io::split(client);
        let writer = tokio::spawn(async move {
            let mut rest = &stream[..];
            for n in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at((*n).min(rest.len()));
                write.write_all(piece).await.expect("write");
                write.flush().await.expect("flush");
                rest = tail;
            }
            // All sent: the server's lingering close then ends at once.
            write.shutdown().await.expect("shutdown");
        });
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), read.read_to_end(&mut out))
            .await
            .expect("answered in time")
            .expect("read");
        let _ = writer.await;
        let _ = served.await;
        String::from_utf8_lossy(&out).into_owned()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// Requests framed by length or chunked, pipelined and cut into pieces of any size, are
        /// all answered, in order, each with its whole body.
        #[test]
        fn pipelined_requests_cut_anywhere_are_answered_in_order(
            requests in proptest::collection::vec((0usize..3000, proptest::bool::ANY), 1..6),
            cuts in proptest::collection::vec(1usize..700, 1..40),
        ) {
            let mut stream = Vec::new();
            let mut expected = String::new();
            for (i, (len, chunked)) in requests.iter().enumerate() {
                let close = if i + 1 == requests.len() { "Connection: close\r\n" } else { "" };
                let body: Vec<u8> = (0..*len).map(|j| b'a' + (j % 26) as u8).collect();
                if *chunked {
                    stream.extend_from_slice(
                        format!("POST /{i} HTTP/1.1\r\nHost: x\r\n{close}Transfer-Encoding: chunked\r\n\r\n")
                            .as_bytes(),
                    );
                    for c in body.chunks(1000) {
                        stream.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                        stream.extend_from_slice(c);
                        stream.extend_from_slice(b"\r\n");
                    }
                    stream.extend_from_slice(b"0\r\n\r\n");
                } else {
                    stream.extend_from_slice(
                        format!("POST /{i} HTTP/1.1\r\nHost: x\r\n{close}Content-Length: {len}\r\n\r\n")
                            .as_bytes(),
                    );
                    stream.extend_from_slice(&body);
                }
                expected.push_str(&format!("len={len};"));
            }
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let out = rt.block_on(exchange_in_pieces(stream, cuts));
            let answered: String = out
                .split("HTTP/1.1 200 OK\r\n")
                .skip(1)
                .map(|a| format!("{};", a.split("\r\n\r\n").nth(1).unwrap_or_default()))
                .collect();
            proptest::prop_assert_eq!(answered, expected, "{}", out);
        }

        /// No input makes head parsing panic, and a head accepted keeps the fuzz target's
        /// promises.
        #[test]
        fn any_bytes_are_parsed_or_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            crate::fuzzing::request_head(&bytes);
            let mut head = b"GET / HTTP/1.1\r\n".to_vec();
            head.extend_from_slice(&bytes);
            crate::fuzzing::request_head(&head);
        }
    }
}
