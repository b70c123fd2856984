//! The service's behaviour through HTTP, one body per case, run by a thin file per database.
//! Requests carry contexts sealed as the gateway seals them, under a key the service was given;
//! the service's clock is a `ManualClock` so deadlines are reached without sleeping.

use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Row;
use tongban_core::clock::ManualClock;
use tongban_crypto::caller_context::{self, CallerContext, CallerPart, ContextKey, RequestPart};
use tongban_hall_booking::schedule::LocalDate;
use tongban_hall_booking::{Config, HallBooking, Platform, serve};

/// Declares one `#[tokio::test]` per case for the database that `$open` gives a URL of.
#[macro_export]
macro_rules! hall_booking_suite {
    ($open:path) => {
        hall_booking_suite!(@cases $open;
            halls_are_listed_to_callers_through_the_gateway_only,
            time_slots_follow_opening_hours,
            bad_dates_and_unknown_halls_are_refused,
            levels_are_checked_by_the_service,
            a_booking_is_listed_and_a_retry_replays_it,
            a_key_reused_for_another_body_is_refused,
            business_rules_answer_their_codes,
            cancelling_frees_the_seat_until_an_hour_before,
            another_citizens_booking_does_not_exist,
            two_hundred_bookings_race_for_ten_seats,
            concurrent_retries_of_one_key_book_once,
            bad_input_answers_20000_and_changes_nothing,
            unknown_paths_and_methods_answer_the_envelope,
            the_window_moves_with_the_clock);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let url = $open().await;
                suite::$case(url).await;
            }
        )*
    };
}

const CENTRE: &str = "dongcheng-district-centre";
const STREET: &str = "jingshan";
const HOUR_MS: i64 = 3_600_000;

/// Monday 2025-06-09, the service's "today" at start.
fn monday() -> LocalDate {
    LocalDate::parse("2025-06-09").expect("date")
}

/// 08:00 that Monday in Beijing.
fn start_ms() -> i64 {
    monday().start_ms() + 8 * HOUR_MS
}

fn slot(hall: &str, day: LocalDate, hhmm: &str) -> String {
    format!("{hall}-{}-{hhmm}", day.compact())
}

/// A running service, its clock and its key.
pub(crate) struct Harness {
    svc: HallBooking,
    clock: ManualClock,
    key: ContextKey,
    http: reqwest::Client,
}

/// One answer.
#[derive(Debug)]
pub(crate) struct Answer {
    status: u16,
    body: Value,
    raw: String,
    replayed: bool,
}

impl Harness {
    async fn start(url: String) -> Self {
        Self::start_at(url, start_ms()).await
    }

    async fn start_at(url: String, now_ms: i64) -> Self {
        let clock = ManualClock::at_ms(now_ms);
        let key = ContextKey::from_bytes(1, &[7; 32]);
        let mut config = Config::new(
            "127.0.0.1:0".parse().expect("addr"),
            url.clone(),
            Platform::Keys(vec![key.clone()]),
        );
        config.clock = Arc::new(clock.clone());
        let svc = serve(config).await.expect("the service starts");
        Self {
            svc,
            clock,
            key,
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .expect("client"),
        }
    }

