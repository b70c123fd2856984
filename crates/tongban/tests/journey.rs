//! A citizen's journey through `tongban serve --demo`, over HTTPS through the gateway, as the
//! quick app makes it: sign in, query my social-insurance contributions (a signed answer), see
//! the province system's failures as their codes, step up with a face check, book a slot at a
//! service hall with a signed request, retry it, list, cancel, sign out. Each refusal on the
//! way answers its code.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::signin::{DEVICE, sign_in};
use common::{Server, write_config};
use tongban_gateway::sign::canonical::{Signed, request_string, response_string, sign};

/// A running demo and the citizen's session.
struct Citizen<'a> {
    s: &'a Server,
    token: String,
    key_id: String,
    key: Vec<u8>,
    nonce: u64,
}

struct Answer {
    status: u16,
    json: serde_json::Value,
    headers: Vec<(String, String)>,
}

impl Citizen<'_> {
    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// The request with the session's credentials and `extra` headers, answered raw.
    async fn send(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> common::Response {
        let auth = self.auth();
        let mut headers = vec![("Authorization", auth.as_str()), ("X-Device-Id", DEVICE)];
        headers.extend_from_slice(extra);
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        common::https_raw(
            self.s.public,
            self.s.cert(),
            &common::request(method, path, &headers, body),
        )
        .await
    }

    async fn call(&self, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]) -> Answer {
        let r = self.send(method, path, extra, body).await;
        Answer {
            status: r.status,
            json: r.json(),
            headers: r.headers,
        }
    }

    /// A signed request (docs/signing.md); checks the answer's signature too.
    async fn signed(
        &mut self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        self.nonce += 1;
        let nonce = format!("journey-nonce-{:08}", self.nonce);
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            .to_string();
        let (p, q) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let canonical = request_string(
            method,
            p,
            q,
            body,
            &Signed {
                key_id: &self.key_id,
                timestamp: &ts,
                nonce: &nonce,
                signature: "",
            },
        );
        let signature = sign(&self.key, &canonical);
        let mut headers = vec![
            ("X-Tb-Key-Id", self.key_id.as_str()),
            ("X-Tb-Timestamp", ts.as_str()),
            ("X-Tb-Nonce", nonce.as_str()),
            ("X-Tb-Signature", signature.as_str()),
        ];
        headers.extend_from_slice(extra);
        let r = self.send(method, path, &headers, body).await;
        // Refusals before the signature layer (login, level, limits) come unsigned; whatever
        // passed it comes signed, and the signature must hold.
        match r.header("x-tb-timestamp") {
            Some(answered_ts) => {
                let expected = sign(
                    &self.key,
                    &response_string(
                        r.status,
                        &r.body,
                        answered_ts.parse().expect("timestamp"),
                        &nonce,
                        &self.key_id,
                    ),
                );
                assert_eq!(
                    r.header("x-tb-signature"),
                    Some(expected.as_str()),
                    "the answer's signature"
                );
            }
            None => assert_ne!(r.json()["code"], 0, "a success must come signed"),
        }
        Answer {
            status: r.status,
            json: r.json(),
            headers: r.headers,
        }
    }
}

/// `METHOD url+path` with a JSON body to the simulator (plain HTTP on loopback).
async fn sim_call(url: &str, method: &str, path: &str, body: &str) {
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .parse()
        .expect("the simulator's address");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tokio::io::AsyncWriteExt::write_all(
        &mut tcp,
        &common::request(
            method,
            path,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        ),
    )
    .await
    .expect("write");
    let mut raw = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut tcp, &mut raw)
        .await
        .expect("read");
    assert_eq!(common::parse_response(&raw).json()["code"], 0);
}

