//! Test harness: runs the real `tongban` binary on loopback ports and talks HTTPS to it.
#![allow(dead_code, unreachable_pub)]

pub mod signin;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "tongban-it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// A running `tongban serve`, killed on drop.
pub struct Server {
    pub child: Child,
    pub data_dir: PathBuf,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("tongban.toml");
    std::fs::write(&p, text).expect("write config");
    p
}

pub fn tongban() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tongban"))
}

impl Server {
    /// Starts with the base config and the given environment overrides.
    pub fn start(env: &[(&str, &str)]) -> Server {
        let dir = temp_dir("serve");
        // Port 0 for both: admin_addr must differ from public_addr, so give it its own IP.
        let cfg = write_config(
            &dir,
            "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\nshutdown_grace_secs = 10\n",
        );
        Self::start_with(&dir, &cfg, env)
    }

    pub fn start_with(dir: &Path, cfg: &Path, env: &[(&str, &str)]) -> Server {
        Self::start_serve(dir, cfg, env, &[])
    }

    /// `tongban serve` with extra arguments (`--demo`).
    pub fn start_serve(dir: &Path, cfg: &Path, env: &[(&str, &str)], args: &[&str]) -> Server {
        let mut cmd = tongban();
        cmd.arg("serve")
            .args(args)
            .arg("--config")
            .arg(cfg)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tongban");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(line);
            }
        });
        let stderr = child.stderr.take().expect("stderr");
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("logs").push(format!("stderr: {line}"));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let (mut public, mut admin) = (None, None);
        while public.is_none() || admin.is_none() {
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                logs.lock().expect("logs")
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "server exited with {status}: {:?}",
                    logs.lock().expect("logs")
                );
            }
            for line in logs.lock().expect("logs").iter() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                if v["message"] == "Listening." {
                    let addr: SocketAddr = v["addr"]
                        .as_str()
                        .and_then(|a| a.parse().ok())
                        .expect("addr");
                    match v["listener"].as_str() {
                        Some("public") => public = Some(addr),
                        Some("admin") => admin = Some(addr),
                        _ => {}
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            data_dir: dir.join("data"),
            public: public.expect("public"),
            admin: admin.expect("admin"),
            logs,
        }
    }

    /// The admin token the server generated (test profile without `admin.token_sm3`).
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin-token"))
            .expect("generated admin token")
            .trim()
            .to_owned()
    }

    /// Waits (up to 30 s) until a line of the server's output contains `needle`.
    pub fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.log_text().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        self.logs.lock().expect("logs").join("\n")
    }

    pub fn cert(&self) -> CertificateDer<'static> {
        CertificateDer::from_pem_file(self.data_dir.join("tls/self-signed-cert.pem")).expect("cert")
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// Waits for the process to exit, at most `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS client that trusts exactly `cert`, limited to the given protocol versions.
pub fn tls_connector(
    cert: CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    tls_connector_alpn(cert, versions, b"http/1.1")
}

/// A connector offering one application protocol by ALPN (`h2`, `http/1.1`).
pub fn tls_connector_alpn(
    cert: CertificateDer<'static>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    alpn: &[u8],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).expect("trust cert");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn parse_response(raw: &[u8]) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&b[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size + 2 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[eol + 2 + size + 2..];
    }
    out
}

/// Sends one raw HTTP/1.1 request over TLS and reads the response to EOF.
pub async fn https_raw(
    addr: SocketAddr,
    cert: CertificateDer<'static>,
    request: &[u8],
) -> Response {
    let connector = tls_connector(cert, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("tls handshake");
    tls.write_all(request).await.expect("write");
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw).await;
    parse_response(&raw)
}

/// `METHOD path` with optional extra headers and body, `Connection: close`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" || method == "PUT" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

pub async fn get(addr: SocketAddr, cert: CertificateDer<'static>, path: &str) -> Response {
    https_raw(addr, cert, &request("GET", path, &[], b"")).await
}

/// The PostgreSQL test database (`TONGBAN_TEST_POSTGRES_URL`, default the local `test`).
pub fn pg_url() -> String {
    std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A fresh schema in the test database; returns a URL that uses it, and its name.
pub async fn pg_schema_url(tag: &str) -> (String, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "t_{tag}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = tongban_store::Store::open(&tongban_store::StoreOptions::new(pg_url()))
        .await
        .expect("PostgreSQL at 127.0.0.1:5432, database test (scripts/services.sh starts it)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .expect("schema");
    admin.close().await;
    (
        format!("{}?options=-c%20search_path%3D{schema}", pg_url()),
        schema,
    )
}
