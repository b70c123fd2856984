//! HTTP/1.1 as the server reads and writes it, on the wire of the real binary (TLS): kept-alive
//! and pipelined requests, bodies in every framing, `100 Continue`, HEAD, HTTP/1.0, and the
//! requests refused before the application (smuggling shapes, oversized heads).

mod common;

use std::time::Duration;

use common::{Response, Server};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

async fn connect(s: &Server) -> TlsStream<TcpStream> {
    let connector = common::tls_connector(s.cert(), &[&rustls::version::TLS13]);
    let tcp = TcpStream::connect(s.public).await.expect("connect");
    connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake")
}

/// Reads one whole response from `io` (by its length or chunked framing; for HEAD, the head
/// only), keeping what follows it in `buf`.
async fn read_one<R: AsyncRead + Unpin>(io: &mut R, buf: &mut Vec<u8>, head: bool) -> Response {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head_len = end + 4;
            let r = common::parse_response(&buf[..head_len]);
            let body_len = if head || r.status == 100 || r.status == 204 || r.status == 304 {
                Some(0)
            } else if let Some(n) = r.header("content-length") {
                Some(n.parse::<usize>().expect("length"))
            } else {
                // Chunked: complete once the last chunk and the empty trailer arrived.
                buf[head_len..]
                    .windows(5)
                    .position(|w| w == b"0\r\n\r\n")
                    .map(|p| p + 5)
            };
            if let Some(n) = body_len
                && buf.len() >= head_len + n
            {
                let whole: Vec<u8> = buf.drain(..head_len + n).collect();
                return common::parse_response(&whole);
            }
        }
        let mut chunk = [0u8; 16384];
        let n = tokio::time::timeout(Duration::from_secs(10), io.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no whole response within 10 s: {:?}",
                    String::from_utf8_lossy(buf)
                )
            })
            .expect("read");
        assert!(
            n > 0,
            "closed before a whole response: {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `io` (reads EOF) within 5 s.
async fn closed<R: AsyncRead + Unpin>(io: &mut R) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_secs(5), io.read_to_end(&mut rest)).await,
        Ok(Ok(_)) | Ok(Err(_))
    )
}

const ADMIN_TOKEN: &str = "http1-admin-token-0123456789";

fn sm3_hex(b: &[u8]) -> String {
    tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(b))
}

/// The server with an anonymous gateway route, `/api/v1/echoes`, to an upstream that answers
/// each request body's length and SM3 digest.
async fn server_with_echo() -> (Server, tokio::task::JoinHandle<()>) {
    let echo = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        axum::Json(
            serde_json::json!({"code": 0, "data": {"len": body.len(), "sm3": sm3_hex(&body)}}),
        )
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up = l.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(l, echo).await;
    });
    let dir = common::temp_dir("http1");
    let cfg = common::write_config(
        &dir,
        &format!(
            "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\n\
             [admin]\ntoken_sm3 = \"{}\"\n",
            sm3_hex(ADMIN_TOKEN.as_bytes())
        ),
    );
    let s = Server::start_with(&dir, &cfg, &[]);
    let spec = serde_json::json!({
        "id": "echoes", "prefix": "/api/v1/echoes", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.to_string()}]}
    })
    .to_string();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let put = common::request(
        "PUT",
        "/api/v1/routes/echoes",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        spec.as_bytes(),
    );
    let r = common::https_raw(s.admin, s.cert(), &put).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    (s, task)
}

