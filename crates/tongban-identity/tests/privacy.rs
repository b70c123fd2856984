//! The identity endpoints over HTTP (envelope, status, URL rules) and the privacy promise after
//! a whole flow: no personal value, token or device id in the logs, nor at rest (SQLite files
//! read byte by byte; every PostgreSQL row as JSON).

mod common;

use std::sync::Arc;

use axum::body::Body;
use common::{Env, LIVE_FACE, capture_logs, env_with, id_number, postgres, sqlite_at};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tongban_core::AuthLevel;
use tongban_core::clock::ManualClock;
use tongban_identity::ExternalIdentity;
use tongban_identity::login::ReportedPerson;
use tower::ServiceExt;

const DEVICE: &str = "device-7f3a9c-secret-id";
const NAME: &str = "欧阳娜娜";
const PLATFORM_NAME: &str = "司马相如";
const PHONE: &str = "13912345678";

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<&'a str>,
    device: Option<&'a str>,
    body: Option<Value>,
}

async fn call(env: &Env, c: Call<'_>) -> (StatusCode, Value) {
    let mut b = Request::builder().method(c.method).uri(c.path);
    if let Some(t) = c.token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if let Some(d) = c.device {
        b = b.header("x-device-id", d);
    }
    let req = match c.body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string())),
        None => b.body(Body::empty()),
    }
    .expect("request");
    let resp = tongban_identity::routes::router(env.id.clone())
        .oneshot(req)
        .await
        .expect("infallible");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).expect("envelope JSON"),
    )
}

fn get<'a>(path: &'a str, token: &'a str) -> Call<'a> {
    Call {
        method: "GET",
        path,
        token: Some(token),
        device: Some(DEVICE),
        body: None,
    }
}

fn post<'a>(path: &'a str, token: &'a str, body: Value) -> Call<'a> {
    Call {
        method: "POST",
        path,
        token: Some(token),
        device: Some(DEVICE),
        body: Some(body),
    }
}

/// Runs everything a citizen does; returns the secrets that must not leak.
async fn whole_flow(env: &Env) -> Vec<String> {
    let id_no = id_number("11010219900307123");
    let platform_id = id_number("61010319760815456");
    let s = env
        .id
        .login_external(
            &ExternalIdentity {
                provider: "test".to_owned(),
                subject: "citizen-42".to_owned(),
                real_name: false,
                person: None,
                acr: None,
                amr: vec![],
            },
            Some(DEVICE),
        )
        .await
        .expect("login");
    let t = s.access_token.as_str();

    // No token, wrong device, not yet real-named.
    let (st, b) = call(
        env,
        Call {
            token: None,
            ..get("/api/v1/sessions/current", t)
        },
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::UNAUTHORIZED, Some(10006))
    );
    let (st, b) = call(
        env,
        Call {
            device: Some("other-device"),
            ..get("/api/v1/sessions/current", t)
        },
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::UNAUTHORIZED, Some(10012))
    );
    let (st, b) = call(
        env,
        post("/api/v1/face-verifications", t, json!({ "image": "AAAA" })),
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::FORBIDDEN, Some(10008))
    );

    // Real name: a malformed number, a wrong name, then the right one.
    let (st, b) = call(
        env,
        post(
            "/api/v1/real-name-verifications",
            t,
            json!({ "name": NAME, "id_number": "110102199003071230" }),
        ),
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(10016)),
        "{b}"
    );
    env.real_name.register(NAME, &id_no);
    let (st, b) = call(
        env,
        post(
            "/api/v1/real-name-verifications",
            t,
            json!({ "name": "欧阳锋", "id_number": id_no }),
        ),
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(10014)),
        "{b}"
    );
    let (st, b) = call(
        env,
        post(
            "/api/v1/real-name-verifications",
            t,
            json!({ "name": NAME, "id_number": id_no }),
        ),
    )
    .await;
    assert_eq!((st, b["code"].as_i64()), (StatusCode::OK, Some(0)), "{b}");
    assert_eq!(b["data"]["level"], "real_name");
    let shown = b.to_string();
    assert!(
        !shown.contains(NAME) && !shown.contains(&id_no),
        "answers show masked values: {shown}"
    );
    let (_, b) = call(
        env,
        post(
            "/api/v1/real-name-verifications",
            t,
            json!({ "name": NAME }),
        ),
    )
    .await;
    assert_eq!(b["code"], 20000);

    // Face: a miss, then a pass; then the step-up answer is gone.
    let (st, b) = call(
        env,
        post(
            "/api/v1/face-verifications",
            t,
            json!({ "image": "bm90IG1l" }),
        ),
    )
    .await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::FORBIDDEN, Some(10025))
    );
    let live = tongban_crypto::encoding::b64_encode(LIVE_FACE);
    let (st, b) = call(
        env,
        post("/api/v1/face-verifications", t, json!({ "image": live })),
    )
    .await;
    assert_eq!((st, b["code"].as_i64()), (StatusCode::OK, Some(0)), "{b}");
    let c = env
        .id
        .resolve_at_least(t, Some(DEVICE), AuthLevel::FaceVerified)
        .await
        .expect("face");
    assert_eq!(c.level, AuthLevel::FaceVerified);

    // Consent, collection, phone, export.
    let (st, b) = call(env, get("/api/v1/phones/current", t)).await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::FORBIDDEN, Some(10024))
    );
    let (_, b) = call(env, get("/api/v1/purposes", t)).await;
    assert_eq!(b["data"][0]["id"], "contact");
    let (_, b) = call(
        env,
        post(
            "/api/v1/consents",
            t,
            json!({ "purpose": "contact", "notice_version": "1" }),
        ),
    )
    .await;
    assert_eq!(b["code"], 0, "{b}");
    let (st, b) = call(env, get("/api/v1/phones/current", t)).await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::FORBIDDEN, Some(10015))
    );
    let (_, b) = call(
        env,
        post(
            "/api/v1/personal-fields",
            t,
            json!({ "purpose": "contact", "values": { "phone": PHONE } }),
        ),
    )
    .await;
    assert_eq!(b["code"], 0, "{b}");
    let (_, b) = call(env, get("/api/v1/phones/current", t)).await;
    assert_eq!(b["data"]["phone"], PHONE);
    let (_, b) = call(env, get("/api/v1/consents", t)).await;
    assert_eq!(b["data"][0]["fields"], json!(["phone"]));
    let (_, b) = call(env, post("/api/v1/data-exports", t, json!({}))).await;
    assert_eq!(b["data"]["person"]["name"], NAME);
    assert_eq!(b["data"]["fields"]["phone"]["value"], PHONE);

    // Renewal over HTTP, then the old token is gone and the new one works.
    let (_, b) = call(
        env,
        post(
            "/api/v1/token-renewals",
            "",
            json!({ "relogin_credential": s.relogin_credential }),
        ),
    )
    .await;
    assert_eq!(b["code"], 0, "{b}");
    let t2 = b["data"]["access_token"]
        .as_str()
        .expect("new token")
        .to_owned();
    let (_, b) = call(env, get("/api/v1/sessions/current", t)).await;
    assert_eq!(b["code"], 10006);
    let (_, b) = call(env, get("/api/v1/sessions/current", &t2)).await;
    assert_eq!(b["data"]["session_id"], s.session_id.as_str());

    // A platform-reported person.
    let p = env
        .id
        .login_external(
            &ExternalIdentity {
                provider: "test".to_owned(),
                subject: "citizen-43".to_owned(),
                real_name: true,
                person: Some(ReportedPerson {
                    name: PLATFORM_NAME.to_owned().into(),
                    id_number: platform_id.clone().into(),
                }),
                acr: None,
                amr: vec![],
            },
            Some(DEVICE),
        )
        .await
        .expect("platform login");

    // Withdraw (deletes the phone), sign out everywhere.
    let (_, b) = call(
        env,
        Call {
            method: "DELETE",
            body: None,
            ..get("/api/v1/consents/contact", &t2)
        },
    )
    .await;
    assert_eq!(b["data"]["fields_deleted"], 1, "{b}");
    let (_, b) = call(
        env,
        Call {
            method: "DELETE",
            body: None,
            ..get("/api/v1/sessions", &t2)
        },
    )
    .await;
    assert_eq!(b["data"]["signed_out"], 1, "{b}");
    let (st, b) = call(env, get("/api/v1/sessions/current", &t2)).await;
    assert_eq!(
        (st, b["code"].as_i64()),
        (StatusCode::UNAUTHORIZED, Some(10017))
    );

    vec![
        NAME.to_owned(),
        PLATFORM_NAME.to_owned(),
        id_no,
        platform_id,
        PHONE.to_owned(),
        DEVICE.to_owned(),
        s.access_token.clone(),
        t2,
        p.access_token.clone(),
        "citizen-42".to_owned(),
    ]
}

