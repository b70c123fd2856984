//! The connection timeouts and limits of `[server]` on the wire of the real binary: HTTP/2
//! (h2c by its preface, h2 by ALPN over TLS) closes idle connections with a GOAWAY, drops a
//! peer that stops answering PINGs, advertises its stream and header limits, and answers a
//! request whose body never comes; HTTP/1.1 takes its idle, head and body timeouts from the
//! same settings. The timeouts are set to a second or two and every wait is bounded generously:
//! the tests say that something happens, and that it does not happen too early, never how fast.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use common::Server;
use http_body_util::BodyExt;
use hyper::client::conn::http2 as client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long anything the server should do within a timeout of a second or two may take on a
/// loaded machine before the test calls it a hang.
const BOUND: Duration = Duration::from_secs(10);

const ADMIN_TOKEN: &str = "h2-admin-token-0123456789abcdef";

fn sm3_hex(b: &[u8]) -> String {
    tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(b))
}

/// The server with `[server]` lines `server` added to loopback addresses and an admin token;
/// plain HTTP (h2c) when `plain`.
fn start(plain: bool, server: &str) -> Server {
    let dir = common::temp_dir("h2");
    let cfg = common::write_config(
        &dir,
        &format!(
            "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\n\
             plain_http = {plain}\n{server}\n[admin]\ntoken_sm3 = \"{}\"\n",
            sm3_hex(ADMIN_TOKEN.as_bytes())
        ),
    );
    Server::start_with(&dir, &cfg, &[])
}

/// Sends one raw HTTP/1.1 request over plain TCP and reads the answer to EOF.
async fn http_raw(addr: SocketAddr, request: &[u8]) -> common::Response {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(BOUND, tcp.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .expect("read");
    common::parse_response(&raw)
}

/// An upstream that answers each request with its body's length, after three seconds for
/// paths under `/api/v1/delays`; and anonymous gateway routes to it on plain server `s`:
/// `/api/v1/echoes` (at most two requests at once) and `/api/v1/delays`.
async fn routes_to_upstream(s: &Server) -> tokio::task::JoinHandle<()> {
    let up = axum::Router::new().fallback(|uri: http::Uri, body: axum::body::Bytes| async move {
        if uri.path().starts_with("/api/v1/delays") {
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
        axum::Json(serde_json::json!({"code": 0, "data": {"len": body.len()}}))
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(l, up).await;
    });
    for (id, extra) in [
        ("echoes", serde_json::json!({"max_concurrency": 2})),
        ("delays", serde_json::json!({})),
    ] {
        let mut spec = serde_json::json!({
            "id": id, "prefix": format!("/api/v1/{id}"), "auth": "anonymous",
            "upstream": {"instances": [{"address": addr.to_string()}]},
            // Long enough that only the server's own timeouts can answer first.
            "timeouts": {"connect_ms": 5000, "per_try_ms": 60000, "total_ms": 60000},
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let spec = spec.to_string();
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let put = common::request(
            "PUT",
            &format!("/api/v1/routes/{id}"),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            spec.as_bytes(),
        );
        let r = http_raw(s.admin, &put).await;
        assert_eq!(r.json()["code"], 0, "{r:?}");
    }
    task
}

// === raw HTTP/2 frames ===

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const ACK: u8 = 0x1;

/// One frame as read off the wire.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    payload: Vec<u8>,
}

fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], kind, flags, 0, 0, 0, 0];
    f.extend_from_slice(payload);
    f
}

/// The next frame; `None` when the server closed the connection.
async fn read_frame<R: AsyncRead + Unpin>(io: &mut R) -> Option<Frame> {
    let mut head = [0u8; 9];
    io.read_exact(&mut head).await.ok()?;
    let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    io.read_exact(&mut payload).await.ok()?;
    Some(Frame {
        kind: head[3],
        flags: head[4],
        payload,
    })
}

/// Starts HTTP/2 on `io` as a client: the preface and empty SETTINGS.
async fn hello<IO: AsyncWrite + Unpin>(io: &mut IO) {
    io.write_all(PREFACE).await.expect("preface");
    io.write_all(&frame(SETTINGS, 0, &[]))
        .await
        .expect("settings");
    io.flush().await.expect("flush");
}

