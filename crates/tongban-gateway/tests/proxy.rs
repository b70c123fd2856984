//! The data path on real sockets: failover under load, retries only where safe, timeouts and
//! envelope normalization, auth levels and routing refusals.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::*;
use http::StatusCode;
use http::request::Parts;
use serde_json::json;
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_gateway::auth::AuthResolver;
use tongban_gateway::routed::Caller;
use tongban_gateway::{Gateway, GatewayOptions};

fn instances(ups: &[&Upstream]) -> serde_json::Value {
    json!(
        ups.iter()
            .map(|u| json!({"address": u.addr.to_string()}))
            .collect::<Vec<_>>()
    )
}

/// Waits, with a generous bound, until `done` reaches `n`.
async fn wait_for_count(done: &AtomicU64, n: u64, what: &str) {
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while done.load(Ordering::SeqCst) < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{what}: {} of {n} requests after 60 s",
        done.load(Ordering::SeqCst)
    );
}

/// The load is measured in requests, not in time: 50 answered before the kill, 200 after it.
/// The gateway's clock stands still, so the dead instance, once ejected, stays ejected however
/// long the run takes, and the retry budget holds its floor (50) plus half of each request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_three_upstreams_under_load_fails_no_idempotent_request() {
    let ups = [
        upstream("a").await,
        upstream("b").await,
        upstream("c").await,
    ];
    let clock = tongban_core::clock::ManualClock::new(Duration::from_secs(1_000));
    let gw = Gateway::new(GatewayOptions {
        clock: Arc::new(clock),
        ..options()
    });
    let refused = gw.apply(vec![route(json!({
        "id": "users", "prefix": "/api/v1/users", "auth": "anonymous",
        "upstream": {"instances": instances(&[&ups[0], &ups[1], &ups[2]]), "balance": "least_request"},
        "timeouts": {"connect_ms": 200, "per_try_ms": 1000, "total_ms": 3000},
        "retry": {"max_retries": 2, "budget_ratio": 0.5, "min_retries_per_sec": 50}
    }))]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    let url = format!("http://{}/api/v1/users/1", g.addr);
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (c, url, done, stop) = (c.clone(), url.clone(), done.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let (s, v) = get(&c, url.clone()).await;
                if s != StatusCode::OK || v["code"] != 0 {
                    failures.push((s, v));
                }
                done.fetch_add(1, Ordering::SeqCst);
            }
            failures
        }));
    }
    wait_for_count(&done, 50, "before the kill").await;
    let b_before = ups[1].behaviour.hits.load(Ordering::SeqCst);
    ups[1].kill().await;
    // Read before `at_kill`: a request answered after `at_kill` that reached a or c before
    // this reading was in flight at it (at most one per load task).
    let others_at_kill: u64 = [&ups[0], &ups[2]]
        .iter()
        .map(|u| u.behaviour.hits.load(Ordering::SeqCst))
        .sum();
    let at_kill = done.load(Ordering::SeqCst);
    wait_for_count(&done, at_kill + 200, "after the kill").await;
    stop.store(true, Ordering::SeqCst);
    let mut failures = Vec::new();
    for t in tasks {
        failures.extend(t.await.expect("load task"));
    }
    let total = done.load(Ordering::SeqCst);
    assert!(
        failures.is_empty(),
        "{} of {total} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(b_before > 0, "b served before it died");
    let others: u64 = [&ups[0], &ups[2]]
        .iter()
        .map(|u| u.behaviour.hits.load(Ordering::SeqCst))
        .sum();
    assert!(
        others - others_at_kill >= 200 - 4,
        "a and c carried the load after the kill: {} requests",
        others - others_at_kill
    );
    let stats = g.gateway.metrics().upstreams_snapshot();
    let b_failures: u64 = stats
        .iter()
        .filter(|(_, a, _)| a == &ups[1].addr.to_string())
        .map(|(_, _, s)| s.failures)
        .sum();
    // Outlier ejection stops sending to the dead instance after a few failures.
    assert!(
        (1..=10).contains(&b_failures),
        "dead instance was tried {b_failures} times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_idempotent_requests_are_retried_after_a_5xx() {
    let a = upstream("a").await;
    a.behaviour.fail_500.store(true, Ordering::SeqCst);
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "items", "prefix": "/api/v1/items", "auth": "anonymous",
        "upstream": {"instances": instances(&[&a])},
        "retry": {"max_retries": 2, "budget_ratio": 1.0, "min_retries_per_sec": 100}
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    let (s, _, v) = send(&c, "POST", format!("http://{}/api/v1/items", g.addr), "{}").await;
    assert_eq!(a.behaviour.hits.load(Ordering::SeqCst), 1, "POST sent once");
    // The upstream's own envelope (10000) is passed on, with its 500 status.
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::INTERNAL_SERVER_ERROR, json!(10000))
    );
    a.behaviour.hits.store(0, Ordering::SeqCst);
    let (_, v) = get(&c, format!("http://{}/api/v1/items/1", g.addr)).await;
    assert_eq!(v["code"], 10000);
    assert_eq!(
        a.behaviour.hits.load(Ordering::SeqCst),
        3,
        "GET tried three times"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_answers_become_envelopes() {
    let a = upstream("a").await;
    let hang = upstream("hang").await;
    hang.behaviour.hang.store(true, Ordering::SeqCst);
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let gw = Gateway::new(options());
    let refused = gw.apply(vec![
        route(
            json!({"id": "raw", "prefix": "/answers", "auth": "anonymous",
            "upstream": {"instances": instances(&[&a])}, "retry": {"max_retries": 0}}),
        ),
        route(
            json!({"id": "down", "prefix": "/api/v1/downs", "auth": "anonymous",
            "upstream": {"instances": [{"address": closed.to_string()}]}}),
        ),
        route(
            json!({"id": "slow", "prefix": "/api/v1/slows", "auth": "anonymous",
            "upstream": {"instances": instances(&[&hang])}, "retry": {"max_retries": 0},
            "timeouts": {"connect_ms": 200, "per_try_ms": 200, "total_ms": 1000}}),
        ),
        route(
            json!({"id": "slower", "prefix": "/api/v1/slowers", "auth": "anonymous",
            "upstream": {"instances": instances(&[&hang])},
            "retry": {"max_retries": 5, "budget_ratio": 1.0, "min_retries_per_sec": 100},
            "timeouts": {"connect_ms": 200, "per_try_ms": 200, "total_ms": 300}}),
        ),
    ]);
    assert!(refused.is_empty(), "{refused:?}");
    let g = run_gateway(gw).await;
    let c = client();
    let base = format!("http://{}", g.addr);
    let (s, v) = get(&c, format!("{base}/answers/html")).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!(30011))
    );
    let (s, v) = get(&c, format!("{base}/answers/text-500")).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!(30013))
    );
    let (s, v) = get(&c, format!("{base}/answers/gzip")).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"code": 0, "data": "zipped"}))
    );
    let (s, v) = get(&c, format!("{base}/api/v1/downs")).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!(30000))
    );
    let (s, v) = get(&c, format!("{base}/api/v1/slows")).await;
    assert_eq!((s.as_u16() / 100, v["code"].clone()), (5, json!(30003)));
    let (s, v) = get(&c, format!("{base}/api/v1/slowers")).await;
    assert_eq!((s.as_u16() / 100, v["code"].clone()), (5, json!(30001)));
    assert_eq!(v["msg"], Code(30001).default_msg());
}