#[tokio::test]
async fn kept_alive_and_pipelined_requests_are_answered_in_order() {
    let s = Server::start(&[]);
    let mut tls = connect(&s).await;
    let mut buf = Vec::new();
    // One by one on the same connection.
    for _ in 0..3 {
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await
            .expect("write");
        let r = read_one(&mut tls, &mut buf, false).await;
        assert_eq!((r.status, r.json()["code"].as_i64()), (200, Some(0)));
        assert!(
            r.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{r:?}"
        );
        assert_eq!(r.header("connection"), None);
    }
    // Three in one write: three answers, in order, then the connection closes as asked.
    tls.write_all(
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /no/such/path HTTP/1.1\r\nHost: localhost\r\n\r\n\
          GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("write");
    let codes: Vec<i64> = [
        read_one(&mut tls, &mut buf, false).await,
        read_one(&mut tls, &mut buf, false).await,
        read_one(&mut tls, &mut buf, false).await,
    ]
    .iter()
    .map(|r| r.json()["code"].as_i64().expect("code"))
    .collect();
    assert_eq!(codes, [0, 20404, 0]);
    assert!(closed(&mut tls).await, "Connection: close is honoured");
}

#[tokio::test]
async fn request_bodies_arrive_whole_in_every_framing() {
    let (s, _up) = server_with_echo().await;
    let big: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let chunked = |body: &[u8], piece: usize| -> Vec<u8> {
        let mut out = Vec::new();
        for c in body.chunks(piece) {
            out.extend_from_slice(format!("{:x};ext=1\r\n", c.len()).as_bytes());
            out.extend_from_slice(c);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\nTrailer-Field: x\r\n\r\n");
        out
    };
    let small = b"{\"a\":1}".to_vec();
    let cases: [(&str, Vec<u8>, &[u8]); 4] = [
        (
            "length, with the head",
            [
                format!("Content-Length: {}\r\n\r\n", small.len()).into_bytes(),
                small.clone(),
            ]
            .concat(),
            &small,
        ),
        (
            "length, 200 KB",
            [
                format!("Content-Length: {}\r\n\r\n", big.len()).into_bytes(),
                big.clone(),
            ]
            .concat(),
            &big,
        ),
        (
            "chunked, 200 KB",
            [
                b"Transfer-Encoding: chunked\r\n\r\n".to_vec(),
                chunked(&big, 7000),
            ]
            .concat(),
            &big,
        ),
        ("empty", b"Content-Length: 0\r\n\r\n".to_vec(), b""),
    ];
    let mut tls = connect(&s).await;
    let mut buf = Vec::new();
    let echoed = |r: &Response| {
        (
            r.json()["data"]["len"].as_u64(),
            r.json()["data"]["sm3"].as_str().map(str::to_owned),
        )
    };
    for (what, rest, body) in cases {
        let req = [
            b"POST /api/v1/echoes HTTP/1.1\r\nHost: localhost\r\n".to_vec(),
            rest,
        ]
        .concat();
        tls.write_all(&req).await.expect("write");
        let r = read_one(&mut tls, &mut buf, false).await;
        assert_eq!(
            echoed(&r),
            (Some(body.len() as u64), Some(sm3_hex(body))),
            "{what}: {r:?}"
        );
    }
    // Sent slowly, in pieces, after the head: the application reads it as it comes.
    tls.write_all(
        b"POST /api/v1/echoes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .expect("head");
    for piece in chunked(&small, 3).chunks(4) {
        tls.flush().await.expect("flush");
        tokio::time::sleep(Duration::from_millis(50)).await;
        tls.write_all(piece).await.expect("piece");
    }
    let r = read_one(&mut tls, &mut buf, false).await;
    assert_eq!(
        echoed(&r),
        (Some(small.len() as u64), Some(sm3_hex(&small)))
    );
    // The connection is still in step after all of them.
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_one(&mut tls, &mut buf, false).await.json()["code"], 0);

    // A malformed chunk: not passed on as a body, and the connection ends.
    tls.write_all(b"POST /api/v1/echoes HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        .await
        .expect("write");
    let r = read_one(&mut tls, &mut buf, false).await;
    assert_ne!(r.json()["code"], 0, "{r:?}");
    assert!(closed(&mut tls).await);
}

#[tokio::test]
async fn a_client_that_expects_100_continue_gets_it_before_sending_the_body() {
    let (s, _up) = server_with_echo().await;
    let mut tls = connect(&s).await;
    let mut buf = Vec::new();
    tls.write_all(
        b"POST /api/v1/echoes HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n",
    )
    .await
    .expect("head");
    tls.flush().await.expect("flush");
    let interim = read_one(&mut tls, &mut buf, false).await;
    assert_eq!(interim.status, 100);
    tls.write_all(b"{\"a\":1}").await.expect("body");
    let r = read_one(&mut tls, &mut buf, false).await;
    assert_eq!(r.json()["data"]["len"], 7, "{r:?}");
}

#[tokio::test]
async fn head_and_http_1_0_answers_are_framed_as_their_versions_say() {
    let s = Server::start(&[]);
    let mut tls = connect(&s).await;
    let mut buf = Vec::new();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let get = read_one(&mut tls, &mut buf, false).await;
    tls.write_all(b"HEAD /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let head = read_one(&mut tls, &mut buf, true).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));
    // No body followed the HEAD answer: the next answer starts right after it.
    tls.write_all(b"GET /readyz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .expect("write");
    let r = read_one(&mut tls, &mut buf, false).await;
    assert_eq!(r.json()["code"], 0);
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // HTTP/1.0 without keep-alive: answered, then closed.
    tls.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    assert_eq!(read_one(&mut tls, &mut buf, false).await.json()["code"], 0);
    assert!(closed(&mut tls).await);
}

#[tokio::test]
async fn ambiguous_or_oversized_requests_are_refused_and_the_connection_closed() {
    let s = Server::start(&[]);
    let huge = format!("X-Filler: {}\r\n", "a".repeat(70 * 1024));
    let cases = [
        // Content-Length and Transfer-Encoding together: the classic smuggling shape. The
        // "second request" in the body must never be served.
        (
            "POST /api/v1/login-requests HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\
             Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                .to_owned(),
            400,
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_owned(),
            400,
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n".to_owned(),
            501,
        ),
        ("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n".to_owned(), 400),
        ("GET /a b c HTTP/1.1\r\n\r\n".to_owned(), 400),
        // Two Host headers could send one request down two routes.
        (
            "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_owned(),
            400,
        ),
        ("GET /healthz HTTP/1.1\r\n\r\n".to_owned(), 400),
        (format!("GET / HTTP/1.1\r\n{huge}\r\n"), 431),
    ];
    for (raw, status) in cases {
        let mut tls = connect(&s).await;
        tls.write_all(raw.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let r = read_one(&mut tls, &mut buf, false).await;
        assert_eq!(r.status, status, "{raw:.80}");
        assert_eq!(r.json()["code"], 20000, "{raw:.80}");
        assert_eq!(r.header("connection"), Some("close"));
        assert!(closed(&mut tls).await, "{raw:.80}");
        assert!(
            buf.is_empty(),
            "nothing after the refusal: {:?}",
            String::from_utf8_lossy(&buf)
        );
    }
    // The server is unharmed.
    assert_eq!(
        common::get(s.public, s.cert(), "/healthz").await.json()["code"],
        0
    );
}
