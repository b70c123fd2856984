//! `tongban serve --demo`, as a newcomer starts it: the demo services come up behind the
//! gateway, registered through the admin API, with their routes.

mod common;

use common::{Server, write_config};

#[tokio::test]
async fn serve_demo_runs_the_services_behind_the_gateway() {
    let dir = common::temp_dir("demo");
    let cfg = write_config(
        &dir,
        "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\n",
    );
    let s = Server::start_serve(&dir, &cfg, &[], &["--demo"]);
    s.wait_for_log("Demo ready.");
    assert!(
        s.log_text().contains("li-na"),
        "the welcome names the test accounts"
    );

    let r = common::get(s.public, s.cert(), "/api/v1/service-halls").await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    assert!(
        v["data"]["halls"].as_array().is_some_and(|h| h.len() > 3),
        "{v}"
    );

    // Registered through the admin API, as any service is.
    let auth = format!("Bearer {}", s.admin_token());
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/microservices/hall-booking/instances?healthy=true",
            &[("Authorization", &auth)],
            b"",
        ),
    )
    .await;
    assert_eq!(r.json()["data"].as_array().map(Vec::len), Some(1), "{r:?}");
    // A booking needs a face-verified, signed-in citizen: the gateway refuses at once.
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "POST",
            "/api/v1/bookings",
            &[("Content-Type", "application/json")],
            b"{}",
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 10006, "{r:?}");
}
