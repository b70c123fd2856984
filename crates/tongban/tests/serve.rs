//! `tongban serve` end to end: the real binary, real TLS, real sockets.

mod common;

use std::time::Duration;

use common::{Server, get, https_raw, request};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn health_and_readiness_on_both_listeners() {
    let s = Server::start(&[]);
    for addr in [s.public, s.admin] {
        let r = get(addr, s.cert(), "/healthz").await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.json(),
            serde_json::json!({"code": 0, "data": {"status": "live"}})
        );
        let r = get(addr, s.cert(), "/readyz").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["code"], 0);
        assert_eq!(r.json()["data"]["storage"], "sqlite");
    }
    // The portal home page is served on the public listener only.
    let r = get(s.public, s.cert(), "/").await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("<html lang=\"zh-CN\">"));
    assert_eq!(get(s.admin, s.cert(), "/").await.json()["code"], 20404);
}

#[tokio::test]
async fn the_certificate_expiry_is_a_metric_on_the_admin_listener() {
    let s = Server::start(&[]);
    let auth = format!("Bearer {}", s.admin_token());
    let r = https_raw(
        s.admin,
        s.cert(),
        &request("GET", "/metrics", &[("Authorization", &auth)], b""),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body).into_owned();
    let gauge = |name: &str| -> i64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    let not_after =
        tongban_server::tls::not_after(&s.cert()).expect("the served certificate parses");
    assert_eq!(
        gauge("tongban_tls_certificate_not_after_seconds"),
        i64::try_from(not_after).expect("fits")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let left = gauge("tongban_tls_certificate_expiry_seconds");
    let expected = i64::try_from(not_after).expect("fits") - i64::try_from(now).expect("fits");
    assert!((left - expected).abs() < 300, "{left} vs {expected}");
    assert!(
        left > 30 * 86_400,
        "a fresh self-signed certificate: {left} s left"
    );
}

#[tokio::test]
async fn gateway_generated_errors_answer_the_envelope() {
    let s = Server::start(&[]);
    let r = get(s.public, s.cert(), "/no/such/path").await;
    assert_eq!(
        (r.status, r.json()),
        (404, serde_json::json!({"code": 20404, "msg": "404"}))
    );
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let r = https_raw(s.public, s.cert(), &request("DELETE", "/healthz", &[], b"")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["code"], 20002);

    let r = https_raw(
        s.public,
        s.cert(),
        &request(
            "POST",
            "/readyz",
            &[("Content-Type", "application/json")],
            b"{bad",
        ),
    )
    .await;
    assert_eq!((r.status, r.json()["code"].as_u64()), (405, Some(20002)));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let s = Server::start(&[]);
    let r = https_raw(
        s.public,
        s.cert(),
        &request(
            "GET",
            "/healthz",
            &[("X-Request-Id", "trace-0123456789")],
            b"",
        ),
    )
    .await;
    assert_eq!(r.header("x-request-id"), Some("trace-0123456789"));
    // An id that could smuggle data into logs is replaced.
    let r = https_raw(
        s.public,
        s.cert(),
        &request(
            "GET",
            "/healthz",
            &[("X-Request-Id", "13812341234 张三")],
            b"",
        ),
    )
    .await;
    let id = r.header("x-request-id").expect("generated id").to_owned();
    assert_eq!(id.len(), 32);
    std::thread::sleep(Duration::from_millis(200));
    let logs = s.log_text();
    assert!(logs.contains("trace-0123456789"), "{logs}");
    assert!(logs.contains(&id), "{logs}");
}

#[tokio::test]
async fn an_id_number_in_the_query_leaves_no_trace_in_the_logs() {
    let s = Server::start(&[]);
    let id = "11010519491231002X";
    let phone = "13912345678";
    let path = format!(
        "/api/v1/citizens/{id}/materials?idcard={id}&mobile={phone}&q=%E5%BC%A0%E4%B8%89%E4%B8%B0&raw={id}"
    );
    let r = https_raw(
        s.public,
        s.cert(),
        &request(
            "GET",
            &path,
            &[
                ("User-Agent", &format!("app/1.0 ({phone}; {id})")),
                ("X-Request-Id", "pii-test-0001"),
            ],
            b"",
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 20404);
    std::thread::sleep(Duration::from_millis(200));
    let logs = s.log_text();
    let line = logs
        .lines()
        .find(|l| l.contains("pii-test-0001"))
        .expect("access log line");
    assert!(
        line.contains("110***********002X"),
        "masked form is logged: {line}"
    );
    let fields: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(
        fields["client_ip"], "127.0.0.1",
        "the connection's peer: {line}"
    );
    assert!(!logs.contains(id), "ID number leaked: {logs}");
    assert!(
        !logs.contains("11010519491231002"),
        "ID number leaked: {logs}"
    );
    assert!(!logs.contains(phone), "phone leaked: {logs}");
    assert!(!logs.contains("张三丰"), "name leaked: {logs}");
}

/// Builds a minimal ClientHello offering only `version` (no supported_versions extension).
fn client_hello(version: [u8; 2], suites: &[u16]) -> Vec<u8> {
    let mut ext = Vec::new();
    // supported_groups: x25519, secp256r1.
    ext.extend_from_slice(&[0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17]);
    // ec_point_formats: uncompressed.
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
    // signature_algorithms: ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, rsa_pkcs1_sha256.
    ext.extend_from_slice(&[
        0x00, 0x0d, 0x00, 0x08, 0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x04, 0x01,
    ]);
    let mut body = Vec::new();
    body.extend_from_slice(&version);
    body.extend_from_slice(&[0x42; 32]);
    body.push(0); // session id
    body.extend_from_slice(&u16::try_from(suites.len() * 2).expect("len").to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&u16::try_from(ext.len()).expect("len").to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&u32::try_from(body.len()).expect("len").to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&u16::try_from(hs.len()).expect("len").to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// The first bytes the server answers a raw ClientHello with (empty if it just closes).
async fn first_answer(addr: std::net::SocketAddr, hello: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(hello).await.expect("write");
    let mut buf = vec![0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf))
        .await
        .expect("server answers or closes")
        .unwrap_or(0);
    buf.truncate(n);
    buf
}

#[tokio::test]
async fn tls_1_0_and_1_1_are_refused_1_2_and_1_3_succeed() {
    let s = Server::start(&[]);
    // ECDHE-ECDSA/RSA with AES-CBC (TLS 1.0/1.1 suites) and AES-GCM (TLS 1.2).
    let suites = [0xc009, 0xc013, 0x002f, 0xc02b, 0xc02f];
    // Control: the same hand-made hello at TLS 1.2 gets a ServerHello (handshake record 0x16).
    let ok = first_answer(s.public, &client_hello([0x03, 0x03], &suites)).await;
    assert_eq!(
        ok.first(),
        Some(&0x16),
        "TLS 1.2 hello must be answered with a ServerHello"
    );
    for (name, v) in [("TLS 1.0", [0x03, 0x01]), ("TLS 1.1", [0x03, 0x02])] {
        let ans = first_answer(s.public, &client_hello(v, &suites)).await;
        assert_ne!(
            ans.first(),
            Some(&0x16),
            "{name} must not get a ServerHello: {ans:02x?}"
        );
        if let Some(&t) = ans.first() {
            assert_eq!(t, 0x15, "{name}: expected an alert record, got {ans:02x?}");
            assert_eq!(
                ans.get(6),
                Some(&70),
                "{name}: expected a protocol_version alert"
            );
        }
    }
    for (want, version) in [
        (rustls::ProtocolVersion::TLSv1_2, &rustls::version::TLS12),
        (rustls::ProtocolVersion::TLSv1_3, &rustls::version::TLS13),
    ] {
        let connector = common::tls_connector(s.cert(), &[version]);
        let tcp = TcpStream::connect(s.public).await.expect("connect");
        let mut tls = connector
            .connect(ServerName::try_from("localhost").expect("name"), tcp)
            .await
            .expect("handshake");
        assert_eq!(tls.get_ref().1.protocol_version(), Some(want));
        tls.write_all(&request("GET", "/healthz", &[], b""))
            .await
            .expect("write");
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        assert_eq!(common::parse_response(&raw).json()["code"], 0);
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish() {
    let mut s = Server::start(&[]);
    let connector = common::tls_connector(s.cert(), &[&rustls::version::TLS13]);
    let tcp = TcpStream::connect(s.public).await.expect("connect");
    let mut tls = connector
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("handshake");
    // Half a request is in flight when the signal arrives.
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .expect("write");
    tls.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer accepted...
    assert!(
        TcpStream::connect(s.public).await.is_err(),
        "listener still open after SIGTERM"
    );
    // ...but the request in flight completes.
    tls.write_all(b"Connection: close\r\n\r\n")
        .await
        .expect("finish request");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    let r = common::parse_response(&raw);
    assert_eq!((r.status, r.json()["code"].as_u64()), (200, Some(0)));
    let status = s.wait_exit(15);
    assert!(status.success(), "exit status {status}: {}", s.log_text());
    assert!(s.log_text().contains("Stopped."));
}

#[tokio::test]
async fn always_200_switch_keeps_the_code() {
    let s = Server::start(&[("TONGBAN_SERVER__ALWAYS_200", "true")]);
    let r = get(s.public, s.cert(), "/missing").await;
    assert_eq!((r.status, r.json()["code"].as_u64()), (200, Some(20404)));
}

#[tokio::test]
async fn postgres_backend_by_configuration() {
    let (url, _) = common::pg_schema_url("serve").await;
    let s = Server::start(&[("TONGBAN_STORAGE__URL", &url)]);
    let r = get(s.admin, s.cert(), "/readyz").await;
    assert_eq!(r.json()["data"]["storage"], "postgres");
    // The configured URL (with any password) is never printed in full.
    assert!(
        !s.log_text()
            .contains("postgres://postgres@127.0.0.1:5432/test?")
    );
}

/// The same binary with cluster backends, chosen by configuration only, and each backend
/// carrying what it is configured to carry, seen from outside the process:
/// - NATS: a route stored through the admin API is in the config-centre bucket; a route put
///   straight into the bucket (as another instance's admin API would) is served; an instance
///   registered through the admin API is in the registry bucket, and the route that names its
///   service reaches it;
/// - Redis: a route's rate limit counts under its key there: the limit refuses, and deleting
///   the key (and only that) lets the next request through;
/// - PostgreSQL: no SQLite file is made, and the envelope keys the server publishes are the
///   ones of the keyring stored in the PostgreSQL schema.
#[tokio::test]
async fn cluster_backends_by_configuration() {
    use tongban_governance::config::{Expect, NatsConfig};
    use tongban_governance::registry::NatsRegistry;
    use tongban_governance::{ConfigCentre, Registry, Timings};

    const NATS: &str = "nats://127.0.0.1:4222";
    let (pg, schema) = common::pg_schema_url("cluster").await;
    let prefix = format!("t_{schema}");
    let s = Server::start(&[
        ("TONGBAN_STORAGE__URL", &pg),
        ("TONGBAN_CLUSTER__REDIS_URL", "redis://127.0.0.1:6379/0"),
        ("TONGBAN_CLUSTER__NATS_URL", NATS),
        ("TONGBAN_CLUSTER__NATS_BUCKET_PREFIX", &prefix),
    ]);
    let upstream = axum::Router::new().fallback(|uri: http::Uri| async move {
        axum::Json(serde_json::json!({"code": 0, "data": {"from": "upstream", "path": uri.path()}}))
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up = l.local_addr().expect("addr");
    let _server = tokio::spawn(async move {
        let _ = axum::serve(l, upstream).await;
    });
    let auth = format!("Bearer {}", s.admin_token());
    let admin = |method: &'static str, path: String, body: String| {
        let (auth, cert) = (auth.clone(), s.cert());
        async move {
            let headers = [
                ("Content-Type", "application/json"),
                ("Authorization", auth.as_str()),
            ];
            let r = https_raw(
                s.admin,
                cert,
                &request(method, &path, &headers, body.as_bytes()),
            )
            .await;
            assert_eq!(
                (r.status, r.json()["code"].as_u64()),
                (200, Some(0)),
                "{method} {path}: {}",
                String::from_utf8_lossy(&r.body)
            );
            r.json()
        }
    };
    // Ids of this run: Redis and NATS are shared with other tests.
    let run = std::process::id();
    let (limited, discovered, service) = (
        format!("progress-{run}"),
        format!("permits-{run}"),
        format!("permit-svc-{run}"),
    );

    // NATS config centre: the admin API stores the route there.
    let spec = serde_json::json!({
        "id": limited, "prefix": "/api/v1/progress-reports", "auth": "anonymous",
        "limits": [{"by": "ip", "rate": 1, "per_ms": 60000, "burst": 2}],
        "upstream": {"instances": [{"address": up.to_string()}]}
    });
    admin("PUT", format!("/api/v1/routes/{limited}"), spec.to_string()).await;
    let config = NatsConfig::connect(NATS, &format!("{prefix}_config"))
        .await
        .expect("the config-centre bucket");
    let stored = config
        .get(tongban_gateway::ROUTES_NAMESPACE, &limited)
        .await
        .expect("read the bucket")
        .and_then(|e| e.value)
        .expect("the route is in the NATS bucket");
    let stored: serde_json::Value = serde_json::from_str(&stored).expect("json");
    assert_eq!(
        (&stored["prefix"], &stored["limits"][0]["burst"]),
        (&spec["prefix"], &spec["limits"][0]["burst"])
    );

    // Redis limiter: two requests, then refused; the state is the Redis key.
    for _ in 0..2 {
        let r = get(s.public, s.cert(), "/api/v1/progress-reports/42").await;
        assert_eq!(
            (r.status, r.json()["data"]["from"].as_str()),
            (200, Some("upstream"))
        );
    }
    let r = get(s.public, s.cert(), "/api/v1/progress-reports/42").await;
    assert_eq!((r.status, r.json()["code"].as_u64()), (429, Some(10019)));
    let key = format!("tb:rl:{{{limited}:ip:127.0.0.1}}");
    assert_eq!(redis(&["EXISTS", &key]).await, ":1", "{key} in Redis");
    assert_eq!(redis(&["DEL", &key]).await, ":1");
    let r = get(s.public, s.cert(), "/api/v1/progress-reports/42").await;
    assert_eq!(
        (r.status, r.json()["data"]["from"].as_str()),
        (200, Some("upstream")),
        "with its Redis key gone, the limit starts again"
    );

    // NATS registry: an instance registered through the admin API is in the registry bucket.
    let reg =
        serde_json::json!({"service": service, "address": up.to_string(), "persistent": true});
    admin("POST", "/api/v1/instances".to_owned(), reg.to_string()).await;
    let registry = NatsRegistry::connect(NATS, &format!("{prefix}_registry"), Timings::default())
        .await
        .expect("the registry bucket");
    let found = registry.instances(&service).await.expect("instances");
    assert_eq!(
        found.iter().map(|i| i.address.clone()).collect::<Vec<_>>(),
        [up.to_string()],
        "the instance is in the NATS bucket"
    );
    // A route put straight into the bucket, naming the service: the server hears of it and
    // sends its requests to the registered instance.
    let r = get(s.public, s.cert(), "/api/v1/permits/7").await;
    assert_eq!(r.json()["code"], 20404, "no such route yet");
    let spec = serde_json::json!({
        "id": discovered, "prefix": "/api/v1/permits", "auth": "anonymous",
        "upstream": {"service": service}
    });
    config
        .put(
            tongban_gateway::ROUTES_NAMESPACE,
            &discovered,
            &spec.to_string(),
            Expect::Any,
        )
        .await
        .expect("put into the bucket");
    let served = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let r = get(s.public, s.cert(), "/api/v1/permits/7").await;
            if r.status == 200 {
                return r.json();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the route put into NATS is served");
    assert_eq!(
        served["data"],
        serde_json::json!({"from": "upstream", "path": "/api/v1/permits/7"})
    );

    // PostgreSQL: the keyring the server made and uses is stored there, not in a SQLite file.
    assert!(
        !s.data_dir.join("tongban.db").exists(),
        "no SQLite database in the data directory"
    );
    let store = tongban_store::Store::open(&tongban_store::StoreOptions::new(pg))
        .await
        .expect("the PostgreSQL schema");
    let components = [
        format!(
            "file:{}",
            s.data_dir.join("keys/root-component-1").display()
        ),
        "db:root-component-2".to_owned(),
    ];
    let keys = tongban_keys::KeyService::open(
        &store,
        &components,
        tongban_core::config::Profile::Test,
        "test",
    )
    .await
    .expect("the server's keyring, from PostgreSQL");
    let r = get(s.public, s.cert(), "/api/v1/envelope-keys").await;
    assert_eq!(
        r.json()["data"]["keys"],
        serde_json::to_value(keys.envelope_keys().published()).expect("json"),
        "the published envelope keys are the stored ones"
    );
    store.close().await;
}

/// One Redis command over RESP, to look at what the server stored (this crate has no Redis
/// client); the reply's first line (`:1`, `+OK`, …).
async fn redis(args: &[&str]) -> String {
    use tokio::io::AsyncBufReadExt;
    let mut s = TcpStream::connect("127.0.0.1:6379")
        .await
        .expect("Redis at 127.0.0.1:6379");
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(cmd.as_bytes()).await.expect("write to Redis");
    let mut line = String::new();
    tokio::io::BufReader::new(s)
        .read_line(&mut line)
        .await
        .expect("read from Redis");
    line.trim_end().to_owned()
}

/// The public listener is served by one event loop per thread on sockets sharing the port
/// (`SO_REUSEPORT`); a second instance started on the same port by mistake must still fail
/// instead of silently taking a share of the traffic. Many connections at once are all served
/// by a three-thread listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_port_is_shared_by_worker_threads_only() {
    let s = Server::start(&[("TONGBAN_SERVER__WORKERS", "3")]);
    let dir = common::temp_dir("serve-second");
    let cfg = common::write_config(
        &dir,
        &format!(
            "[server]\npublic_addr = \"{}\"\nadmin_addr = \"127.0.0.3:0\"\n",
            s.public
        ),
    );
    let mut second = common::tongban()
        .arg("serve")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("second instance");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while second.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second instance is serving the same port");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let out = second.wait_with_output().expect("output");
    assert!(!out.status.success(), "a second instance started");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("cannot listen on {}", s.public)),
        "{text}"
    );
    let tasks: Vec<_> = (0..24)
        .map(|_| tokio::spawn(get(s.public, s.cert(), "/healthz")))
        .collect();
    for t in tasks {
        let r = t.await.expect("request");
        assert_eq!(
            (r.status, r.json()["code"].clone()),
            (200, serde_json::json!(0))
        );
    }
}

/// Sends GET `path` over HTTP/2 on `io`; the answer's version, status and envelope code.
async fn h2_get<I>(io: I, path: &str) -> (http::Version, u16, serde_json::Value)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use http_body_util::BodyExt;
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(io),
    )
    .await
    .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get(format!("http://localhost{path}"))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .expect("request");
    let resp = send.send_request(req).await.expect("HTTP/2 answer");
    let (version, status) = (resp.version(), resp.status().as_u16());
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    (version, status, v["code"].clone())
}

/// Each connection is served in the HTTP version it speaks: HTTP/2 when TLS negotiates `h2`
/// or a plain connection opens with HTTP/2's preface, HTTP/1.1 otherwise.
#[tokio::test]
async fn http2_by_alpn_over_tls_and_by_its_preface_over_plain_http() {
    let s = Server::start(&[]);
    let connector = common::tls_connector_alpn(s.cert(), &[&rustls::version::TLS13], b"h2");
    let tcp = tokio::net::TcpStream::connect(s.public)
        .await
        .expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(
        h2_get(tls, "/healthz").await,
        (http::Version::HTTP_2, 200, serde_json::json!(0))
    );
    let r = get(s.public, s.cert(), "/healthz").await;
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (200, serde_json::json!(0))
    );

    let plain = Server::start(&[("TONGBAN_SERVER__PLAIN_HTTP", "true")]);
    let tcp = tokio::net::TcpStream::connect(plain.public)
        .await
        .expect("connect");
    assert_eq!(
        h2_get(tcp, "/healthz").await,
        (http::Version::HTTP_2, 200, serde_json::json!(0))
    );
    // HTTP/1.1, including a request that starts like the preface but is not it.
    for path in ["/healthz", "/PRI"] {
        let mut tcp = tokio::net::TcpStream::connect(plain.public)
            .await
            .expect("connect");
        let req = request(if path == "/PRI" { "PRI" } else { "GET" }, path, &[], b"");
        tokio::io::AsyncWriteExt::write_all(&mut tcp, &req)
            .await
            .expect("write");
        let mut raw = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 "), "{path}: {text}");
    }
}
