//! Login through the provincial-platform ticket protocol against the local simulator, over
//! HTTP: redirect to the platform, ticket back, ticket → token → user info with its real-name
//! level; 10007 for an expired platform token, 10005 for a used ticket, 10023 for an account
//! the user unbound on the platform.

mod common;

use std::sync::Arc;

use common::{Env, env_with, id_number, sqlite};
use serde_json::Value;
use tongban_core::clock::{Clock, ManualClock, SystemClock};
use tongban_identity::ticket::simulator::{SimUser, TicketSimulator};
use tongban_identity::ticket::{TicketAdapter, TicketConfig};

struct Setup {
    env: Env,
    sim: Arc<TicketSimulator>,
    base: String,
}

async fn serve(app: axum::Router) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", l.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(l, app).await.expect("serve") });
    base
}

async fn setup() -> Setup {
    let clock = Arc::new(ManualClock::at_ms(SystemClock.now_ms()));
    let sim = TicketSimulator::new(clock.clone(), "tongban-app", "app-secret");
    let platform = serve(sim.router()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let adapter = TicketAdapter::new(TicketConfig {
        login_url: format!("{platform}/login"),
        ticket_url: format!("{platform}/tickets"),
        userinfo_url: format!("{platform}/users/current"),
        app_id: "tongban-app".to_owned(),
        app_secret: "app-secret".to_owned(),
        redirect_uri: format!("{base}/api/v1/login-callbacks"),
        real_name_min_level: 2,
        timeout_secs: 5,
    })
    .expect("adapter");
    let env = env_with(
        sqlite().await,
        common::config(),
        clock,
        Some(Arc::new(adapter)),
    );
    let app = tongban_identity::routes::router(env.id.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    sim.add_user(
        "zj-1001",
        SimUser {
            real_name_level: 3,
            name: Some("赵敏".to_owned()),
            id_number: Some(id_number("33010619870615123")),
            unbound: false,
        },
    );
    sim.add_user(
        "zj-1002",
        SimUser {
            real_name_level: 1,
            name: None,
            id_number: None,
            unbound: false,
        },
    );
    sim.add_user(
        "zj-1003",
        SimUser {
            real_name_level: 3,
            name: None,
            id_number: None,
            unbound: true,
        },
    );
    Setup { env, sim, base }
}

fn client(device: &str) -> reqwest::Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("x-device-id", device.parse().expect("header"));
    reqwest::Client::builder()
        .default_headers(h)
        .redirect(reqwest::redirect::Policy::custom(|a| {
            if a.url().path() == "/api/v1/login-callbacks" {
                a.stop()
            } else {
                a.follow()
            }
        }))
        .build()
        .expect("client")
}

/// Begins a login and lets the simulated platform sign `user` in; returns the callback URL.
async fn platform_login(s: &Setup, c: &reqwest::Client, user: &str) -> String {
    let start: Value = c
        .post(format!("{}/api/v1/login-requests", s.base))
        .send()
        .await
        .expect("begin")
        .json()
        .await
        .expect("json");
    let url = format!(
        "{}&user={user}",
        start["data"]["authorize_url"].as_str().expect("url")
    );
    let r = c.get(url).send().await.expect("platform");
    assert!(r.status().is_redirection(), "{}", r.status());
    r.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

async fn get(c: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = c.get(url).send().await.expect("get");
    (r.status().as_u16(), r.json().await.expect("json"))
}

#[tokio::test]
async fn a_real_named_platform_user_signs_in_with_the_person_in_the_vault() {
    let s = setup().await;
    let c = client("phone-z");
    let cb = platform_login(&s, &c, "zj-1001").await;
    assert!(cb.contains("ticket=") && cb.starts_with(&s.base), "{cb}");
    let (status, body) = get(&c, &cb).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    assert_eq!(body["data"]["level"], "real_name");
    let token = body["data"]["access_token"].as_str().expect("token");
    let caller = s.env.id.resolve(token, Some("phone-z")).await.expect("in");
    assert_eq!(caller.acr.as_deref(), Some("platform-level-3"));
    let export = s.env.id.export(&caller).await.expect("export");
    assert_eq!(export["person"]["name"], "赵敏");
    assert_eq!(s.env.store.persons().count().await.expect("persons"), 1);
    // Signing in again finds the same account and person.
    let (_, again) = get(&c, &platform_login(&s, &c, "zj-1001").await).await;
    let caller2 = s
        .env
        .id
        .resolve(
            again["data"]["access_token"].as_str().expect("t"),
            Some("phone-z"),
        )
        .await
        .expect("in");
    assert_eq!(caller2.user_id, caller.user_id);
    assert_ne!(caller2.session_id, caller.session_id);
    assert_eq!(s.env.store.persons().count().await.expect("persons"), 1);
}

#[tokio::test]
async fn a_registered_only_platform_user_is_not_real_named() {
    let s = setup().await;
    let c = client("d");
    let (_, body) = get(&c, &platform_login(&s, &c, "zj-1002").await).await;
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["level"], "anonymous");
}

#[tokio::test]
async fn platform_failures_answer_10007_10005_and_10023() {
    let s = setup().await;
    let c = client("d");
    // Unbound on the platform.
    let (status, body) = get(&c, &platform_login(&s, &c, "zj-1003").await).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (403, Some(10023)),
        "{body}"
    );
    // A ticket used twice: take a fresh state but replay the spent ticket.
    let first = platform_login(&s, &c, "zj-1002").await;
    let (_, ok) = get(&c, &first).await;
    assert_eq!(ok["code"], 0);
    let ticket = url::Url::parse(&first)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "ticket")
        .expect("ticket")
        .1
        .into_owned();
    let fresh = platform_login(&s, &c, "zj-1002").await;
    let mut replay = url::Url::parse(&fresh).expect("url");
    let state = replay
        .query_pairs()
        .find(|(k, _)| k == "state")
        .expect("state")
        .1
        .into_owned();
    replay
        .query_pairs_mut()
        .clear()
        .append_pair("ticket", &ticket)
        .append_pair("state", &state);
    let (_, body) = get(&c, replay.as_str()).await;
    assert_eq!(body["code"], 10005, "{body}");
    // The platform's token expired before user info was read.
    s.sim.set_token_ttl_ms(0);
    let (status, body) = get(&c, &platform_login(&s, &c, "zj-1002").await).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (401, Some(10007)),
        "{body}"
    );
}