fn assert_absent(haystack: &[u8], secrets: &[String], what: &str) {
    for s in secrets {
        let needle = s.as_bytes();
        assert!(
            !haystack.windows(needle.len()).any(|w| w == needle),
            "a secret ({} bytes) appears in {what}",
            needle.len()
        );
    }
}

fn assert_logs_clean(logs: &str, secrets: &[String]) {
    // The capture works: these lines are there.
    assert!(logs.contains("Real-name verification passed."), "{logs}");
    assert!(logs.contains("Face verification failed."), "{logs}");
    assert_absent(logs.as_bytes(), secrets, "the logs");
}

#[tokio::test(flavor = "current_thread")]
async fn no_personal_data_in_logs_or_at_rest_on_sqlite() {
    let (logs, _guard) = capture_logs();
    let (store, dir) = sqlite_at().await;
    let env = env_with(
        store,
        common::config(),
        Arc::new(ManualClock::at_ms(common::T0)),
        None,
    );
    let secrets = whole_flow(&env).await;
    assert_logs_clean(&logs.text(), &secrets);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        assert_absent(&bytes, &secrets, &path.display().to_string());
        files += 1;
    }
    assert!(files >= 2, "the database and its WAL were read");
    // Positive control: the scan does find what is there.
    let db = std::fs::read(dir.join("id.db")).expect("db");
    let wal = std::fs::read(dir.join("id.db-wal")).unwrap_or_default();
    let all = [db, wal].concat();
    assert!(all.windows(10).any(|w| w == b"tb_persons"));
}

#[tokio::test(flavor = "current_thread")]
async fn no_personal_data_in_logs_or_at_rest_on_postgres() {
    let (logs, _guard) = capture_logs();
    let store = postgres().await;
    let env = env_with(
        store.clone(),
        common::config(),
        Arc::new(ManualClock::at_ms(common::T0)),
        None,
    );
    let secrets = whole_flow(&env).await;
    assert_logs_clean(&logs.text(), &secrets);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
    )
    .fetch_all(store.pool())
    .await
    .expect("tables");
    assert!(tables.iter().any(|t| t == "tb_id_sessions"), "{tables:?}");
    let mut dump = String::new();
    for t in &tables {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT row_to_json(t)::text FROM {t} t"
        )))
        .fetch_all(store.pool())
        .await
        .expect("rows");
        dump.extend(rows.into_iter().map(|r| r + "\n"));
    }
    assert!(
        dump.contains("name_enc"),
        "the dump holds the persons table"
    );
    assert_absent(dump.as_bytes(), &secrets, "PostgreSQL");
}