/// What a client that sends nothing more saw until the server closed: every frame's kind,
/// in order. PINGs are answered when `answer_pings`; SETTINGS always are.
async fn until_closed<IO: AsyncRead + AsyncWrite + Unpin>(
    io: &mut IO,
    answer_pings: bool,
) -> Vec<Frame> {
    let mut seen = Vec::new();
    tokio::time::timeout(BOUND, async {
        while let Some(f) = read_frame(io).await {
            let answer = match f.kind {
                SETTINGS if f.flags & ACK == 0 => Some(frame(SETTINGS, ACK, &[])),
                PING if f.flags & ACK == 0 && answer_pings => Some(frame(PING, ACK, &f.payload)),
                _ => None,
            };
            if let Some(a) = answer {
                // The server may be closing already.
                let _ = io.write_all(&a).await;
                let _ = io.flush().await;
            }
            seen.push(f);
        }
    })
    .await
    .unwrap_or_else(|_| {
        let kinds: Vec<u8> = seen.iter().map(|f| f.kind).collect();
        panic!("not closed within {BOUND:?}; frames seen: {kinds:?}")
    });
    seen
}

/// Checks that `io`, left idle after its preface, is closed with a GOAWAY (no error) after
/// the idle timeout of one second, and no sooner.
async fn idle_connection_is_closed_with_goaway<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO) {
    let began = Instant::now();
    hello(&mut io).await;
    let frames = until_closed(&mut io, true).await;
    let waited = began.elapsed();
    let goaway = frames
        .iter()
        .find(|f| f.kind == GOAWAY)
        .unwrap_or_else(|| panic!("closed without a GOAWAY: {frames:?}"));
    assert_eq!(&goaway.payload[4..8], &[0, 0, 0, 0], "NO_ERROR: {goaway:?}");
    assert!(
        waited >= Duration::from_millis(900),
        "closed before the idle timeout: {waited:?}"
    );
}

#[tokio::test]
async fn an_idle_h2c_connection_gets_a_goaway_and_is_closed() {
    let s = start(true, "idle_timeout_secs = 1");
    let tcp = TcpStream::connect(s.public).await.expect("connect");
    idle_connection_is_closed_with_goaway(tcp).await;
}

#[tokio::test]
async fn an_idle_h2_connection_over_tls_gets_a_goaway_and_is_closed() {
    let s = start(false, "idle_timeout_secs = 1");
    let connector = common::tls_connector_alpn(s.cert(), &[&rustls::version::TLS13], b"h2");
    let tcp = TcpStream::connect(s.public).await.expect("connect");
    let tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    idle_connection_is_closed_with_goaway(tls).await;
}

#[tokio::test]
async fn a_peer_that_stops_answering_pings_is_dropped() {
    // Never idle long enough to be closed for that: only the PINGs can end it.
    let s = start(
        true,
        "idle_timeout_secs = 3600\nh2_keepalive_interval_secs = 1\nh2_keepalive_timeout_secs = 1",
    );
    let mut tcp = TcpStream::connect(s.public).await.expect("connect");
    hello(&mut tcp).await;
    let frames = until_closed(&mut tcp, false).await;
    assert!(
        frames.iter().any(|f| f.kind == PING && f.flags & ACK == 0),
        "the server asked: {frames:?}"
    );
}

#[tokio::test]
async fn settings_advertise_the_configured_stream_and_header_limits() {
    let s = start(
        true,
        "h2_max_concurrent_streams = 7\nh2_max_header_list_bytes = 12345",
    );
    let mut tcp = TcpStream::connect(s.public).await.expect("connect");
    hello(&mut tcp).await;
    let settings = tokio::time::timeout(BOUND, read_frame(&mut tcp))
        .await
        .expect("in time")
        .expect("a frame");
    assert_eq!((settings.kind, settings.flags), (SETTINGS, 0));
    let values: Vec<(u16, u32)> = settings
        .payload
        .chunks_exact(6)
        .map(|c| {
            (
                u16::from_be_bytes([c[0], c[1]]),
                u32::from_be_bytes([c[2], c[3], c[4], c[5]]),
            )
        })
        .collect();
    // SETTINGS_MAX_CONCURRENT_STREAMS (0x3), SETTINGS_MAX_HEADER_LIST_SIZE (0x6).
    assert!(values.contains(&(0x3, 7)), "{values:?}");
    assert!(values.contains(&(0x6, 12345)), "{values:?}");

    // And the header limit holds: a header list over it is answered 431 by the protocol
    // layer (hyper's default, 16 KiB, would have let this one through), one under it is served.
    let (mut send, _conn) = h2c(s.public).await;
    for (filler, status) in [(14_000, 431), (8_000, 200)] {
        let req = http::Request::get("http://localhost/healthz")
            .header("x-filler", "a".repeat(filler))
            .body(Body::empty())
            .expect("request");
        send.ready().await.expect("connection ready");
        let resp = tokio::time::timeout(BOUND, send.send_request(req))
            .await
            .expect("answered in time")
            .expect("answer");
        assert_eq!(resp.status().as_u16(), status, "{filler}-byte header");
    }
}