#[derive(Debug)]
struct HeaderResolver;

#[async_trait::async_trait]
impl AuthResolver for HeaderResolver {
    async fn resolve(&self, parts: &Parts) -> Result<Caller, ApiError> {
        let level = match parts
            .headers
            .get("x-test-level")
            .and_then(|v| v.to_str().ok())
        {
            None => return Err(ApiError::new(Code::TOKEN_MISSING)),
            Some(l) => l
                .parse::<AuthLevel>()
                .map_err(|_| ApiError::new(Code::LOGIN_EXPIRED))?,
        };
        Ok(Caller {
            level,
            user: Some("u1".into()),
            app: None,
            face_age: Some(Duration::from_secs(10)),
            session: None,
            face_verified_at: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_levels_refuse_before_the_upstream_sees_anything() {
    let a = upstream("a").await;
    let opts = GatewayOptions {
        auth: Arc::new(HeaderResolver),
        ..options()
    };
    let gw = Gateway::new(opts);
    gw.apply(vec![
        route(
            json!({"id": "profiles", "prefix": "/api/v1/profiles", "auth": "real_name",
            "upstream": {"instances": instances(&[&a])}}),
        ),
        route(
            json!({"id": "certificates", "prefix": "/api/v1/certificates", "auth": "face_verified",
            "face_max_age_secs": 120, "upstream": {"instances": instances(&[&a])}}),
        ),
    ]);
    let g = run_gateway(gw).await;
    let c = client();
    let call = |path: &'static str, level: Option<&'static str>| {
        let c = c.clone();
        let url = format!("http://{}{path}", g.addr);
        async move {
            let mut b = http::Request::builder().uri(url);
            if let Some(l) = level {
                b = b.header("x-test-level", l);
            }
            let (s, _, v) = request(&c, b.body(Default::default()).expect("req")).await;
            (s, v)
        }
    };
    let (s, v) = call("/api/v1/profiles", None).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(10006))
    );
    let (_, v) = call("/api/v1/profiles", Some("anonymous")).await;
    assert_eq!(v["code"], 10006);
    let (s, v) = call("/api/v1/certificates", Some("real_name")).await;
    assert_eq!(
        (s.as_u16(), v["code"].clone()),
        (Code::FACE_REQUIRED.http_status().as_u16(), json!(10003))
    );
    assert_eq!(
        v["data"],
        json!({"required": "face_verified", "max_age": 120})
    );
    assert_eq!(
        a.behaviour.hits.load(Ordering::SeqCst),
        0,
        "nothing reached the upstream"
    );
    let (s, v) = call("/api/v1/profiles", Some("real_name")).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    let (_, v) = call("/api/v1/certificates", Some("face_verified")).await;
    assert_eq!(v["code"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_see_the_peer_in_x_forwarded_for_and_a_chain_only_from_trusted_proxies() {
    let up = upstream("a").await;
    let spec = json!({"id": "forms", "prefix": "/api/v1/forms", "auth": "anonymous",
        "upstream": {"instances": [{"address": up.addr.to_string()}]}});
    let forwarded = |addr: std::net::SocketAddr, sent: Option<&'static str>| {
        let c = client();
        async move {
            let mut req = http::Request::get(format!("http://{addr}/api/v1/forms"));
            if let Some(v) = sent {
                req = req.header("x-forwarded-for", v);
            }
            let (_, _, v) = request(&c, req.body(Default::default()).expect("req")).await;
            v["data"]["forwarded_for"].clone()
        }
    };

    // An untrusted peer: whatever it sent is replaced by its own address.
    let gw = Gateway::new(options());
    gw.apply(vec![route(spec.clone())]);
    let g = run_gateway(gw).await;
    assert_eq!(forwarded(g.addr, None).await, json!("127.0.0.1"));
    assert_eq!(
        forwarded(g.addr, Some("198.51.100.1")).await,
        json!("127.0.0.1"),
        "a forged chain is not passed on"
    );

    // A trusted front proxy: its chain is kept and extended with it.
    let gw = Gateway::new(GatewayOptions {
        trusted_proxies: vec!["127.0.0.0/8".parse().expect("range")],
        ..options()
    });
    gw.apply(vec![route(spec)]);
    let g = run_gateway(gw).await;
    assert_eq!(
        forwarded(g.addr, Some("198.51.100.1")).await,
        json!("198.51.100.1, 127.0.0.1")
    );
    assert_eq!(forwarded(g.addr, None).await, json!("127.0.0.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_the_envelope() {
    let a = upstream("a").await;
    let gw = Gateway::new(options());
    gw.apply(vec![route(
        json!({"id": "users", "prefix": "/api/v1/users", "auth": "anonymous",
        "methods": ["GET"],
        "upstream": {"instances": instances(&[&a]), "strip_prefix": true}}),
    )]);
    let g = run_gateway(gw).await;
    let c = client();
    let (s, v) = get(&c, format!("http://{}/nothing", g.addr)).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!(20404))
    );
    let (_, _, v) = send(
        &c,
        "DELETE",
        format!("http://{}/api/v1/users/1", g.addr),
        "",
    )
    .await;
    assert_eq!(v["code"], 20002);
    let (_, v) = get(&c, format!("http://{}/api/v1/users/7?x=1", g.addr)).await;
    assert_eq!(
        (&v["data"]["path"], &v["data"]["query"]),
        (&json!("/7"), &json!("x=1")),
        "prefix stripped, query kept"
    );
    let (_, v) = get(&c, format!("http://{}/api/v1/users", g.addr)).await;
    assert_eq!(
        (&v["data"]["path"], &v["data"]["query"]),
        (&json!("/"), &json!(null))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_health_checks_take_a_dead_instance_out_before_any_request_fails() {
    let (a, b) = (upstream("a").await, upstream("b").await);
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "users", "prefix": "/api/v1/users", "auth": "anonymous",
        "upstream": {"instances": instances(&[&a, &b])},
        "retry": {"max_retries": 0}
    }))]);
    b.kill().await;
    gw.check_health(Duration::from_millis(200)).await;
    let g = run_gateway(gw).await;
    let c = client();
    for _ in 0..20 {
        let (s, v) = get(&c, format!("http://{}/api/v1/users", g.addr)).await;
        assert_eq!(
            (s, v["data"]["instance"].clone()),
            (StatusCode::OK, json!("a"))
        );
    }
}

/// An upstream that keeps connections alive in its headers but closes each one soon after
/// answering (as servers with a short idle timeout do). Pooled connections it closed must be
/// found before reuse: a POST, which the retry policy never repeats, still always succeeds,
/// and reaches the upstream exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_the_upstream_closed_while_idle_are_never_used() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                // One request (headers and a small body), one answer, then close.
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                h.fetch_add(1, Ordering::SeqCst);
                let body = r#"{"code":0,"data":{}}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(answer.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            });
        }
    });
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "items", "prefix": "/api/v1/items", "auth": "anonymous",
        "upstream": {"instances": [{"address": addr.to_string()}]},
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    for i in 0..20 {
        let (s, _, v) = send(&c, "POST", format!("http://{}/api/v1/items", g.addr), "{}").await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::OK, json!(0)),
            "POST {i}"
        );
        // Let the upstream close the connection the gateway just pooled.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        20,
        "each POST reached the upstream once"
    );
}

