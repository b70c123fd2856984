//! The caller context through the binary: every request the gateway forwards carries one
//! `X-Tb-Caller`, sealed with the upstream service's key, which the service verifies with the
//! keys the admin listener issues it; whatever the client sent under that name never arrives,
//! nor do the citizen's credentials unless the route forwards them.

mod common;

use std::sync::{Arc, Mutex};

use common::Server;
use common::signin::{DEVICE, sign_in};
use tongban_crypto::caller_context::{self, CallerContext, ContextError, ContextKey};

type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;

/// An upstream that records the headers of every request and answers the envelope.
async fn recording_upstream() -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: http::HeaderMap| {
        let log = log.clone();
        async move {
            log.lock().expect("seen").push(
                headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
            );
            axum::Json(serde_json::json!({"code": 0, "data": {}}))
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, seen)
}

async fn admin(s: &Server, method: &str, path: &str, body: &str) -> serde_json::Value {
    let auth = format!("Bearer {}", s.admin_token());
    common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            method,
            path,
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        ),
    )
    .await
    .json()
}

async fn put_route(s: &Server, spec: serde_json::Value) {
    let id = spec["id"].as_str().expect("id").to_owned();
    let v = admin(s, "PUT", &format!("/api/v1/routes/{id}"), &spec.to_string()).await;
    assert_eq!(v["code"], 0, "{v}");
}

/// The keys the admin listener issues `service`, as the service's SDK holds them.
async fn service_keys(s: &Server, service: &str) -> Vec<ContextKey> {
    let v = admin(
        s,
        "GET",
        &format!("/api/v1/microservices/{service}/caller-context-keys"),
        "",
    )
    .await;
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(v["data"]["service"], service);
    v["data"]["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            let hex = k["key"].as_str().expect("key");
            assert_eq!(hex.len(), 64);
            let bytes = tongban_crypto::encoding::hex_decode(hex, "key").expect("hex");
            ContextKey::from_bytes(
                u32::try_from(k["version"].as_u64().expect("version")).expect("u32"),
                &bytes,
            )
        })
        .collect()
}

fn header<'a>(seen: &'a [(String, String)], name: &str) -> Option<&'a str> {
    seen.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn verify(
    seen: &[(String, String)],
    service: &str,
    keys: &[ContextKey],
) -> Result<CallerContext, ContextError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    caller_context::verify(
        header(seen, caller_context::HEADER).unwrap_or(""),
        service,
        |v| keys.iter().find(|k| k.version == v).cloned(),
        i64::try_from(now).expect("i64"),
    )
}

#[tokio::test]
async fn every_forwarded_request_carries_a_context_the_service_verifies() {
    let (up, seen) = recording_upstream().await;
    let s = Server::start(&[]);
    let instances = serde_json::json!({"instances": [{"address": up.to_string()}]});
    put_route(
        &s,
        serde_json::json!({"id": "public-notices", "prefix": "/api/v1/public-notices",
                           "auth": "anonymous", "upstream": instances}),
    )
    .await;
    put_route(
        &s,
        serde_json::json!({"id": "my-records", "prefix": "/api/v1/my-records",
                           "auth": "real_name", "upstream": instances}),
    )
    .await;
    put_route(
        &s,
        serde_json::json!({"id": "legacy-records", "prefix": "/api/v1/legacy-records",
                           "auth": "real_name", "upstream": instances,
                           "forward_credentials": true}),
    )
    .await;
    let notices_keys = service_keys(&s, "public-notices").await;
    let records_keys = service_keys(&s, "my-records").await;

    // Anonymous, with a forged context and credentials: the forgery is replaced, the
    // credentials dropped, the level is anonymous and no account is named.
    let forged = "v1.1.eyJzdmMiOiJwdWJsaWMtbm90aWNlcyJ9.e30.AAAA";
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/public-notices",
            &[
                ("X-Tb-Caller", forged),
                ("Authorization", "Bearer someone-elses-token"),
                ("Cookie", "sid=1"),
                ("token", "t"),
                ("X-Device-Id", DEVICE),
            ],
            b"",
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let first = seen.lock().expect("seen")[0].clone();
    assert_ne!(header(&first, "x-tb-caller"), Some(forged));
    for gone in ["authorization", "cookie", "token", "x-device-id"] {
        assert_eq!(header(&first, gone), None, "{gone} reached the upstream");
    }
    let ctx = verify(&first, "public-notices", &notices_keys).expect("verifies");
    assert_eq!(ctx.caller.lvl, "anonymous");
    assert_eq!(ctx.request.route, "public-notices");
    assert_eq!(
        (ctx.caller.sub, ctx.caller.sid, ctx.caller.dev),
        (None, None, None)
    );
    assert_eq!(ctx.request.rid.as_deref(), r.header("x-request-id"));
    assert!(ctx.request.exp > ctx.request.iat);
    // Another service's keys do not verify it.
    assert_eq!(
        verify(&first, "public-notices", &records_keys),
        Err(ContextError::BadTag)
    );

    // Signed in at real_name: the account (as this service's pseudonym), the session and the
    // device it is bound to.
    let session = sign_in(&s, "li-na").await;
    let token = session["access_token"].as_str().expect("token");
    let auth = format!("Bearer {token}");
    let call = |path: &'static str| {
        common::request(
            "GET",
            path,
            &[("Authorization", &auth), ("X-Device-Id", DEVICE)],
            b"",
        )
    };
    let r = common::https_raw(s.public, s.cert(), &call("/api/v1/my-records")).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let second = seen.lock().expect("seen")[1].clone();
    assert_eq!(header(&second, "authorization"), None);
    assert_eq!(header(&second, "x-device-id"), None);
    let ctx = verify(&second, "my-records", &records_keys).expect("verifies");
    assert_eq!(ctx.caller.lvl, "real_name");
    assert_eq!(ctx.caller.sid.as_deref(), session["session_id"].as_str());
    assert_eq!(ctx.caller.dev.as_deref(), Some(DEVICE));
    let sub = ctx.caller.sub.expect("a pseudonym");
    assert_eq!(sub.len(), 43);

    // The same account is another pseudonym at another service.
    let r = common::https_raw(s.public, s.cert(), &call("/api/v1/legacy-records")).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let third = seen.lock().expect("seen")[2].clone();
    let legacy_keys = service_keys(&s, "legacy-records").await;
    let ctx = verify(&third, "legacy-records", &legacy_keys).expect("verifies");
    assert_ne!(ctx.caller.sub.as_deref(), Some(sub.as_str()));
    // That route forwards the credentials, as it asked.
    assert_eq!(header(&third, "authorization"), Some(auth.as_str()));
    assert_eq!(header(&third, "x-device-id"), Some(DEVICE));

    // docs/services.md's Python verifier, as printed, accepts the live context.
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/services.md"),
    )
    .expect("docs/services.md");
    let verifier = page
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the page's Python verifier");
    let issued = admin(
        &s,
        "GET",
        "/api/v1/microservices/my-records/caller-context-keys",
        "",
    )
    .await;
    let key = &issued["data"]["keys"][0];
    let script = format!(
        "{verifier}\nwho, this = verify({:?}, 'my-records', {{{}: bytes.fromhex({:?})}})\nprint(who['lvl'], who['dev'], this['route'])\n",
        header(&second, "x-tb-caller").expect("a context"),
        key["version"],
        key["key"].as_str().expect("key"),
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("real_name {DEVICE} my-records\n")
    );
}