// === requests over h2c (hyper's client) ===

/// A request body that never comes.
struct Never;

impl hyper::body::Body for Never {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Pending
    }
}

/// An h2c connection to `addr`, and the task driving it (it ends when the server closes).
async fn h2c(
    addr: SocketAddr,
) -> (
    client::SendRequest<Body>,
    tokio::task::JoinHandle<hyper::Result<()>>,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = client::handshake(TokioExecutor::new(), TokioIo::new(tcp))
        .await
        .expect("h2c handshake");
    (send, tokio::spawn(conn))
}

/// Sends `req` and reads the answer: status and envelope.
async fn exchange(
    send: &mut client::SendRequest<Body>,
    req: http::Request<Body>,
) -> (u16, serde_json::Value) {
    send.ready().await.expect("connection ready");
    let answer = send.send_request(req);
    let resp = tokio::time::timeout(BOUND, answer)
        .await
        .expect("answered in time")
        .expect("answer");
    let status = resp.status().as_u16();
    let body = tokio::time::timeout(BOUND, resp.into_body().collect())
        .await
        .expect("body in time")
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, json)
}

fn post(path: &str, body: Body) -> http::Request<Body> {
    http::Request::post(format!("http://localhost{path}"))
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test]
async fn requests_whose_body_never_comes_are_answered_and_free_the_route() {
    let s = start(true, "body_read_timeout_secs = 1");
    let _up = routes_to_upstream(&s).await;
    let (send, _conn) = h2c(s.public).await;
    // As many body-less streams as the route admits at once: each is answered (20000) after
    // the body timeout instead of holding its stream, and the route, for ever.
    let stalled: Vec<_> = (0..2)
        .map(|_| {
            let mut send = send.clone();
            tokio::spawn(async move {
                exchange(&mut send, post("/api/v1/echoes", Body::new(Never))).await
            })
        })
        .collect();
    for stream in stalled {
        let (status, json) = stream.await.expect("joined");
        assert_eq!(
            (status, json["code"].as_i64()),
            (400, Some(20000)),
            "{json}"
        );
    }
    let mut send = send;
    let (status, json) = exchange(&mut send, post("/api/v1/echoes", Body::from("{\"a\":1}"))).await;
    assert_eq!(
        (status, &json["data"]["len"]),
        (200, &serde_json::json!(7)),
        "{json}"
    );

    // HTTP/1.1 takes the same setting: a body that stops coming fails the request and ends
    // the connection.
    let r = http_raw(
        s.public,
        b"POST /api/v1/echoes HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\r\nabc",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_i64()),
        (400, Some(20000)),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_slow_request_keeps_its_connection_past_the_idle_timeout() {
    let s = start(true, "idle_timeout_secs = 1");
    let _up = routes_to_upstream(&s).await;
    let (mut send, conn) = h2c(s.public).await;
    let began = Instant::now();
    let get = |path: &str| {
        http::Request::get(format!("http://localhost{path}"))
            .body(Body::empty())
            .expect("request")
    };
    // Three seconds upstream: three idle periods with a stream open.
    let (status, json) = exchange(&mut send, get("/api/v1/delays")).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(0)), "{json}");
    assert!(began.elapsed() >= Duration::from_millis(2900));
    // The connection is still there for the next request...
    let (status, json) = exchange(&mut send, get("/healthz")).await;
    assert_eq!((status, json["code"].as_i64()), (200, Some(0)), "{json}");
    // ...and closed, gracefully, once idle.
    let ended = tokio::time::timeout(BOUND, conn)
        .await
        .expect("closed once idle")
        .expect("joined");
    assert!(ended.is_ok(), "a graceful close: {ended:?}");
}