/// What a scripted upstream does with the n-th request (from 0) on a connection.
enum Reply {
    /// Writes these bytes, then reads the next request.
    Answer(Vec<u8>),
    /// Writes these bytes and closes.
    AnswerAndClose(Vec<u8>),
    /// Closes without answering (as an upstream whose idle timeout fired as the request came).
    Close,
}

/// A raw HTTP/1.1 upstream on 127.0.0.1 that answers by `script(n, head)`. Returns its address,
/// the requests it received (head and body as text, in order) and the connections it accepted.
async fn scripted(
    script: fn(usize, &str) -> Reply,
) -> (
    std::net::SocketAddr,
    Arc<std::sync::Mutex<Vec<String>>>,
    Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let heads = Arc::new(std::sync::Mutex::new(Vec::new()));
    let conns = Arc::new(AtomicU64::new(0));
    let (h, c) = (heads.clone(), conns.clone());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 4096];
                for n in 0.. {
                    // One request: its head, then the body its content-length announces.
                    let end = loop {
                        if let Some(i) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    };
                    let head = String::from_utf8_lossy(&got[..end]).into_owned();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while got.len() < end + len {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => got.extend_from_slice(&buf[..k]),
                        }
                    }
                    let body = String::from_utf8_lossy(&got[end..end + len]).into_owned();
                    got.drain(..end + len);
                    h.lock().expect("heads").push(format!("{head}{body}"));
                    match script(n, &head) {
                        Reply::Answer(b) => {
                            if s.write_all(&b).await.is_err() {
                                return;
                            }
                        }
                        Reply::AnswerAndClose(b) => {
                            let _ = s.write_all(&b).await;
                            return;
                        }
                        Reply::Close => return,
                    }
                }
            });
        }
    });
    (addr, heads, conns)
}

