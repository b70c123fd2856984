//! The edge as a hostile client meets it, on the wire of the real binary (TLS), with an
//! upstream that records every request it receives: dot-segments cannot reach a route whose
//! auth level was not checked, HEAD never counts against an upstream, slow or impossible
//! bodies take no route capacity, underscored header names and the upstream's software names
//! stay on their side, every answer is the envelope, request ids match the log, and the admin
//! API is never open.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Response, Server};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the upstream received it: its head (request line and header lines) and body.
type Received = (String, Vec<u8>);

/// What the upstream received, in order.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Received>>>);

impl Recorded {
    fn heads(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("recorded")
            .iter()
            .map(|(h, _)| h.clone())
            .collect()
    }

    fn lines(&self) -> Vec<String> {
        self.heads()
            .iter()
            .map(|h| h.lines().next().unwrap_or_default().to_owned())
            .collect()
    }

    fn clear(&self) {
        self.0.lock().expect("recorded").clear();
    }
}

/// An HTTP/1.1 upstream that records each request and answers the envelope, naming its
/// software as upstreams do.
async fn recording_upstream() -> (SocketAddr, Recorded) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    let rec = Recorded::default();
    let r = rec.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = l.accept().await else {
                return;
            };
            let r = r.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        let mut chunk = [0u8; 4096];
                        match tcp.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    let is_head = head.starts_with("HEAD ");
                    r.0.lock().expect("recorded").push((head.clone(), body));
                    let target = head.split(' ').nth(1).unwrap_or_default().to_owned();
                    let json =
                        serde_json::json!({"code": 0, "data": {"target": target}}).to_string();
                    let mut answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nserver: Apache-Coyote/1.1\r\n\
                         x-powered-by: Servlet/3.0\r\ncontent-length: {}\r\n\r\n",
                        json.len()
                    );
                    if !is_head {
                        answer.push_str(&json);
                    }
                    if tcp.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rec)
}

/// The server, with routes to the recording upstream: `public-items` (anonymous, with a
/// breaker), `private-items` (real-name), `narrow-items` (anonymous, two requests at once at
/// most) and `legacy-items` (anonymous, underscored header names forwarded).
async fn server() -> (Server, Recorded) {
    let (up, rec) = recording_upstream().await;
    let s = Server::start(&[]);
    let instances = serde_json::json!([{"address": up.to_string()}]);
    for spec in [
        serde_json::json!({
            "id": "public-items", "prefix": "/api/v1/public-items", "auth": "anonymous",
            "breaker": {"trip": "error_count", "threshold": 3, "min_requests": 1,
                        "stat_interval_ms": 60000, "open_ms": 60000},
            "retry": {"max_retries": 2},
            "upstream": {"instances": instances}
        }),
        serde_json::json!({
            "id": "private-items", "prefix": "/api/v1/private-items", "auth": "real_name",
            "upstream": {"instances": instances}
        }),
        serde_json::json!({
            "id": "narrow-items", "prefix": "/api/v1/narrow-items", "auth": "anonymous",
            "max_concurrency": 2, "max_body_bytes": 1000,
            "upstream": {"instances": instances}
        }),
        serde_json::json!({
            "id": "legacy-items", "prefix": "/api/v1/legacy-items", "auth": "anonymous",
            "underscores_in_headers": true,
            "upstream": {"instances": instances}
        }),
    ] {
        let id = spec["id"].as_str().expect("id").to_owned();
        let r = admin(
            &s,
            "PUT",
            &format!("/api/v1/routes/{id}"),
            &spec.to_string(),
        )
        .await;
        assert_eq!(r.json()["code"], 0, "{r:?}");
    }
    (s, rec)
}

async fn admin(s: &Server, method: &str, path: &str, body: &str) -> Response {
    let auth = format!("Bearer {}", s.admin_token());
    common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        ),
    )
    .await
}

/// Sends `raw` bytes exactly as given over TLS and reads the answer to EOF.
async fn send(s: &Server, raw: &str) -> Response {
    common::https_raw(s.public, s.cert(), raw.as_bytes()).await
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
}

