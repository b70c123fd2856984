//! Signing in on embedded defaults, as a newcomer does: the test profile logs in through the
//! built-in identity-platform simulator, whose test accounts reach each auth level (the
//! walk-through of docs/identity.md).

mod common;

use common::Server;

use common::signin::{DEVICE, sign_in};

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

/// The real-name form sent sealed in the digital envelope (clause 6.3.2.2 d), as the H5 page
/// sends it: the answer comes back sealed with the request's key; a tampered envelope is
/// refused with 20004 and changes nothing.
#[tokio::test]
async fn the_real_name_form_travels_sealed_in_the_digital_envelope() {
    use tongban_crypto::envelope::seal_request;
    use tongban_crypto::sm2::Sm2CipherFormat;

    let s = Server::start(&[]);
    let zhang = sign_in(&s, "zhang-wei").await;
    assert_eq!(zhang["level"], "anonymous", "{zhang}");
    let token = zhang["access_token"].as_str().expect("token").to_owned();
    let (kid, public) = envelope_key(&s).await;
    let id_number = tongban_core::idcard::with_check_char("11010519900307001").expect("id");
    let form = serde_json::json!({"name": "张伟", "id_number": id_number}).to_string();
    let (envelope, session) =
        seal_request(&public, &kid, form.as_bytes(), Sm2CipherFormat::default()).expect("seal");
    let auth = format!("Bearer {token}");
    let post = |body: String| {
        common::request(
            "POST",
            "/api/v1/real-name-verifications",
            &[
                ("Authorization", &auth),
                ("X-Device-Id", DEVICE),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    // Tampered first: one character of the ciphertext changed.
    let mut bad = envelope.clone();
    bad.data = format!("A{}", &bad.data[1..]);
    let r = common::https_raw(
        s.public,
        s.cert(),
        &post(serde_json::to_string(&bad).expect("json")),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (400, Some(20004)),
        "{r:?}"
    );
    assert_eq!(current_level(&s, &token).await, "anonymous");
    // The sealed form: the answer is sealed too, and the session is now real-name.
    let r = common::https_raw(
        s.public,
        s.cert(),
        &post(serde_json::to_string(&envelope).expect("json")),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    let sealed = serde_json::to_vec(&v["data"]).expect("json");
    let opened = session
        .open_response_json(&sealed)
        .expect("the answer opens");
    let answer: serde_json::Value = serde_json::from_slice(&opened).expect("json");
    assert_eq!(answer["level"], "real_name", "{answer}");
    assert!(!String::from_utf8_lossy(&r.body).contains("张伟"), "{v}");
    assert_eq!(current_level(&s, &token).await, "real_name");
    // Nothing of the form reached the log.
    assert!(!s.log_text().contains(&id_number));
    // Nor the database at rest (clause 6.3.2.3 a): the SQLite files of the running server,
    // write-ahead log included, hold the person only as ciphertext.
    for entry in std::fs::read_dir(&s.data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("tongban.db") {
            continue;
        }
        let bytes = std::fs::read(&path).expect("read");
        for plain in [id_number.as_bytes(), "张伟".as_bytes()] {
            assert!(
                !bytes.windows(plain.len()).any(|w| w == plain),
                "{name} holds personal data in the clear"
            );
        }
    }
}

async fn current_level(s: &Server, token: &str) -> String {
    current(s, token).await["data"]["level"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The current envelope key of the server: its id and public key.
async fn envelope_key(s: &Server) -> (String, tongban_crypto::sm2::Sm2PublicKey) {
    let keys = common::https_raw(
        s.public,
        s.cert(),
        &common::request("GET", "/api/v1/envelope-keys", &[], b""),
    )
    .await
    .json();
    let current = keys["data"]["keys"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["current"] == true))
        .cloned()
        .expect("a current key");
    let public = tongban_crypto::encoding::hex_decode(
        current["public_key"].as_str().expect("public key"),
        "public key",
    )
    .expect("hex");
    (
        current["kid"].as_str().expect("kid").to_owned(),
        tongban_crypto::sm2::Sm2PublicKey::from_bytes(&public).expect("point"),
    )
}

/// A gateway route with `"envelope": "required"`: the sealed body reaches the upstream in
/// plaintext, the answer's `data` comes back sealed with the request's key; a plain body is
/// refused (20000) and a tampered one (20004), neither reaching the upstream.
#[tokio::test]
async fn a_gateway_route_opens_sealed_bodies_and_seals_their_answers() {
    use std::sync::{Arc, Mutex};
    use tongban_crypto::envelope::seal_request;
    use tongban_crypto::sm2::Sm2CipherFormat;

    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = seen.clone();
    let upstream = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let log = log.clone();
        async move {
            let text = String::from_utf8_lossy(&body).into_owned();
            log.lock().expect("seen").push(text.clone());
            let got: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            axum::Json(serde_json::json!({"code": 0, "data": {"got": got}}))
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let up = l.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(l, upstream).await;
    });
    let s = Server::start(&[]);
    let spec = serde_json::json!({
        "id": "sealed-items", "prefix": "/api/v1/sealed-items", "auth": "anonymous",
        "envelope": "required", "upstream": {"instances": [{"address": up.to_string()}]}
    })
    .to_string();
    let auth = format!("Bearer {}", s.admin_token());
    let r = common::https_raw(
        s.admin,
        s.cert(),
        &common::request(
            "PUT",
            "/api/v1/routes/sealed-items",
            &[
                ("Authorization", &auth),
                ("Content-Type", "application/json"),
            ],
            spec.as_bytes(),
        ),
    )
    .await;
    assert_eq!(r.json()["code"], 0, "{r:?}");
    let post = |body: String| {
        common::request(
            "POST",
            "/api/v1/sealed-items",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
    };
    // A plain body is refused on a route that requires the envelope.
    let r = common::https_raw(s.public, s.cert(), &post(r#"{"id_number":"x"}"#.to_owned())).await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (400, Some(20000)),
        "{r:?}"
    );
    let (kid, public) = envelope_key(&s).await;
    let form = serde_json::json!({"name": "李娜", "case": 42}).to_string();
    let (envelope, session) =
        seal_request(&public, &kid, form.as_bytes(), Sm2CipherFormat::default()).expect("seal");
    let mut bad = envelope.clone();
    bad.iv = "AAAAAAAAAAAAAAAA".to_owned();
    let r = common::https_raw(
        s.public,
        s.cert(),
        &post(serde_json::to_string(&bad).expect("json")),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["code"].as_u64()),
        (400, Some(20004)),
        "{r:?}"
    );
    assert!(
        seen.lock().expect("seen").is_empty(),
        "reached the upstream"
    );
    // Sealed: the upstream reads the plaintext, the client opens the answer.
    let r = common::https_raw(
        s.public,
        s.cert(),
        &post(serde_json::to_string(&envelope).expect("json")),
    )
    .await;
    let v = r.json();
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(seen.lock().expect("seen").as_slice(), [form.as_str()]);
    let opened = session
        .open_response_json(&serde_json::to_vec(&v["data"]).expect("json"))
        .expect("the answer opens");
    let answer: serde_json::Value = serde_json::from_slice(&opened).expect("json");
    assert_eq!(answer["got"]["case"], 42, "{answer}");
    assert!(!String::from_utf8_lossy(&r.body).contains("李娜"), "{v}");
}