/// `abc…zabc…`, `n` letters long.
fn letters(n: u32) -> String {
    (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn envelope_answer(extra_head: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{extra_head}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Every way HTTP/1.1 delimits an answer is read whole; answers that cannot be read, or are
/// larger than the gateway accepts, become 30000; kept-alive connections are reused.
#[tokio::test]
async fn answers_in_every_http_1_1_framing_are_read_whole() {
    use std::io::Write;
    let (addr, heads, conns) = scripted(|_, head| {
        let path = head.split(' ').nth(1).unwrap_or_default();
        let env = format!(r#"{{"code":0,"data":"{path}"}}"#);
        match path {
            "/chunked" => {
                let (a, b) = env.split_at(7);
                Reply::Answer(
                    format!(
                        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:x};x=1\r\n{a}\r\n{:X}\r\n{b}\r\n0\r\nx-t: 1\r\n\r\n",
                        a.len(),
                        b.len()
                    )
                    .into_bytes(),
                )
            }
            "/gzip-chunked" => {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(env.as_bytes()).expect("gzip");
                let z = enc.finish().expect("gzip");
                let mut a = format!(
                    "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
                    z.len()
                )
                .into_bytes();
                a.extend_from_slice(&z);
                a.extend_from_slice(b"\r\n0\r\n\r\n");
                Reply::Answer(a)
            }
            "/continue" => {
                let mut a = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
                a.extend(envelope_answer("", &env));
                Reply::Answer(a)
            }
            "/until-close" => Reply::AnswerAndClose(
                format!("HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{env}")
                    .into_bytes(),
            ),
            "/huge" => Reply::Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 9000000\r\n\r\n".to_vec()),
            "/large" => Reply::Answer(envelope_answer(
                "",
                &format!(r#"{{"code":0,"data":"{}"}}"#, letters(300_000)),
            )),
            "/garbage" => Reply::Answer(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
            "/cut" => Reply::AnswerAndClose(
                b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"code\":0".to_vec(),
            ),
            _ => Reply::Answer(envelope_answer("", &env)),
        }
    })
    .await;
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "wire", "prefix": "/", "auth": "anonymous", "retry": {"max_retries": 0},
        "upstream": {"instances": [{"address": addr.to_string()}], "strip_prefix": false},
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    let base = format!("http://{}", g.addr);
    for path in [
        "/chunked",
        "/chunked",
        "/gzip-chunked",
        "/continue",
        "/plain",
    ] {
        let (s, v) = get(&c, format!("{base}{path}")).await;
        assert_eq!((s, v), (StatusCode::OK, json!({"code": 0, "data": path})));
    }
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one kept-alive connection for all of them"
    );
    let (s, v) = get(&c, format!("{base}/until-close")).await;
    assert_eq!(
        (s, v),
        (StatusCode::OK, json!({"code": 0, "data": "/until-close"}))
    );
    for path in ["/huge", "/garbage", "/cut"] {
        let (s, v) = get(&c, format!("{base}{path}")).await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::BAD_GATEWAY, json!(30000)),
            "{path}"
        );
    }
    // A large answer (read into a buffer of its own) arrives whole, and the connection is
    // reused after it.
    let (s, v) = get(&c, format!("{base}/large")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        v["data"] == letters(300_000).as_str(),
        "the large body arrived whole"
    );
    let (s, v) = get(&c, format!("{base}/plain")).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    // A connection left out of step is not reused: the next request still succeeds.
    let (s, v) = get(&c, format!("{base}/plain")).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    // A body too large to go out with the head in one write still arrives whole.
    let big = letters(100_000);
    let (s, _, v) = send(&c, "POST", format!("{base}/big"), &big).await;
    assert_eq!((s, v["code"].clone()), (StatusCode::OK, json!(0)));
    // What went out: a host, and a length only where there is content.
    let heads = heads.lock().expect("heads").clone();
    assert!(
        heads[0].starts_with("GET /chunked HTTP/1.1\r\n"),
        "{}",
        heads[0]
    );
    assert!(
        heads[0].to_ascii_lowercase().contains("\r\nhost: "),
        "{}",
        heads[0]
    );
    assert!(!heads[0].contains("content-length"), "{}", heads[0]);
    let sent = heads.last().expect("the POST");
    assert!(sent.starts_with("POST /big HTTP/1.1\r\n"));
    assert!(sent.contains("\r\ncontent-length: 100000\r\n"));
    assert!(
        sent.ends_with(&format!("\r\n\r\n{big}")),
        "the body arrived whole"
    );
}

/// An upstream that answers the first request on each connection and closes on the second
/// without answering. A GET that meets such a close is sent once more on a new connection; a
/// POST is not (the upstream may have acted on it), and the client gets 30000.
#[tokio::test]
async fn a_reused_connection_closed_unanswered_resends_only_idempotent_requests() {
    let (addr, heads, conns) = scripted(|n, _| match n {
        0 => Reply::Answer(envelope_answer("", r#"{"code":0,"data":{}}"#)),
        _ => Reply::Close,
    })
    .await;
    let gw = Gateway::new(options());
    gw.apply(vec![route(json!({
        "id": "items", "prefix": "/api/v1/items", "auth": "anonymous",
        "retry": {"max_retries": 0},
        "upstream": {"instances": [{"address": addr.to_string()}]},
    }))]);
    let g = run_gateway(gw).await;
    let c = client();
    let url = format!("http://{}/api/v1/items", g.addr);
    for i in 0..2 {
        let (s, v) = get(&c, url.clone()).await;
        assert_eq!(
            (s, v["code"].clone()),
            (StatusCode::OK, json!(0)),
            "GET {i}"
        );
    }
    assert_eq!(
        heads.lock().expect("heads").len(),
        3,
        "the second GET went out twice"
    );
    assert_eq!(conns.load(Ordering::SeqCst), 2);
    let (s, _, v) = send(&c, "POST", url, r#"{"a":1}"#).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::BAD_GATEWAY, json!(30000))
    );
    let heads = heads.lock().expect("heads").clone();
    assert_eq!(heads.len(), 4, "the POST went out once");
    assert!(heads[3].starts_with("POST /"), "{}", heads[3]);
    assert!(heads[3].contains("content-length: 7\r\n"), "{}", heads[3]);
}