#[tokio::test]
async fn dot_segments_never_reach_a_route_whose_level_was_not_checked() {
    let (s, rec) = server().await;
    // The real-name route refuses an anonymous caller however its path is spelled.
    for path in [
        "/api/v1/private-items/1",
        "/api/v1/public-items/../private-items/1",
        "/api/v1/public-items/%2e%2e/private-items/1",
        "/api/v1/public-items/%2E%2E/private-items/1",
        "/api/v1/public-items/.%2e/private-items/1",
        "/api/v1/public-items/a/b/../../../private-items/1",
        "/api/v1/public-items/./../private-items//1",
        "/api/v1//private-items/1",
        "/api/v1/%70rivate-items/1",
    ] {
        let r = send(&s, &get(path)).await;
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (401, Some(10006)),
            "{path}: {r:?}"
        );
    }
    assert!(
        rec.lines().is_empty(),
        "reached the upstream: {:?}",
        rec.lines()
    );
    // What cannot be made canonical safely is refused before any route.
    for path in [
        "/a/b/../../../",
        "/api/v1/public-items/..%2fprivate-items/1",
        "/api/v1/public-items/..%2Fprivate-items/1",
        "/api/v1/public-items/..%5cprivate-items/1",
        "/api/v1/public-items/%00",
        "/api/v1/public-items/..;/private-items/1",
        "/api/v1/public-items/%zz",
    ] {
        let r = send(&s, &get(path)).await;
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (400, Some(20000)),
            "{path}: {r:?}"
        );
    }
    assert!(
        rec.lines().is_empty(),
        "reached the upstream: {:?}",
        rec.lines()
    );
    // The anonymous route gets the canonical path, which is the one its level was decided on.
    let r = send(
        &s,
        &get("/api/v1/private-items/../public-items/%69tems/./1?q=../x"),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    assert_eq!(
        rec.lines(),
        ["GET /api/v1/public-items/items/1?q=../x HTTP/1.1"]
    );
}

#[tokio::test]
async fn head_is_answered_and_never_counted_against_the_upstream() {
    let (s, rec) = server().await;
    for _ in 0..12 {
        let r = send(
            &s,
            "HEAD /api/v1/public-items/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.is_empty(), "a HEAD answer has no body: {r:?}");
    }
    // Each HEAD went upstream once, as GET, and the breaker stayed closed.
    let lines = rec.lines();
    assert_eq!(lines.len(), 12, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l == "GET /api/v1/public-items/1 HTTP/1.1"),
        "{lines:?}"
    );
    let r = send(&s, &get("/api/v1/public-items/1")).await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (200, Some(0)),
        "{r:?}"
    );
}

#[tokio::test]
async fn slow_bodies_take_no_route_capacity_and_impossible_lengths_are_refused_at_once() {
    let (s, rec) = server().await;
    let connector = common::tls_connector(s.cert(), &[&rustls::version::TLS13]);
    // Four clients start a 100-byte body and send one byte of it.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let tcp = TcpStream::connect(s.public).await.expect("connect");
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(
            b"POST /api/v1/narrow-items HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
        )
        .await
        .expect("write");
        tls.flush().await.expect("flush");
        slow.push(tls);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The route's two slots are free for everyone else.
    for _ in 0..3 {
        let r = send(
            &s,
            "POST /api/v1/narrow-items HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await;
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (200, Some(0)),
            "{r:?}"
        );
    }
    assert_eq!(rec.lines().len(), 3);
    drop(slow);
    // A length no route accepts is refused before the body, which never comes: the answer
    // arrives long before the 30 s a body may pause.
    for len in ["9999999999999999999", "1001"] {
        let raw = format!(
            "POST /api/v1/narrow-items HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n"
        );
        let tcp = TcpStream::connect(s.public).await.expect("connect");
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        tls.write_all(raw.as_bytes()).await.expect("write");
        tls.flush().await.expect("flush");
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&chunk[..n]),
                }
                if got.windows(4).any(|w| w == b"\r\n\r\n") && got.ends_with(b"}") {
                    break;
                }
            }
        })
        .await;
        assert!(answered.is_ok(), "no answer within 10 s for length {len}");
        let r = common::parse_response(&got);
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (413, Some(20000)),
            "{r:?}"
        );
    }
    assert_eq!(rec.lines().len(), 3, "{:?}", rec.lines());
}

