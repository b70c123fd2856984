//! Signing in through the test profile's identity-platform simulator, as a newcomer does.

use super::Server;

pub const DEVICE: &str = "newcomer-device-0001";

/// `GET url` (HTTP, loopback) without following redirects: status, `Location`, body.
pub async fn plain_get(url: &str) -> (u16, Option<String>, String) {
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
    let r = super::parse_response(&raw);
    let location = r.header("location").map(str::to_owned);
    (
        r.status,
        location,
        String::from_utf8_lossy(&r.body).into_owned(),
    )
}

/// Signs `account` in: login request, the simulator's page, the callback. Returns the session.
pub async fn sign_in(s: &Server, account: &str) -> serde_json::Value {
    let r = super::https_raw(
        s.public,
        s.cert(),
        &super::request(
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
    let r = super::https_raw(
        s.public,
        s.cert(),
        &super::request(
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
