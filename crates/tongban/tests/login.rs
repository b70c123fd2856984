//! Signing in on embedded defaults, as a newcomer does: the test profile logs in through the
//! built-in identity-platform simulator, whose test accounts reach each auth level (the
//! walk-through of docs/identity.md).

mod common;

use common::Server;

const DEVICE: &str = "newcomer-device-0001";

/// `GET url` (HTTP, loopback) without following redirects: status, `Location`, body.
async fn plain_get(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").expect("a plain http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    let addr: std::net::SocketAddr = host.parse().expect("an address");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut tcp, req.as_bytes())
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw)
        .await
        .expect("read");
    let r = common::parse_response(&raw);
    let location = r.header("location").map(str::to_owned);
    (
        r.status,
        location,
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// Signs `account` in: login request, the simulator's page, the callback. Returns the session.
async fn sign_in(s: &Server, account: &str) -> serde_json::Value {
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "POST",
            "/api/v1/login-requests",
            &[("X-Device-Id", DEVICE)],
            b"",
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    let authorize = v["data"]["authorize_url"].as_str().expect("authorize_url");
    // The simulator's page lists the test accounts.
    let (status, _, page) = plain_get(authorize).await;
    assert_eq!(status, 200, "{page}");
    for a in ["zhang-wei", "li-na", "wang-fang"] {
        assert!(page.contains(&format!(">{a}</a>")), "{page}");
    }
    // Choosing one sends the browser back to the platform with a ticket.
    let (status, location, body) = plain_get(&format!("{authorize}&user={account}")).await;
    assert_eq!(status, 303, "{body}");
    let back = location.expect("a redirect");
    let prefix = format!(
        "https://127.0.0.1:{}/api/v1/login-callbacks?",
        s.public.port()
    );
    let query = back
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{back}"));
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "GET",
            &format!("/api/v1/login-callbacks?{query}"),
            &[("X-Device-Id", DEVICE)],
            b"",
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    v["data"].clone()
}

async fn current(s: &Server, token: &str) -> serde_json::Value {
    let auth = format!("Bearer {token}");
    common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/sessions/current",
            &[("Authorization", &auth), ("X-Device-Id", DEVICE)],
            b"",
        ),
    )
    .await
    .json()
}

#[tokio::test]
async fn a_newcomer_signs_in_through_the_simulator_at_each_level() {
    let s = Server::start(&[]);
    assert!(s.log_text().contains("login simulator"), "{}", s.log_text());
    // A registered account that is not real-name checked: a session at `anonymous`.
    let zhang = sign_in(&s, "zhang-wei").await;
    assert_eq!(zhang["level"], "anonymous", "{zhang}");
    // A real-name account: `real_name`, with a signing key for signed routes.
    let li = sign_in(&s, "li-na").await;
    assert_eq!(li["level"], "real_name", "{li}");
    assert!(li["signing_key_id"].is_string(), "{li}");
    let token = li["access_token"].as_str().expect("token");
    assert_eq!(current(&s, token).await["data"]["level"], "real_name");
    // The face step-up (the face simulator's live image) reaches `face_verified`.
    let wang = sign_in(&s, "wang-fang").await;
    let token = wang["access_token"].as_str().expect("token");
    let auth = format!("Bearer {token}");
    let image = tongban_crypto::encoding::b64_encode(b"simulated-live-face");
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "POST",
            "/api/v1/face-verifications",
            &[
                ("Authorization", &auth),
                ("X-Device-Id", DEVICE),
                ("Content-Type", "application/json"),
            ],
            serde_json::json!({ "image": image }).to_string().as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.json()["data"]["level"], "face_verified", "{r:?}");
    assert_eq!(current(&s, token).await["data"]["level"], "face_verified");
}