    /// A context as the gateway would seal it for `sub` at `lvl`, valid for a minute.
    fn context_for(&self, svc: &str, lvl: &str, sub: Option<&str>) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(0))
            .unwrap_or(0);
        // Built from JSON so that fields the format may gain later default to null.
        let caller: CallerPart = serde_json::from_value(json!({
            "svc": svc, "sub": sub, "lvl": lvl,
            "face_at": (lvl == "face_verified").then_some(now - 1000),
            "sid": sub.map(|_| "s-1"), "dev": sub.map(|_| "D1"), "app": null,
        }))
        .expect("caller part");
        caller_context::seal(
            &CallerContext {
                caller,
                request: RequestPart {
                    route: "test".into(),
                    rid: Some("r-test".into()),
                    iat: now,
                    exp: now + 60_000,
                },
            },
            &self.key,
        )
    }

    fn anonymous(&self) -> String {
        self.context_for("hall-booking", "anonymous", None)
    }

    fn face(&self, sub: &str) -> String {
        self.context_for("hall-booking", "face_verified", Some(sub))
    }

    fn real_name(&self, sub: &str) -> String {
        self.context_for("hall-booking", "real_name", Some(sub))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        context: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.svc.url()));
        if let Some(c) = context {
            req = req.header("X-Tb-Caller", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let resp = req.send().await.expect("the service answers");
        let status = resp.status().as_u16();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let raw = resp.text().await.expect("body");
        let body: Value = serde_json::from_str(&raw)
            .unwrap_or_else(|_| panic!("not the envelope: {status} {raw:?}"));
        assert!(ct.starts_with("application/json"), "{ct} {raw}");
        assert!(body["code"].is_u64(), "{raw}");
        Answer {
            status,
            body,
            raw,
            replayed,
        }
    }

    async fn get(&self, path: &str, context: &str) -> Answer {
        self.send(Method::GET, path, Some(context), &[], None).await
    }

    async fn book_with(&self, sub: &str, key: &str, body: &Value) -> Answer {
        let body = body.to_string();
        self.send(
            Method::POST,
            "/api/v1/bookings",
            Some(&self.face(sub)),
            &[
                ("Idempotency-Key", key),
                ("Content-Type", "application/json"),
            ],
            Some(body.as_bytes()),
        )
        .await
    }

    async fn book(&self, sub: &str, key: &str, slot_id: &str, service: &str) -> Answer {
        self.book_with(sub, key, &json!({"slot_id": slot_id, "service": service}))
            .await
    }

    async fn cancel(&self, context: &str, id: &str) -> Answer {
        self.send(
            Method::DELETE,
            &format!("/api/v1/bookings/{id}"),
            Some(context),
            &[],
            None,
        )
        .await
    }

    async fn remaining(&self, hall: &str, day: LocalDate, slot_id: &str) -> i64 {
        let a = self
            .get(
                &format!("/api/v1/service-halls/{hall}/time-slots?date={day}"),
                &self.anonymous(),
            )
            .await;
        assert_eq!(a.body["code"], 0, "{}", a.raw);
        a.body["data"]["slots"]
            .as_array()
            .expect("slots")
            .iter()
            .find(|s| s["id"] == slot_id)
            .and_then(|s| s["remaining"].as_i64())
            .expect("the slot is listed")
    }

    /// Every row of the service's tables, as text: equal before and after means unchanged.
    async fn snapshot(&self) -> String {
        let pool = self.svc.store().pool();
        let mut out = String::new();
        for r in sqlx::query(
            "SELECT id, subject, slot_id, status, service, cancelled_at FROM hb_bookings ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .expect("bookings")
        {
            out.push_str(&format!(
                "b {} {} {} {} {} {:?}\n",
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
                r.get::<String, _>(3),
                r.get::<String, _>(4),
                r.get::<Option<i64>, _>(5)
            ));
        }
        for r in sqlx::query(
            "SELECT subject, key, request, answer FROM hb_idempotency_keys ORDER BY subject, key",
        )
        .fetch_all(pool)
        .await
        .expect("keys")
        {
            out.push_str(&format!(
                "k {} {} {} {}\n",
                r.get::<String, _>(0),
                r.get::<String, _>(1),
                r.get::<String, _>(2),
                r.get::<String, _>(3)
            ));
        }
        for r in sqlx::query("SELECT id, booked, capacity FROM hb_time_slots ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("slots")
        {
            out.push_str(&format!(
                "s {} {} {}\n",
                r.get::<String, _>(0),
                r.get::<i64, _>(1),
                r.get::<i64, _>(2)
            ));
        }
        out
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.svc.store().pool())
            .await
            .expect("count")
    }
}

fn assert_code(a: &Answer, code: u64, status: u16) {
    assert_eq!(
        (a.body["code"].as_u64(), a.status),
        (Some(code), status),
        "{}",
        a.raw
    );
}

// === cases ===

pub(crate) async fn halls_are_listed_to_callers_through_the_gateway_only(url: String) {
    let h = Harness::start(url).await;
    let a = h.get("/api/v1/service-halls", &h.anonymous()).await;
    assert_code(&a, 0, 200);
    let halls = a.body["data"]["halls"].as_array().expect("halls");
    assert!(halls.len() >= 5, "{}", a.raw);
    let centre = &halls[0];
    assert_eq!(centre["id"], CENTRE);
    assert_eq!(centre["name"], "北京市东城区政务服务中心");
    assert!(
        centre["address"]
            .as_str()
            .is_some_and(|s| s.starts_with("北京市东城区"))
    );
    assert_eq!(centre["time_zone"], "Asia/Shanghai");
    assert_eq!(
        centre["opening_hours"][0],
        json!({"days": [1, 2, 3, 4, 5], "periods": [
            {"from": "09:00", "to": "12:00"}, {"from": "13:30", "to": "17:00"}]})
    );
    assert_eq!(centre["opening_hours"][1]["days"], json!([6]));
    assert!(
        centre["services"]
            .as_array()
            .is_some_and(|s| s.iter().any(|m| m["code"] == "housing-fund"))
    );
    // A signed-in caller sees the same.
    let b = h.get("/api/v1/service-halls", &h.face("p-1")).await;
    assert_eq!(b.body["data"], a.body["data"]);

    // Around the gateway: no context, a forged one, one for another service, an expired one.
    let none = h
        .send(Method::GET, "/api/v1/service-halls", None, &[], None)
        .await;
    assert_code(&none, 10006, 401);
    let good = h.anonymous();
    let mut forged = good.clone();
    forged.pop();
    forged.push(if good.ends_with('A') { 'B' } else { 'A' });
    for bad in [
        forged,
        h.context_for("social-insurance", "anonymous", None),
        "v1.1.e30.e30.AAAA".to_owned(),
        "garbage".to_owned(),
    ] {
        let a = h.get("/api/v1/service-halls", &bad).await;
        assert_code(&a, 20001, 403);
    }
    let other_key = ContextKey::from_bytes(1, &[8; 32]);
    let stranger = Harness {
        key: other_key,
        ..h
    };
    let a = stranger
        .get("/api/v1/service-halls", &stranger.anonymous())
        .await;
    assert_code(&a, 20001, 403);
}

pub(crate) async fn time_slots_follow_opening_hours(url: String) {
    let h = Harness::start(url).await;
    let day_slots = |a: &Answer| {
        a.body["data"]["slots"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let path =
        |hall: &str, day: LocalDate| format!("/api/v1/service-halls/{hall}/time-slots?date={day}");
    let a = h.get(&path(CENTRE, monday()), &h.anonymous()).await;
    assert_code(&a, 0, 200);
    let slots = day_slots(&a);
    assert_eq!(slots.len(), 13, "{}", a.raw);
    assert_eq!(
        slots[0],
        json!({"id": slot(CENTRE, monday(), "0900"), "starts_at": "2025-06-09T09:00:00+08:00",
               "ends_at": "2025-06-09T09:30:00+08:00", "capacity": 10, "remaining": 10,
               "bookable": true})
    );
    assert_eq!(slots[6]["starts_at"], "2025-06-09T13:30:00+08:00");
    assert_eq!(slots[12]["ends_at"], "2025-06-09T17:00:00+08:00");
    // Saturday morning at the centre, closed at a street centre; Sunday closed.
    let saturday = monday().add_days(5);
    assert_eq!(
        day_slots(&h.get(&path(CENTRE, saturday), &h.anonymous()).await).len(),
        6
    );
    assert!(day_slots(&h.get(&path(STREET, saturday), &h.anonymous()).await).is_empty());
    assert!(
        day_slots(
            &h.get(&path(CENTRE, saturday.add_days(1)), &h.anonymous())
                .await
        )
        .is_empty()
    );
    // The window's last Saturday and weekday have their slots; a street centre seats 4.
    let s = day_slots(
        &h.get(&path(CENTRE, monday().add_days(12)), &h.anonymous())
            .await,
    );
    assert_eq!((s.len(), s[0]["capacity"].as_i64()), (6, Some(10)));
    let s = day_slots(
        &h.get(&path(STREET, monday().add_days(11)), &h.anonymous())
            .await,
    );
    assert_eq!((s.len(), s[0]["capacity"].as_i64()), (13, Some(4)));
    // Once 09:00 has passed, its slot is no longer bookable.
    h.clock.set_ms(start_ms() + 90 * 60_000);
    let s = day_slots(&h.get(&path(CENTRE, monday()), &h.anonymous()).await);
    assert_eq!(
        (s[0]["bookable"].as_bool(), s[1]["bookable"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(s[2]["bookable"], true);
}

pub(crate) async fn bad_dates_and_unknown_halls_are_refused(url: String) {
    let h = Harness::start(url).await;
    let before = h.snapshot().await;
    for (query, reason) in [
        ("", "missing"),
        ("?day=2025-06-09", "missing"),
        ("?date=2025-02-30", "value"),
        ("?date=20250609", "value"),
        ("?date=2025-06-08", "value"),
        ("?date=2025-06-23", "value"),
        ("?date=%3Cscript%3E", "value"),
        ("?date=2025-06-09%27%20OR%201%3D1--", "value"),
        ("?date=2025-06-09%00", "value"),
        ("?date=%F0%9F%98%80", "value"),
    ] {
        let a = h
            .get(
                &format!("/api/v1/service-halls/{CENTRE}/time-slots{query}"),
                &h.anonymous(),
            )
            .await;
        assert_code(&a, 20000, 400);
        assert_eq!(
            a.body["data"],
            json!({"field": "date", "reason": reason}),
            "{query}"
        );
        assert!(
            !a.raw.contains("script") && !a.raw.contains("OR 1"),
            "{}",
            a.raw
        );
    }
    for hall in [
        "no-such-hall",
        "%3Cscript%3E",
        "x%27%20OR%20%271%27%3D%271",
        "%F0%9F%98%80",
    ] {
        let a = h
            .get(
                &format!("/api/v1/service-halls/{hall}/time-slots?date=2025-06-09"),
                &h.anonymous(),
            )
            .await;
        assert_code(&a, 20404, 404);
    }
    assert_eq!(h.snapshot().await, before);
}

pub(crate) async fn levels_are_checked_by_the_service(url: String) {
    let h = Harness::start(url).await;
    let body = json!({"slot_id": slot(CENTRE, monday(), "1000"), "service": "tax"}).to_string();
    let post = |ctx: String| {
        let body = body.clone();
        let h = &h;
        async move {
            h.send(
                Method::POST,
                "/api/v1/bookings",
                Some(&ctx),
                &[
                    ("Idempotency-Key", "key-00000001"),
                    ("Content-Type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
            .await
        }
    };
    let before = h.snapshot().await;
    assert_code(&post(h.anonymous()).await, 10006, 401);
    // A session below face_verified, whether real-name checked or not.
    assert_code(
        &post(h.context_for("hall-booking", "anonymous", Some("p-1"))).await,
        10003,
        403,
    );
    let a = post(h.real_name("p-1")).await;
    assert_code(&a, 10003, 403);
    assert_eq!(a.body["data"]["required"], "face_verified");
    // The level is refused before the body is even read: a bad body changes nothing.
    let a = h
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(&h.real_name("p-1")),
            &[("Content-Type", "application/json")],
            Some(b"not json"),
        )
        .await;
    assert_code(&a, 10003, 403);
    assert_eq!(h.snapshot().await, before);

    assert_code(&h.get("/api/v1/bookings", &h.anonymous()).await, 10006, 401);
    assert_code(
        &h.get(
            "/api/v1/bookings",
            &h.context_for("hall-booking", "anonymous", Some("p-1")),
        )
        .await,
        10008,
        403,
    );
    assert_code(
        &h.get("/api/v1/bookings", &h.real_name("p-1")).await,
        0,
        200,
    );
    assert_code(&h.get("/api/v1/bookings", &h.face("p-1")).await, 0, 200);

    let id = "0123456789abcdef0123456789abcdef";
    assert_code(&h.cancel(&h.anonymous(), id).await, 10006, 401);
    assert_code(&h.cancel(&h.real_name("p-1"), id).await, 10003, 403);
    assert_code(&h.cancel(&h.face("p-1"), id).await, 20404, 404);
}

pub(crate) async fn a_booking_is_listed_and_a_retry_replays_it(url: String) {
    let h = Harness::start(url).await;
    let s = slot(CENTRE, monday(), "1000");
    let first = h.book("p-1", "retry-key-1", &s, "housing-fund").await;
    assert_code(&first, 0, 200);
    assert!(!first.replayed);
    let booking = &first.body["data"];
    assert_eq!(booking["slot_id"], s.as_str());
    assert_eq!(booking["hall_id"], CENTRE);
    assert_eq!(booking["service"], "housing-fund");
    assert_eq!(booking["status"], "active");
    assert_eq!(booking["starts_at"], "2025-06-09T10:00:00+08:00");
    assert_eq!(booking["date"], "2025-06-09");
    let id = booking["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(h.remaining(CENTRE, monday(), &s).await, 9);

    // The same key and body again, with the body spelled differently: the first answer,
    // byte for byte, and no second seat taken.
    for _ in 0..3 {
        let again = h
            .book_with(
                "p-1",
                "retry-key-1",
                &json!({"service": "housing-fund", "slot_id": s}),
            )
            .await;
        assert_code(&again, 0, 200);
        assert!(again.replayed);
        assert_eq!(again.raw, first.raw);
    }
    assert_eq!(h.remaining(CENTRE, monday(), &s).await, 9);
    assert_eq!(h.count("SELECT COUNT(*) FROM hb_bookings").await, 1);

    // Keys belong to a citizen: another citizen's same key books for them.
    let other = h.book("p-2", "retry-key-1", &s, "housing-fund").await;
    assert_code(&other, 0, 200);
    assert!(!other.replayed);
    assert_ne!(other.body["data"]["id"], id.as_str());

    let mine = h.get("/api/v1/bookings", &h.real_name("p-1")).await;
    assert_code(&mine, 0, 200);
    let list = mine.body["data"]["bookings"].as_array().expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["hall_name"], "北京市东城区政务服务中心");
    let none = h.get("/api/v1/bookings", &h.real_name("p-3")).await;
    assert_eq!(none.body["data"]["bookings"], json!([]));

    // A refusal is kept for its key too: a retry answers it again even after the seat frees.
    let later = slot(CENTRE, monday(), "1030");
    let refused = h.book("p-1", "retry-key-2", &later, "tax").await;
    assert_code(&refused, 13_002, 400);
    let again = h.book("p-1", "retry-key-2", &later, "tax").await;
    assert!(again.replayed);
    assert_eq!(again.raw, refused.raw);
}

pub(crate) async fn a_key_reused_for_another_body_is_refused(url: String) {
    let h = Harness::start(url).await;
    let s = slot(CENTRE, monday().add_days(1), "0900");
    assert_code(&h.book("p-1", "reused-key", &s, "tax").await, 0, 200);
    let before = h.snapshot().await;
    for (slot_id, service) in [
        (s.clone(), "housing-fund".to_owned()),
        (slot(CENTRE, monday().add_days(2), "0900"), "tax".to_owned()),
    ] {
        let a = h.book("p-1", "reused-key", &slot_id, &service).await;
        assert_code(&a, 13_006, 400);
        assert!(!a.replayed);
    }
    assert_eq!(h.snapshot().await, before);
}

pub(crate) async fn business_rules_answer_their_codes(url: String) {
    let h = Harness::start(url).await;
    let tuesday = monday().add_days(1);
    // Already booked: one active booking per citizen per hall per day.
    assert_code(
        &h.book("p-1", "rule-key-01", &slot(CENTRE, tuesday, "0900"), "tax")
            .await,
        0,
        200,
    );
    assert_code(
        &h.book("p-1", "rule-key-02", &slot(CENTRE, tuesday, "1400"), "tax")
            .await,
        13_002,
        400,
    );
    // Another day, or another hall the same day, is fine.
    assert_code(
        &h.book(
            "p-1",
            "rule-key-03",
            &slot(CENTRE, tuesday.add_days(1), "0900"),
            "tax",
        )
        .await,
        0,
        200,
    );
    assert_code(
        &h.book(
            "p-1",
            "rule-key-04",
            &slot(STREET, tuesday, "0900"),
            "residence-permit",
        )
        .await,
        0,
        200,
    );
    // Full: a street centre seats four.
    let full = slot(STREET, tuesday, "1000");
    for i in 0..4 {
        let a = h
            .book(&format!("q-{i}"), "rule-key-05", &full, "civil-affairs")
            .await;
        assert_code(&a, 0, 200);
    }
    let a = h.book("q-9", "rule-key-05", &full, "civil-affairs").await;
    assert_code(&a, 13_001, 400);
    assert_eq!(a.body["msg"], "该时段已约满，请选择其他时段");
    assert_eq!(h.remaining(STREET, tuesday, &full).await, 0);
    // Unknown slot: well formed, but no such slot (a Sunday, a time between slots).
    for (i, s) in [
        slot(CENTRE, monday().add_days(6), "0900"),
        slot(CENTRE, tuesday, "0915"),
        slot(CENTRE, monday().add_days(30), "0900"),
        "no-such-hall-20250610-0900".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let key = format!("rule-key-06-{i}");
        assert_code(&h.book("p-5", &key, s, "tax").await, 13_005, 400);
        // The refusal is kept for the key.
        let again = h.book("p-5", &key, s, "tax").await;
        assert_code(&again, 13_005, 400);
        assert!(again.replayed);
    }
    // A matter the hall does not handle.
    assert_code(
        &h.book("p-6", "rule-key-07", &slot(STREET, tuesday, "1100"), "tax")
            .await,
        13_007,
        400,
    );
    // In the past: the clock moves past 09:00 on Monday.
    h.clock.set_ms(start_ms() + HOUR_MS + 1);
    let a = h
        .book("p-7", "rule-key-08", &slot(CENTRE, monday(), "0900"), "tax")
        .await;
    assert_code(&a, 13_004, 400);
    assert_code(
        &h.book("p-7", "rule-key-09", &slot(CENTRE, monday(), "0930"), "tax")
            .await,
        0,
        200,
    );
}

pub(crate) async fn cancelling_frees_the_seat_until_an_hour_before(url: String) {
    let h = Harness::start(url).await;
    let s = slot(CENTRE, monday(), "1100");
    let a = h.book("p-1", "cancel-key-1", &s, "tax").await;
    let id = a.body["data"]["id"].as_str().expect("id").to_owned();
    assert_eq!(h.remaining(CENTRE, monday(), &s).await, 9);

    // 10:00 sharp is exactly an hour before: still allowed.
    h.clock.set_ms(start_ms() + 2 * HOUR_MS);
    let c = h.cancel(&h.face("p-1"), &id).await;
    assert_code(&c, 0, 200);
    assert_eq!(c.body["data"]["status"], "cancelled");
    assert_eq!(c.body["data"]["cancelled_at"], "2025-06-09T10:00:00+08:00");
    assert_eq!(h.remaining(CENTRE, monday(), &s).await, 10);
    // Cancelling again answers the cancelled booking and frees nothing more.
    let again = h.cancel(&h.face("p-1"), &id).await;
    assert_code(&again, 0, 200);
    assert_eq!(again.body["data"]["status"], "cancelled");
    assert_eq!(h.remaining(CENTRE, monday(), &s).await, 10);
    let mine = h.get("/api/v1/bookings", &h.real_name("p-1")).await;
    assert_eq!(mine.body["data"]["bookings"][0]["status"], "cancelled");

    // A cancelled booking no longer counts against the day: book again, then it is too late.
    let b = h.book("p-1", "cancel-key-2", &s, "tax").await;
    assert_code(&b, 0, 200);
    let id2 = b.body["data"]["id"].as_str().expect("id").to_owned();
    h.clock.set_ms(start_ms() + 2 * HOUR_MS + 1);
    let before = h.snapshot().await;
    let late = h.cancel(&h.face("p-1"), &id2).await;
    assert_code(&late, 13_003, 400);
    // And after the slot has begun.
    h.clock.set_ms(start_ms() + 3 * HOUR_MS + 60_000);
    assert_code(&h.cancel(&h.face("p-1"), &id2).await, 13_003, 400);
    assert_eq!(h.snapshot().await, before);
}

pub(crate) async fn another_citizens_booking_does_not_exist(url: String) {
    let h = Harness::start(url).await;
    let a = h
        .book(
            "p-1",
            "owner-key-1",
            &slot(CENTRE, monday().add_days(3), "1500"),
            "tax",
        )
        .await;
    let id = a.body["data"]["id"].as_str().expect("id").to_owned();
    let before = h.snapshot().await;
    let theirs = h.cancel(&h.face("p-2"), &id).await;
    let nobody = h
        .cancel(&h.face("p-2"), "ffffffffffffffffffffffffffffffff")
        .await;
    assert_code(&theirs, 20404, 404);
    // Word for word what an id that never existed answers.
    assert_eq!(theirs.raw, nobody.raw);
    assert_eq!(h.snapshot().await, before);
    let list = h.get("/api/v1/bookings", &h.real_name("p-2")).await;
    assert_eq!(list.body["data"]["bookings"], json!([]));
    assert_code(&h.cancel(&h.face("p-1"), &id).await, 0, 200);
}

pub(crate) async fn two_hundred_bookings_race_for_ten_seats(url: String) {
    let h = Harness::start(url).await;
    let s = slot(CENTRE, monday().add_days(2), "1330");
    let answers = join_all((0..200).map(|i| {
        let h = &h;
        let s = &s;
        async move {
            h.book(&format!("racer-{i}"), &format!("race-key-{i:04}"), s, "tax")
                .await
        }
    }))
    .await;
    let mut by_code = std::collections::BTreeMap::new();
    for a in &answers {
        *by_code
            .entry(a.body["code"].as_u64().unwrap_or(0))
            .or_insert(0) += 1;
    }
    assert_eq!(
        by_code,
        [(0, 10), (13_001, 190)].into_iter().collect(),
        "{answers:?}"
    );
    assert_eq!(h.remaining(CENTRE, monday().add_days(2), &s).await, 0);
    assert_eq!(h.count("SELECT COUNT(*) FROM hb_bookings").await, 10);
    assert_eq!(h.count("SELECT MAX(booked) FROM hb_time_slots").await, 10);
}

pub(crate) async fn concurrent_retries_of_one_key_book_once(url: String) {
    let h = Harness::start(url).await;
    let s = slot(STREET, monday().add_days(4), "0930");
    let answers = join_all((0..20).map(|_| h.book("p-1", "double-click", &s, "employment"))).await;
    let first = answers
        .iter()
        .find(|a| !a.replayed)
        .expect("one answer was made");
    assert_code(first, 0, 200);
    for a in &answers {
        assert_eq!(a.raw, first.raw);
    }
    assert_eq!(answers.iter().filter(|a| !a.replayed).count(), 1);
    assert_eq!(h.count("SELECT COUNT(*) FROM hb_bookings").await, 1);
    assert_eq!(h.remaining(STREET, monday().add_days(4), &s).await, 3);
    // The same citizen racing for two slots of one day with two keys: one wins.
    let t = monday().add_days(5);
    let answers = join_all((0..6).map(|i| {
        let slot_id = slot(CENTRE, t, if i % 2 == 0 { "0900" } else { "0930" });
        let h = &h;
        async move {
            h.book("p-1", &format!("two-slots-{i}"), &slot_id, "tax")
                .await
        }
    }))
    .await;
    assert_eq!(
        answers.iter().filter(|a| a.body["code"] == 0).count(),
        1,
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.body["code"] == 0 || a.body["code"] == 13_002)
    );
}

pub(crate) async fn bad_input_answers_20000_and_changes_nothing(url: String) {
    let h = Harness::start(url).await;
    let good_slot = slot(CENTRE, monday(), "1500");
    assert_code(
        &h.book("p-0", "seed-key-01", &good_slot, "tax").await,
        0,
        200,
    );
    let before = h.snapshot().await;
    let long = "a".repeat(10 * 1024);
    let long_emoji = "😀".repeat(2560);
    // (body, field named, reason)
    let cases: Vec<(String, &str, &str)> = vec![
        (json!({"service": "tax"}).to_string(), "slot_id", "missing"),
        (
            json!({"slot_id": good_slot}).to_string(),
            "service",
            "missing",
        ),
        (
            json!({"slot_id": 123, "service": "tax"}).to_string(),
            "slot_id",
            "type",
        ),
        (
            json!({"slot_id": good_slot, "service": null}).to_string(),
            "service",
            "missing",
        ),
        (
            json!({"slot_id": [good_slot], "service": "tax"}).to_string(),
            "slot_id",
            "type",
        ),
        (
            json!({"slot_id": good_slot, "service": "tax", "extra": 1}).to_string(),
            "extra",
            "unknown",
        ),
        (
            json!({"slot_id": long, "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot, "service": long}).to_string(),
            "service",
            "value",
        ),
        (
            json!({"slot_id": long_emoji, "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": "<script>alert(1)</script>", "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot, "service": "<script>alert(1)</script>"}).to_string(),
            "service",
            "value",
        ),
        (
            json!({"slot_id": "x'; DROP TABLE hb_bookings; --", "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot, "service": "tax' OR '1'='1"}).to_string(),
            "service",
            "value",
        ),
        (
            json!({"slot_id": format!("{good_slot}\u{0}"), "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot, "service": "tax\u{0}"}).to_string(),
            "service",
            "value",
        ),
        (
            json!({"slot_id": "😀", "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot, "service": "社保😀"}).to_string(),
            "service",
            "value",
        ),
        (
            json!({"slot_id": "", "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
        (
            json!({"slot_id": good_slot.to_uppercase(), "service": "tax"}).to_string(),
            "slot_id",
            "value",
        ),
    ];
    for (i, (body, field, reason)) in cases.iter().enumerate() {
        let key = format!("bad-input-{i:03}");
        let a = h
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(&h.face("p-1")),
                &[
                    ("Idempotency-Key", &key),
                    ("Content-Type", "application/json"),
                ],
                Some(body.as_bytes()),
            )
            .await;
        assert_code(&a, 20000, 400);
        assert_eq!(
            a.body["data"],
            json!({"field": field, "reason": reason}),
            "{}",
            &body[..body.len().min(80)]
        );
        for echo in ["script", "DROP", "OR '1'", "😀", "aaaaaaaaaa"] {
            assert!(!a.raw.contains(echo), "{echo} echoed: {}", a.raw);
        }
    }
    // Bodies that are not a JSON object of the right shape, and no body at all.
    for (body, ct) in [
        (&b"not json"[..], "application/json"),
        (b"{\"slot_id\": \"a\"", "application/json"),
        (b"[]", "application/json"),
        (b"\"slot\"", "application/json"),
        (b"", "application/json"),
        (
            b"{\"slot_id\":\"a\",\"service\":\"tax\"} trailing",
            "application/json",
        ),
        (
            b"slot_id=a&service=tax",
            "application/x-www-form-urlencoded",
        ),
        (b"\xff\xfe\x00{", "application/json"),
    ] {
        let a = h
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(&h.face("p-1")),
                &[("Idempotency-Key", "bad-input-body"), ("Content-Type", ct)],
                Some(body),
            )
            .await;
        assert_code(&a, 20000, 400);
    }
    let huge = json!({"slot_id": "a".repeat(100 * 1024), "service": "tax"}).to_string();
    let a = h
        .send(
            Method::POST,
            "/api/v1/bookings",
            Some(&h.face("p-1")),
            &[
                ("Idempotency-Key", "bad-input-huge"),
                ("Content-Type", "application/json"),
            ],
            Some(huge.as_bytes()),
        )
        .await;
    assert_code(&a, 20000, 400);
    // Idempotency keys: missing, too short, too long, outside the alphabet.
    let body = json!({"slot_id": good_slot, "service": "tax"}).to_string();
    let long_key = "k".repeat(65);
    for (headers, reason) in [
        (vec![], "missing"),
        (vec![("Idempotency-Key", "short")], "value"),
        (vec![("Idempotency-Key", long_key.as_str())], "value"),
        (vec![("Idempotency-Key", "<script>x</script>")], "value"),
        (
            vec![("Idempotency-Key", "key'; DROP TABLE hb_bookings; --")],
            "value",
        ),
        (vec![("Idempotency-Key", "key with spaces")], "value"),
        (
            vec![
                ("Idempotency-Key", "good-key-1"),
                ("Idempotency-Key", "good-key-2"),
            ],
            "value",
        ),
    ] {
        let mut all = headers.clone();
        all.push(("Content-Type", "application/json"));
        let a = h
            .send(
                Method::POST,
                "/api/v1/bookings",
                Some(&h.face("p-1")),
                &all,
                Some(body.as_bytes()),
            )
            .await;
        assert_code(&a, 20000, 400);
        assert_eq!(
            a.body["data"],
            json!({"field": "Idempotency-Key", "reason": reason}),
            "{headers:?}"
        );
    }
    // Booking ids that cannot exist, in the path.
    for id in [
        "%3Cscript%3E",
        "1%27%20OR%20%271%27%3D%271",
        "%F0%9F%98%80",
        "abc",
        &long,
    ] {
        let a = h.cancel(&h.face("p-0"), id).await;
        assert_code(&a, 20404, 404);
    }
    let a = h.cancel(&h.face("p-0"), "%FF%FE").await;
    assert_code(&a, 20000, 400);
    assert_eq!(h.snapshot().await, before);
}

pub(crate) async fn unknown_paths_and_methods_answer_the_envelope(url: String) {
    let h = Harness::start(url).await;
    let ctx = h.face("p-1");
    for path in [
        "/",
        "/api/v1/nothing",
        "/api/v1/bookings/a/b",
        "/api/v1/service-halls/x",
    ] {
        let a = h.send(Method::GET, path, Some(&ctx), &[], None).await;
        assert_code(&a, 20404, 404);
    }
    for (method, path) in [
        (Method::PUT, "/api/v1/bookings"),
        (Method::DELETE, "/api/v1/bookings"),
        (Method::POST, "/api/v1/service-halls"),
        (
            Method::GET,
            "/api/v1/bookings/0123456789abcdef0123456789abcdef",
        ),
    ] {
        let a = h.send(method, path, Some(&ctx), &[], None).await;
        assert_code(&a, 20002, 405);
    }
}

pub(crate) async fn the_window_moves_with_the_clock(url: String) {
    let h = Harness::start(url.clone()).await;
    let last = monday().add_days(13);
    assert_code(&h.slots_on(last.add_days(1)).await, 20000, 400);
    let slots_before = h.count("SELECT COUNT(*) FROM hb_time_slots").await;
    h.svc_shutdown().await;
    // Three days on, the service starts again on the same database: three more days of slots,
    // none of the old ones twice.
    let h = Harness::start_at(url, start_ms() + 3 * 24 * HOUR_MS).await;
    let a = h.slots_on(last.add_days(3)).await;
    assert_code(&a, 0, 200);
    assert_eq!(a.body["data"]["slots"].as_array().map(Vec::len), Some(13));
    assert_code(&h.slots_on(monday()).await, 20000, 400);
    let added = h.count("SELECT COUNT(*) FROM hb_time_slots").await - slots_before;
    let per_day: i64 = [last.add_days(1), last.add_days(2), last.add_days(3)]
        .iter()
        .map(|d| {
            tongban_hall_booking::halls::HALLS
                .iter()
                .map(|hall| tongban_hall_booking::schedule::slots(hall, *d).len() as i64)
                .sum::<i64>()
        })
        .sum();
    assert_eq!(added, per_day);
}

impl Harness {
    async fn slots_on(&self, day: LocalDate) -> Answer {
        let path = format!("/api/v1/service-halls/{CENTRE}/time-slots?date={day}");
        self.get(&path, &self.anonymous()).await
    }

    async fn svc_shutdown(self) {
        self.svc.shutdown().await;
    }
}