#[tokio::test]
async fn underscored_header_names_stay_on_the_client_side_unless_the_route_keeps_them() {
    let (s, rec) = server().await;
    let raw = "POST /api/v1/public-items HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
               Content-Type: application/json\r\nContent-Length: 2\r\nTransfer_Encoding: chunked\r\n\
               X_User: admin\r\nX-Kept: 1\r\n\r\n{}";
    let r = send(&s, raw).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let head = rec.heads().pop().expect("forwarded").to_ascii_lowercase();
    assert!(!head.contains("transfer_encoding"), "{head}");
    assert!(!head.contains("x_user"), "{head}");
    assert!(head.contains("\r\nx-kept: 1"), "{head}");
    rec.clear();
    let r = send(&s, &raw.replace("public-items", "legacy-items")).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let head = rec.heads().pop().expect("forwarded").to_ascii_lowercase();
    assert!(head.contains("\r\nx_user: admin"), "{head}");
}

#[tokio::test]
async fn answers_do_not_name_the_upstream_software() {
    let (s, _rec) = server().await;
    let r = send(&s, &get("/api/v1/public-items/1")).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    assert_eq!(r.header("server"), None, "{r:?}");
    assert_eq!(r.header("x-powered-by"), None, "{r:?}");
}

#[tokio::test]
async fn invalid_path_parameters_answer_the_envelope_on_both_listeners() {
    let (s, _rec) = server().await;
    let r = send(
        &s,
        "DELETE /api/v1/consents/%ff HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (400, Some(20000)),
        "{r:?}"
    );
    for path in [
        "/api/v1/routes/%ff",
        "/api/v1/instances/%c3",
        "/api/v1/routes/%2f",
    ] {
        let r = admin(&s, "GET", path, "").await;
        assert_eq!(
            (r.status, r.json()["code"].as_u64()),
            (400, Some(20000)),
            "{path}: {r:?}"
        );
    }
}

#[tokio::test]
async fn a_request_id_the_log_would_mask_is_replaced_so_log_and_answer_agree() {
    let (s, _rec) = server().await;
    for (sent, kept) in [("req-b2c1-9f3e", true), ("req-13812345678", false)] {
        let raw = format!(
            "GET /api/v1/public-items/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Request-Id: {sent}\r\n\r\n"
        );
        let r = send(&s, &raw).await;
        let answered = r.header("x-request-id").expect("an id").to_owned();
        assert_eq!(answered == sent, kept, "{sent} -> {answered}");
        // The access line carries exactly the answered id.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if s.log_text()
                .contains(&format!("\"request_id\":\"{answered}\""))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {answered}: {}",
                s.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn the_admin_api_is_closed_without_the_generated_token() {
    let s = Server::start(&[]);
    let spec = serde_json::json!({
        "id": "open-items", "prefix": "/api/v1/open-items", "auth": "anonymous",
        "upstream": {"instances": [{"address": "127.0.0.1:9"}]}
    })
    .to_string();
    let put = |auth: Option<String>| {
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(a) = auth {
            headers.push(("Authorization".to_owned(), a));
        }
        let refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        common::request("PUT", "/api/v1/routes/open-items", &refs, spec.as_bytes())
    };
    let r = common::https_raw(s.admin, s.cert(), &put(None)).await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (401, Some(10006)),
        "{r:?}"
    );
    let r = common::https_raw(s.admin, s.cert(), &put(Some("Bearer guess".into()))).await;
    assert_eq!(r.json()["code"], 10008, "{r:?}");
    let token = s.admin_token();
    let r = common::https_raw(s.admin, s.cert(), &put(Some(format!("Bearer {token}")))).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data_dir.join("admin-token"))
            .expect("token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }
    // Nothing of the token reaches the log.
    assert!(!s.log_text().contains(&token));
}
