//! The examples of `examples/` against the running binary: a service in another language
//! (Python, standard library only) registers, verifies the caller context and deregisters.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Server, write_config};

#[tokio::test]
async fn the_python_service_example_works_behind_the_gateway() {
    let dir = common::temp_dir("python-service");
    // The admin listener on ::1, a name the generated certificate covers, so the example
    // verifies it as any client would.
    let cfg = write_config(
        &dir,
        "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"[::1]:0\"\n",
    );
    let s = Server::start_with(&dir, &cfg, &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/python-service/service.py");
    let mut py = Command::new("python3")
        .arg(&script)
        .env("TB_ADMIN", format!("https://[::1]:{}", s.admin.port()))
        .env("TB_ADMIN_TOKEN", s.admin_token())
        .env("TB_ADMIN_CA", s.data_dir.join("tls/self-signed-cert.pem"))
        .env("SERVICE", "py-demo")
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(py.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads");
    assert_eq!(line.trim(), "ready");

    let auth = format!("Bearer {}", s.admin_token());
    let admin = |method: &'static str, path: &'static str, body: &'static str| {
        common::request(
            method,
            path,
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &admin(
            "PUT",
            "/api/v1/routes/py-items",
            r#"{"id": "py-items", "prefix": "/api/v1/py-items", "auth": "anonymous",
                "upstream": {"service": "py-demo"}}"#,
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");

    // Through the gateway: the service read the context.
    let r = common::get(s.public, s.cert(), "/api/v1/py-items").await;
    assert_eq!(
        r.json(),
        serde_json::json!({"code": 0, "data": {"level": "anonymous", "signed_in": false}}),
        "{r:?}"
    );
    // Around it: refused.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        &common::request(
            "GET",
            "/api/v1/py-items",
            &[("X-Tb-Caller", "v1.1.e30.e30.AAAA")],
            b"",
        ),
    )
    .await
    .expect("write");
    let mut raw = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw)
        .await
        .expect("read");
    assert_eq!(common::parse_response(&raw).json()["code"], 20001);

    // Ctrl-C: the example deregisters on its way out.
    let pid = py.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    py.wait().expect("exits");
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &admin("GET", "/api/v1/microservices/py-demo/instances", ""),
    )
    .await;
    assert_eq!(r.json()["data"], serde_json::json!([]), "{r:?}");
}
