//! A service written with `tongban-sdk` behind the running binary: it registers through the
//! admin API, takes the gateway's caller context, refuses requests that bypass the gateway,
//! enforces its level, and deregisters.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use common::Server;
use common::signin::{DEVICE, sign_in};
use tongban_sdk::context::{Caller, ContextVerifier};
use tongban_sdk::platform::{PlatformClient, PlatformConfig};
use tongban_sdk::service::Registered;
use tongban_sdk::{ApiError, AuthLevel, Done, Registration};

async fn my_items(
    State(_): State<Arc<ContextVerifier>>,
    caller: Caller,
) -> Result<Done<serde_json::Value>, ApiError> {
    caller.require(AuthLevel::RealName)?;
    Ok(Done(serde_json::json!({
        "subject": caller.subject()?,
        "level": caller.level.as_str(),
        "device": caller.device,
        // A test service: it echoes the person it was handed, where a real one would use it.
        "person": caller.person.as_ref().map(|p| p.id_number.as_str().to_owned()),
    })))
}

fn platform(s: &Server) -> PlatformClient {
    let pem = std::fs::read(s.data_dir.join("tls/self-signed-cert.pem")).expect("certificate");
    PlatformClient::new(&PlatformConfig {
        admin_url: format!("https://localhost:{}", s.admin.port()),
        admin_token: s.admin_token().into(),
        ca_pem: Some(pem),
        resolve: Some(s.admin),
    })
    .expect("client")
}

async fn get(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(&mut tcp, &common::request("GET", path, headers, b""))
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw)
        .await
        .expect("read");
    common::parse_response(&raw).json()
}

#[tokio::test]
async fn a_service_on_the_sdk_registers_verifies_callers_and_deregisters() {
    let s = Server::start(&[]);
    let platform = platform(&s);
    let verifier = Arc::new(
        ContextVerifier::fetch("sdk-demo", platform.clone())
            .await
            .expect("keys"),
    );
    let app = axum::Router::new()
        .route("/api/v1/my-items", axum::routing::get(my_items))
        .route("/api/v1/my-person-items", axum::routing::get(my_items))
        .with_state(verifier);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    let registered = Registered::start(
        platform.clone(),
        Registration {
            service: "sdk-demo".into(),
            address: addr.to_string(),
            weight: 100,
            metadata: Default::default(),
            persistent: false,
        },
        Duration::from_secs(1),
    )
    .await
    .expect("registers");

    let auth = format!("Bearer {}", s.admin_token());
    let spec = serde_json::json!({"id": "my-items", "prefix": "/api/v1/my-items",
        "auth": "anonymous", "upstream": {"service": "sdk-demo"}})
    .to_string();
    let person_spec = serde_json::json!({"id": "my-person-items",
        "prefix": "/api/v1/my-person-items", "auth": "real_name",
        "upstream": {"service": "sdk-demo"}, "caller_person": true})
    .to_string();
    for (id, spec) in [("my-items", &spec), ("my-person-items", &person_spec)] {
        let r = common::https_raw(
            s.admin,
            s.cert(),
            &common::request(
                "PUT",
                &format!("/api/v1/routes/{id}"),
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                spec.as_bytes(),
            ),
        )
        .await;
        assert_eq!(r.json()["code"], 0, "{r:?}");
    }

    // Straight to the service, around the gateway: refused.
    assert_eq!(get(addr, "/api/v1/my-items", &[]).await["code"], 10006);
    let forged = "v1.1.eyJzdmMiOiJzZGstZGVtbyJ9.e30.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert_eq!(
        get(addr, "/api/v1/my-items", &[("X-Tb-Caller", forged)]).await["code"],
        20001
    );

    // Through the gateway without a session: the route is anonymous, the service wants a
    // real-name caller.
    let r = common::get(s.public, s.cert(), "/api/v1/my-items").await;
    assert_eq!(r.json()["code"], 10006, "{r:?}");

    // Signed in at real_name: the service sees its own pseudonym of the account.
    let session = sign_in(&s, "li-na").await;
    let token = format!(
        "Bearer {}",
        session["access_token"].as_str().expect("token")
    );
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/my-items",
            &[("Authorization", &token), ("X-Device-Id", DEVICE)],
            b"",
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["level"], "real_name");
    assert_eq!(v["data"]["device"], DEVICE);
    assert_eq!(v["data"]["subject"].as_str().map(str::len), Some(43));
    // Only a route with `caller_person` hands the service the real-name person.
    assert_eq!(v["data"]["person"], serde_json::Value::Null);
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/my-person-items",
            &[("Authorization", &token), ("X-Device-Id", DEVICE)],
            b"",
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        v["data"]["person"].as_str(),
        tongban_core::idcard::with_check_char("11010519851114002").as_deref()
    );

    // Deregistered: the registry no longer lists it.
    registered.deregister().await.expect("deregisters");
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/microservices/sdk-demo/instances",
            &[("Authorization", &auth)],
            b"",
        ),
    )
    .await;
    assert_eq!(r.json()["data"], serde_json::json!([]), "{r:?}");
}