#[tokio::test]
async fn configuration_chooses_the_ticket_adapter() {
    let mut cfg = common::config();
    cfg.login = Some(tongban_identity::config::LoginConfig::Ticket(
        TicketConfig {
            login_url: "https://platform.example.gov.cn/sso/login".to_owned(),
            ticket_url: "https://platform.example.gov.cn/sso/tickets".to_owned(),
            userinfo_url: "https://platform.example.gov.cn/sso/users/current".to_owned(),
            app_id: "tongban".to_owned(),
            app_secret: "s".to_owned(),
            redirect_uri: "https://tongban.example.gov.cn/api/v1/login-callbacks".to_owned(),
            real_name_min_level: 2,
            timeout_secs: 5,
        },
    ));
    let id = tongban_identity::Identity::from_config(
        sqlite().await,
        common::keys(),
        Arc::new(SystemClock),
        cfg,
    )
    .expect("built");
    let start = id.begin_login(Some("d")).await.expect("begin");
    assert!(
        start
            .authorize_url
            .starts_with("https://platform.example.gov.cn/sso/login?app_id=tongban&redirect_uri=")
    );
    assert!(
        start
            .authorize_url
            .ends_with(&format!("state={}", start.state))
    );
    // Without a login configured, starting one is refused.
    let bare = tongban_identity::Identity::from_config(
        sqlite().await,
        common::keys(),
        Arc::new(SystemClock),
        common::config(),
    )
    .expect("built");
    assert_eq!(
        tongban_core::ApiError::from(bare.begin_login(None).await.expect_err("none"))
            .code
            .0,
        20001
    );
}
