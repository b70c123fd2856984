//! The whole OpenID Connect login against a real provider (npm `oidc-provider`, started here on
//! loopback): an HTTP client follows the redirects through the provider's login form to
//! Tongban's callback route; PKCE is required by the provider; state, nonce, the ID-token
//! signature (RS256 and ES256), issuer, audience and expiry are checked; acr and amr are kept.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::{Env, env_with, sqlite};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tongban_core::ApiError;
use tongban_core::clock::{Clock, ManualClock, SystemClock};
use tongban_identity::oidc::{OidcConfig, OidcRp};

struct Provider {
    _child: Child,
    // Kept open: the launcher must not meet a closed pipe.
    _stdout: BufReader<tokio::process::ChildStdout>,
    issuer: String,
}

fn launcher_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

async fn start_provider(redirect_uri: &str) -> Provider {
    let dir = launcher_dir();
    // Once per test binary: the tests of this file run in parallel.
    static NPM: std::sync::Once = std::sync::Once::new();
    NPM.call_once(|| {
        if !dir.join("node_modules/oidc-provider").exists() {
            let ok = std::process::Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .expect("npm must be installed to run the OIDC tests");
            assert!(ok.success(), "npm ci failed in {}", dir.display());
        }
    });
    let mut child = Command::new("node")
        .arg("server.mjs")
        .arg(redirect_uri)
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed to run the OIDC tests");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
        .await
        .expect("provider started in time")
        .expect("read");
    let v: Value = serde_json::from_str(&line).expect("ready line");
    Provider {
        _child: child,
        _stdout: stdout,
        issuer: v["issuer"].as_str().expect("issuer").to_owned(),
    }
}

struct Setup {
    env: Env,
    provider: Provider,
    base: String,
    rp: Arc<OidcRp>,
}