/// `YYYY-MM-DD` in Beijing time, `days` from today.
fn beijing_date(days: i64) -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let day = (i64::try_from(secs).expect("i64") + 8 * 3600) / 86_400 + days;
    let (y, m, d) = tongban_core::date::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn a_citizen_books_a_service_hall_slot_through_the_demo() {
    let dir = common::temp_dir("journey");
    let cfg = write_config(
        &dir,
        "[server]\npublic_addr = \"127.0.0.1:0\"\nadmin_addr = \"127.0.0.2:0\"\n",
    );
    let s = Server::start_serve(&dir, &cfg, &[], &["--demo"]);
    s.wait_for_log("Demo ready.");

    // Not signed in: the gateway refuses a booking (10006) and my bookings.
    let r = common::get(s.public, s.cert(), "/api/v1/bookings").await;
    assert_eq!(r.json()["code"], 10006, "{r:?}");

    // Signed in at real_name.
    let session = sign_in(&s, "wang-fang").await;
    let mut me = Citizen {
        s: &s,
        token: session["access_token"].as_str().expect("token").to_owned(),
        key_id: session["signing_key_id"]
            .as_str()
            .expect("key id")
            .to_owned(),
        key: tongban_crypto::encoding::hex_decode(
            session["signing_key"].as_str().expect("key"),
            "key",
        )
        .expect("hex"),
        nonce: 0,
    };

    // My contribution records: a signed answer (checked in `signed`), the person whole
    // because they are the caller's own.
    let records = "/api/v1/contribution-records?from=2024-01&to=2024-06";
    let r = me.signed("GET", records, &[], b"").await;
    assert_eq!(r.json["code"], 0, "{}", r.json);
    assert_eq!(r.json["data"]["person"]["name"], "王芳", "{}", r.json);
    assert!(
        r.json["data"]["records"]
            .as_array()
            .is_some_and(|rs| !rs.is_empty()),
        "{}",
        r.json
    );
    // The province system slow, then failing: each reaches the citizen as its code. A hang
    // outlasts the first try's read timeout (3 s), the retry runs into the call's total
    // timeout (5 s): 30001. (One hang alone is retried away: the citizen gets the records.)
    let sim = s
        .log_text()
        .lines()
        .find_map(|l| {
            l.split("Province simulator:")
                .nth(1)
                .map(|u| u.trim().to_owned())
        })
        .expect("the welcome names the simulator");
    for (fault, code) in [
        (r#"{"kind": "hang", "count": 10}"#, 30001),
        (r#"{"kind": "status", "status": 500, "count": 10}"#, 30013),
    ] {
        sim_call(&sim, "POST", "/sim/faults", fault).await;
        let r = me.signed("GET", records, &[], b"").await;
        assert_eq!(r.json["code"], code, "{fault}: {}", r.json);
        // Every try of the call met the fault; what the retries left queued goes.
        sim_call(&sim, "DELETE", "/sim/faults", "").await;
    }

    // A bookable slot in the coming week at the district centre.
    let hall = "dongcheng-district-centre";
    let mut slot = None;
    for day in 1..=7 {
        let r = me
            .call(
                "GET",
                &format!(
                    "/api/v1/service-halls/{hall}/time-slots?date={}",
                    beijing_date(day)
                ),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.json["code"], 0, "{}", r.json);
        slot = r.json["data"]["slots"]
            .as_array()
            .and_then(|slots| slots.iter().find(|s| s["bookable"] == true))
            .and_then(|s| s["id"].as_str())
            .map(str::to_owned);
        if slot.is_some() {
            break;
        }
    }
    let slot = slot.expect("a bookable slot within a week");
    let body = serde_json::json!({"slot_id": slot, "service": "business-registration"}).to_string();

    // Without a face check the route refuses: 10003 with what is needed.
    let r = me
        .signed(
            "POST",
            "/api/v1/bookings",
            &[("Idempotency-Key", "journey-booking-1")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(
        (r.status, r.json["code"].as_u64()),
        (403, Some(10003)),
        "{}",
        r.json
    );

    // The face step-up with the simulator's live image.
    let image = tongban_crypto::encoding::b64_encode(b"simulated-live-face");
    let r = me
        .call(
            "POST",
            "/api/v1/face-verifications",
            &[],
            serde_json::json!({"image": image}).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.json["data"]["level"], "face_verified", "{}", r.json);

    // Booked, and a retry of the same request books nothing more.
    let first = me
        .signed(
            "POST",
            "/api/v1/bookings",
            &[("Idempotency-Key", "journey-booking-1")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(first.json["code"], 0, "{}", first.json);
    let booking = first.json["data"]["id"]
        .as_str()
        .expect("a booking id")
        .to_owned();
    let again = me
        .signed(
            "POST",
            "/api/v1/bookings",
            &[("Idempotency-Key", "journey-booking-1")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(again.json, first.json);
    assert!(
        again
            .headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("idempotent-replayed") && v == "true"),
        "the retry is answered from the first booking"
    );
    // A new request for the same hall and day: already booked (the service's own code).
    let r = me
        .signed(
            "POST",
            "/api/v1/bookings",
            &[("Idempotency-Key", "journey-booking-2")],
            body.as_bytes(),
        )
        .await;
    assert_eq!(r.json["code"], 13002, "{}", r.json);

    let mine = me.call("GET", "/api/v1/bookings", &[], b"").await;
    assert_eq!(mine.json["code"], 0, "{}", mine.json);
    let listed = mine.json["data"]["bookings"]
        .as_array()
        .or_else(|| mine.json["data"].as_array())
        .expect("a list of bookings");
    assert_eq!(
        listed
            .iter()
            .filter(|b| b["id"] == booking.as_str())
            .count(),
        1,
        "{}",
        mine.json
    );

    // Cancelled.
    let r = me
        .signed("DELETE", &format!("/api/v1/bookings/{booking}"), &[], b"")
        .await;
    assert_eq!(r.json["code"], 0, "{}", r.json);

    // Signed out: the next call is refused.
    let r = me
        .call("DELETE", "/api/v1/sessions/current", &[], b"")
        .await;
    assert_eq!(r.json["code"], 0, "{}", r.json);
    let r = me.call("GET", "/api/v1/bookings", &[], b"").await;
    assert_eq!(r.json["code"], 10017, "{}", r.json);
}