#[tokio::test]
async fn sigterm_lets_an_h2_request_in_flight_finish_then_closes() {
    let mut s = start(true, "shutdown_grace_secs = 20");
    let _up = routes_to_upstream(&s).await;
    let (mut send, conn) = h2c(s.public).await;
    let slow = tokio::spawn(async move {
        let req = http::Request::get("http://localhost/api/v1/delays")
            .body(Body::empty())
            .expect("request");
        exchange(&mut send, req).await
    });
    // The request is upstream (three seconds there) when the server is told to stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    s.terminate();
    let (status, json) = slow.await.expect("joined");
    assert_eq!((status, json["code"].as_i64()), (200, Some(0)), "{json}");
    let ended = tokio::time::timeout(BOUND, conn)
        .await
        .expect("closed after the answer")
        .expect("joined");
    assert!(ended.is_ok(), "a graceful close: {ended:?}");
    assert!(s.wait_exit(10).success());
}

// === HTTP/1.1 ===

/// Whether the server closes `tcp` within the bound, and what it sent before.
async fn closes(tcp: &mut TcpStream) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match tokio::time::timeout(BOUND, tcp.read_to_end(&mut out)).await {
        Ok(_) => Some(out),
        Err(_) => None,
    }
}

#[tokio::test]
async fn http1_idle_and_head_timeouts_come_from_config() {
    let s = start(true, "idle_timeout_secs = 1\nheader_read_timeout_secs = 30");
    let healthz = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    // Kept alive after an answer, then idle: closed after the idle timeout.
    let mut tcp = TcpStream::connect(s.public).await.expect("connect");
    tcp.write_all(healthz).await.expect("write");
    let out = closes(&mut tcp).await.expect("idle connection closed");
    let r = common::parse_response(&out);
    assert_eq!((r.status, r.header("connection")), (200, None), "{r:?}");

    // A head begun after an answer is no longer idle: it gets the (longer) header timeout.
    let mut tcp = TcpStream::connect(s.public).await.expect("connect");
    tcp.write_all(healthz).await.expect("write");
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("answered")
        .expect("read");
    assert!(n > 0);
    tcp.write_all(b"GET /readyz HTTP/1.1\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_secs(3)).await;
    tcp.write_all(b"Host: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let out = closes(&mut tcp).await.expect("closed as asked");
    let r = common::parse_response(&out);
    assert_eq!(
        (r.status, r.json()["code"].as_i64()),
        (200, Some(0)),
        "{r:?}"
    );

    // And the header timeout itself comes from config.
    let s = start(true, "header_read_timeout_secs = 1");
    let mut tcp = TcpStream::connect(s.public).await.expect("connect");
    tcp.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let out = closes(&mut tcp).await.expect("slow head closed");
    assert!(
        out.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&out)
    );
}

// === configuration ===

#[test]
fn zero_or_absurd_limits_are_refused_naming_the_key() {
    for (key, value) in [
        ("header_read_timeout_secs", "0"),
        ("idle_timeout_secs", "0"),
        ("idle_timeout_secs", "86400000"),
        ("body_read_timeout_secs", "0"),
        ("h2_max_concurrent_streams", "0"),
        ("h2_max_concurrent_streams", "100000"),
        ("h2_max_header_list_bytes", "0"),
        ("h2_max_header_list_bytes", "1073741824"),
        ("h2_keepalive_interval_secs", "0"),
        ("h2_keepalive_timeout_secs", "0"),
        ("handshake_timeout_secs", "0"),
    ] {
        let dir = common::temp_dir("h2-cfg");
        let cfg = common::write_config(&dir, &format!("[server]\n{key} = {value}\n"));
        let out = common::tongban()
            .args(["config", "check", "--config"])
            .arg(&cfg)
            .output()
            .expect("run tongban");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{key} = {value} accepted");
        assert!(
            err.contains(&format!("server.{key}")) && err.contains("line 2"),
            "{key} = {value}: {err}"
        );
    }
}

/// Early refusals on `s` (plain): `/api/v1/guarded-items` (real-name: 10006 before the body
/// is read), `/api/v1/small-items` (bodies over 1,000 bytes: 413 at once) and
/// `/api/v1/scarce-items` (one request a minute: 429 after the first).
async fn early_refusal_routes(s: &Server) {
    let instances = serde_json::json!([{"address": "127.0.0.1:9"}]);
    for spec in [
        serde_json::json!({"id": "guarded-items", "prefix": "/api/v1/guarded-items",
            "auth": "real_name", "upstream": {"instances": instances}}),
        serde_json::json!({"id": "small-items", "prefix": "/api/v1/small-items",
            "auth": "anonymous", "max_body_bytes": 1000, "upstream": {"instances": instances}}),
        serde_json::json!({"id": "scarce-items", "prefix": "/api/v1/scarce-items",
            "auth": "anonymous", "upstream": {"instances": instances},
            "limits": [{"by": "route", "rate": 1, "per_ms": 60000, "burst": 1}]}),
    ] {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let put = common::request(
            "PUT",
            &format!("/api/v1/routes/{}", spec["id"].as_str().expect("id")),
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            spec.to_string().as_bytes(),
        );
        let r = http_raw(s.admin, &put).await;
        assert_eq!(r.json()["code"], 0, "{r:?}");
    }
}

/// The early refusals each request of the run meets, in turn: path, body size, and the answer.
const EARLY: [(&str, usize, u16, u64); 4] = [
    ("/api/v1/guarded-items", 4000, 401, 10006),
    ("/api/v1/small-items", 5000, 413, 20000),
    ("/api/v1/scarce-items", 3000, 429, 10019),
    ("/api/v1/unknown-items", 2000, 404, 20404),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_given_before_the_body_is_read_reach_http2_clients_intact() {
    let s = start(true, "");
    early_refusal_routes(&s).await;
    let (send, _conn) = h2c(s.public).await;
    // The scarce route's one request is spent first, so that every later one is refused.
    let (_, _) = exchange(
        &mut send.clone(),
        post("/api/v1/scarce-items", Body::from("{}")),
    )
    .await;
    let mut lost = Vec::new();
    for round in 0..25 {
        let mut calls = Vec::new();
        for i in 0..40 {
            let (path, size, status, code) = EARLY[(round * 40 + i) % EARLY.len()];
            let mut send = send.clone();
            calls.push(tokio::spawn(async move {
                let body = Body::from(vec![b' '; size]);
                let req = http::Request::post(format!("http://localhost{path}"))
                    .header("content-type", "application/json")
                    .header("content-length", size.to_string())
                    .body(body)
                    .expect("request");
                send.ready().await.map_err(|e| e.to_string())?;
                let resp = tokio::time::timeout(BOUND, send.send_request(req))
                    .await
                    .map_err(|_| "no answer in time".to_owned())?
                    .map_err(|e| e.to_string())?;
                let got = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes();
                let v: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                if (got, v["code"].as_u64()) == (status, Some(code)) {
                    Ok(())
                } else {
                    Err(format!("{path}: {got} {v}"))
                }
            }));
        }
        for c in calls {
            if let Err(e) = c.await.expect("joined") {
                lost.push(e);
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 1,000 answers lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_over_http2_gets_every_early_answer() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("curl is needed for this test (Debian: apt-get install curl)");
    }
    let s = start(false, "");
    let auth = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let spec = serde_json::json!({"id": "guarded-items", "prefix": "/api/v1/guarded-items",
        "auth": "real_name", "upstream": {"instances": [{"address": "127.0.0.1:9"}]}});
    let out = std::process::Command::new("curl")
        .args([
            "-sk",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-H",
            &auth,
        ])
        .arg("--data")
        .arg(spec.to_string())
        .arg(format!("https://{}/api/v1/routes/guarded-items", s.admin))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"code\":0"),
        "{out:?}"
    );
    // A thousand requests, each its own curl and connection (as a client's separate calls):
    // curl sends the body after the head, so every answer comes before the body has arrived.
    let port = s.public.port();
    let mut lost = Vec::new();
    for batch in 0..125 {
        let children: Vec<_> = (0..8)
            .map(|i| {
                let (path, want) = if (batch * 8 + i) % 2 == 0 {
                    ("/api/v1/guarded-items", "401")
                } else {
                    ("/api/v1/unknown-items", "404")
                };
                let child = std::process::Command::new("curl")
                    .args([
                        "-sk",
                        "--http2",
                        "-X",
                        "POST",
                        "-H",
                        "Content-Type: application/json",
                    ])
                    .args(["--data", "{}", "-o", "/dev/null", "-w", "%{http_code}"])
                    .arg(format!("https://127.0.0.1:{port}{path}"))
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("curl");
                (child, want)
            })
            .collect();
        for (child, want) in children {
            let out = child.wait_with_output().expect("curl");
            let got = String::from_utf8_lossy(&out.stdout).into_owned();
            if !out.status.success() || got != want {
                lost.push(format!("{:?} {got}", out.status.code()));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of 1,000 answers lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