#[tokio::test]
async fn a_context_follows_the_session_as_its_level_changes() {
    let (up, seen) = recording_upstream().await;
    let s = Server::start(&[]);
    put_route(
        &s,
        serde_json::json!({"id": "public-notices", "prefix": "/api/v1/public-notices",
                           "auth": "anonymous",
                           "upstream": {"instances": [{"address": up.to_string()}]}}),
    )
    .await;
    let keys = service_keys(&s, "public-notices").await;
    // Registered, not real-name checked: anonymous, but with a session.
    let session = sign_in(&s, "zhang-wei").await;
    let auth = format!(
        "Bearer {}",
        session["access_token"].as_str().expect("token")
    );
    let headers = [("Authorization", auth.as_str()), ("X-Device-Id", DEVICE)];
    let call = || common::request("GET", "/api/v1/public-notices", &headers, b"");
    let seen_last = || {
        seen.lock()
            .expect("seen")
            .last()
            .cloned()
            .expect("a request")
    };
    for _ in 0..2 {
        let r = common::https_raw(s.public, s.cert(), &call()).await;
        assert_eq!(r.json()["code"], 0, "{r:?}");
        let ctx = verify(&seen_last(), "public-notices", &keys).expect("verifies");
        assert_eq!(ctx.caller.lvl, "anonymous");
        assert!(ctx.caller.sub.is_some());
    }
    let first_sub = verify(&seen_last(), "public-notices", &keys)
        .expect("verifies")
        .caller
        .sub;
    // The real-name check raises the session: the next context says so at once.
    let form = serde_json::json!({"name": "张伟", "id_number": "110105199003070017"}).to_string();
    let mut with_body = headers.to_vec();
    with_body.push(("Content-Type", "application/json"));
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request(
            "POST",
            "/api/v1/real-name-verifications",
            &with_body,
            form.as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let r = common::https_raw(s.public, s.cert(), &call()).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let ctx = verify(&seen_last(), "public-notices", &keys).expect("verifies");
    assert_eq!(ctx.caller.lvl, "real_name");
    assert_eq!(ctx.caller.sub, first_sub);
    // Signed out: the token no longer resolves, and the context names nobody.
    let r = common::https_raw(
        s.public,
        s.cert(),
        &common::request("DELETE", "/api/v1/sessions/current", &headers, b""),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let r = common::https_raw(s.public, s.cert(), &call()).await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let ctx = verify(&seen_last(), "public-notices", &keys).expect("verifies");
    assert_eq!(
        (ctx.caller.lvl.as_str(), ctx.caller.sub),
        ("anonymous", None)
    );
}

#[tokio::test]
async fn the_key_endpoint_needs_the_admin_token_and_a_service_name() {
    let s = Server::start(&[]);
    let v = admin(
        &s,
        "GET",
        "/api/v1/microservices/Bad_Name/caller-context-keys",
        "",
    )
    .await;
    assert_eq!(v["code"], 20000, "{v}");
    assert_eq!(v["data"]["field"], "service");
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            "GET",
            "/api/v1/microservices/my-records/caller-context-keys",
            &[],
            b"",
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 10006, "{r:?}");
    assert!(!String::from_utf8_lossy(&r.body).contains("\"key\""));
}