async fn setup(alg: &str) -> Setup {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let redirect_uri = format!("{base}/api/v1/login-callbacks");
    let provider = start_provider(&redirect_uri).await;
    let clock = Arc::new(ManualClock::at_ms(SystemClock.now_ms()));
    let rp = Arc::new(
        OidcRp::new(
            OidcConfig {
                issuer: provider.issuer.clone(),
                client_id: format!("tongban-{}", alg.to_lowercase()),
                client_secret: "tongban-test-secret".to_owned(),
                redirect_uri,
                scopes: vec!["openid".to_owned()],
                real_name_acr: vec!["urn:tongban:loa:real-name".to_owned()],
                acr_values: None,
                timeout_secs: 10,
            },
            clock.clone(),
        )
        .expect("rp"),
    );
    let env = env_with(sqlite().await, common::config(), clock, Some(rp.clone()));
    let app = tongban_identity::routes::router(env.id.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    Setup {
        env,
        provider,
        base,
        rp,
    }
}

/// A browser stand-in: cookies, a device id, redirects followed up to Tongban's callback.
fn client(device: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-device-id", device.parse().expect("header"));
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
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

/// Runs the login up to the provider's redirect to Tongban; returns the callback URL.
async fn sign_in_at_provider(
    s: &Setup,
    c: &reqwest::Client,
    login: &str,
    password: &str,
) -> String {
    let start: Value = c
        .post(format!("{}/api/v1/login-requests", s.base))
        .send()
        .await
        .expect("login request")
        .json()
        .await
        .expect("json");
    assert_eq!(start["code"], 0, "{start}");
    let authorize = start["data"]["authorize_url"].as_str().expect("url");
    assert!(authorize.contains("code_challenge_method=S256"));
    assert!(authorize.contains("nonce="));
    let page = c.get(authorize).send().await.expect("authorize");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("form");
    let action = html
        .split("action=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("login form");
    let back = c
        .post(format!("{}{action}", s.provider.issuer))
        .form(&[("login", login), ("password", password)])
        .send()
        .await
        .expect("submit");
    assert!(back.status().is_redirection(), "{}", back.status());
    back.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned()
}

async fn get_json(c: &reqwest::Client, url: &str, token: Option<&str>) -> (u16, Value) {
    let mut r = c.get(url);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.expect("get");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

#[tokio::test]
async fn login_with_rs256_keeps_acr_and_amr_and_maps_real_name() {
    let s = setup("RS256").await;
    let c = client("phone-1");
    let callback = sign_in_at_provider(&s, &c, "citizen-1", "correct horse").await;
    assert!(callback.starts_with(&s.base), "{callback}");
    assert!(callback.contains("code=") && callback.contains("state="));
    let (status, body) = get_json(&c, &callback, None).await;
    assert_eq!((status, body["code"].as_i64()), (200, Some(0)), "{body}");
    let token = body["data"]["access_token"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(body["data"]["level"], "real_name");

    let (_, me) = get_json(
        &c,
        &format!("{}/api/v1/sessions/current", s.base),
        Some(&token),
    )
    .await;
    assert_eq!(me["data"]["acr"], "urn:tongban:loa:real-name");
    assert_eq!(me["data"]["amr"], json!(["pwd", "sms"]));
    assert_eq!(me["data"]["level"], "real_name");

    // The callback is good once: its state is spent (10005).
    let (status, again) = get_json(&c, &callback, None).await;
    assert_eq!(
        (status, again["code"].as_i64()),
        (401, Some(10005)),
        "{again}"
    );
}

#[tokio::test]
async fn login_with_es256_for_a_basic_account_stays_anonymous() {
    let s = setup("ES256").await;
    let c = client("phone-2");
    let callback = sign_in_at_provider(&s, &c, "visitor-2", "battery staple").await;
    let (_, body) = get_json(&c, &callback, None).await;
    assert_eq!(body["code"], 0, "{body}");
    assert_eq!(body["data"]["level"], "anonymous");
    let token = body["data"]["access_token"].as_str().expect("token");
    let caller = s
        .env
        .id
        .resolve(token, Some("phone-2"))
        .await
        .expect("caller");
    assert_eq!(caller.acr.as_deref(), Some("urn:tongban:loa:basic"));
    assert_eq!(caller.amr, vec!["pwd"]);
}

#[tokio::test]
async fn refused_logins_and_callbacks_from_another_device_get_codes() {
    let s = setup("RS256").await;
    // Wrong password: the provider answers access_denied, Tongban 10008.
    let c = client("phone-3");
    let callback = sign_in_at_provider(&s, &c, "citizen-1", "wrong").await;
    assert!(callback.contains("error=access_denied"), "{callback}");
    let (status, body) = get_json(&c, &callback, None).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (403, Some(10008)),
        "{body}"
    );

    // A callback carried to another device: 10012, and the state is spent.
    let callback = sign_in_at_provider(&s, &c, "citizen-1", "correct horse").await;
    let (status, body) = get_json(&client("phone-4"), &callback, None).await;
    assert_eq!(
        (status, body["code"].as_i64()),
        (401, Some(10012)),
        "{body}"
    );
    let (_, body) = get_json(&c, &callback, None).await;
    assert_eq!(body["code"], 10005);

    // A state nobody issued, or none at all.
    let (_, body) = get_json(
        &c,
        &format!("{}/api/v1/login-callbacks?code=x&state=forged", s.base),
        None,
    )
    .await;
    assert_eq!(body["code"], 10005);
    let (_, body) = get_json(
        &c,
        &format!("{}/api/v1/login-callbacks?code=x", s.base),
        None,
    )
    .await;
    assert_eq!(body["code"], 20003);
}

async fn mint(s: &Setup, spec: Value) -> String {
    let v: Value = reqwest::Client::new()
        .post(format!("{}/test/sign", s.provider.issuer))
        .body(spec.to_string())
        .send()
        .await
        .expect("sign")
        .json()
        .await
        .expect("json");
    v["token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn id_token_validation_refuses_every_defect() {
    let s = setup("RS256").await;
    let now = s.env.clock.now_ms() / 1000;
    let good = json!({
        "iss": s.provider.issuer, "aud": "tongban-rs256", "sub": "citizen-1",
        "iat": now, "exp": now + 300, "nonce": "n-1", "acr": "urn:tongban:loa:basic", "amr": ["pwd"],
    });
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    // The helper's tokens do validate, so each refusal below is about its one defect.
    for alg in ["RS256", "ES256"] {
        let t = mint(&s, json!({ "alg": alg, "claims": good })).await;
        let claims = s.rp.validate_id_token(&t, "n-1").await.expect(alg);
        assert_eq!(claims.sub, "citizen-1");
        assert_eq!(claims.amr, vec!["pwd"]);
    }
    let cases = [
        ("wrong nonce", json!({ "claims": good }), "n-2"),
        (
            "no nonce",
            json!({ "claims": with("nonce", Value::Null) }),
            "n-1",
        ),
        (
            "expired",
            json!({ "claims": with("exp", json!(now - 61)) }),
            "n-1",
        ),
        (
            "issued in the future",
            json!({ "claims": with("iat", json!(now + 3600)) }),
            "n-1",
        ),
        (
            "other audience",
            json!({ "claims": with("aud", json!("someone-else")) }),
            "n-1",
        ),
        (
            "other issuer",
            json!({ "claims": with("iss", json!("https://evil.example")) }),
            "n-1",
        ),
        (
            "several audiences, no azp",
            json!({ "claims": with("aud", json!(["tongban-rs256", "x"])) }),
            "n-1",
        ),
        (
            "foreign key under our kid",
            json!({ "claims": good, "foreignKey": true }),
            "n-1",
        ),
        (
            "unknown kid",
            json!({ "claims": good, "kid": "nope" }),
            "n-1",
        ),
        ("alg none", json!({ "claims": good, "alg": "none" }), "n-1"),
        (
            "ES256 header on the RSA key",
            json!({ "claims": good, "alg": "ES256", "kid": "rsa-1" }),
            "n-1",
        ),
    ];
    for (what, spec, nonce) in cases {
        let t = mint(&s, spec).await;
        let e = s.rp.validate_id_token(&t, nonce).await.expect_err(what);
        assert_eq!(ApiError::from(e).code.0, 10005, "{what}");
    }
    let tampered = {
        let t = mint(&s, json!({ "claims": good })).await;
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let evil = with("sub", json!("citizen-2"));
        parts[1] = base64_url(&evil.to_string());
        parts.join(".")
    };
    assert_eq!(
        ApiError::from(
            s.rp.validate_id_token(&tampered, "n-1")
                .await
                .expect_err("tampered")
        )
        .code
        .0,
        10005
    );
}

fn base64_url(s: &str) -> String {
    use base64ct::Encoding;
    base64ct::Base64UrlUnpadded::encode_string(s.as_bytes())
}
