//! The service over HTTP, against the real province simulator: a citizen's own records, someone
//! else's masked, the levels and contexts refused, bad input refused before anything is asked
//! or logged, and the query log holding no personal data. Storage cases run on SQLite and on
//! PostgreSQL; the province's faults are in `faults.rs`.

mod faults;
mod registration;
mod support;

use crate::support::{As, Db, Env, as_zhang, li, start, zhang};
use serde_json::Value;

const RECORDS: &str = "/api/v1/contribution-records";
const QUERIES: &str = "/api/v1/contribution-record-queries";

/// Declares each storage case once per backend.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Db::Sqlite).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Db::Postgres).await;
                }
            )*
        }
    };
}

both_backends!(
    own_records_come_whole_with_totals_in_fen,
    someone_elses_records_are_masked_and_ones_own_are_not,
    an_empty_period_answers_10022_and_is_logged,
    bad_input_answers_20000_and_is_never_logged,
);

/// No row of the log holds the ID number (whole or its first 17 digits) or the name.
async fn assert_log_has_no_personal_data(env: &Env, people: &[(&str, &str)]) {
    let rows = env.log_rows().await;
    assert!(!rows.is_empty());
    for row in &rows {
        for cell in row {
            for (name, id) in people {
                assert!(!cell.contains(id), "the log holds an ID number: {row:?}");
                assert!(
                    !cell.contains(&id[..17]),
                    "the log holds an ID number: {row:?}"
                );
                assert!(!cell.contains(name), "the log holds a name: {row:?}");
            }
        }
    }
}

fn sum(records: &[Value], field: &str, arrears: bool) -> u64 {
    records
        .iter()
        .filter(|r| (r["status"] == "欠缴") == arrears)
        .map(|r| r[field].as_u64().expect("amounts are integers (fen)"))
        .sum()
}

async fn own_records_come_whole_with_totals_in_fen(db: Db) {
    let env = start(db, |_| {}).await;
    let (name, id) = zhang();
    let ctx = env.context(&as_zhang());
    let (status, v) = env
        .get(&format!("{RECORDS}?from=2023-01&to=2024-06"), Some(&ctx))
        .await;
    assert_eq!((status, v["code"].as_u64()), (200, Some(0)), "{v}");
    let d = &v["data"];
    assert_eq!(d["person"]["name"], name);
    assert_eq!(d["person"]["id_number"], id);
    assert_eq!(d["person"]["masked"], false);
    assert!(d["person"]["insured_since"].is_string(), "{d}");
    assert_eq!(
        d["period"],
        serde_json::json!({"from": "2023-01", "to": "2024-06"})
    );
    let records = d["records"].as_array().expect("records");
    assert!(!records.is_empty());
    assert!(records.iter().all(|r| {
        let m = r["month"].as_str().unwrap_or_default();
        ("2023-01"..="2024-06").contains(&m)
    }));
    let t = &d["totals"];
    assert_eq!(
        t["personal"].as_u64(),
        Some(sum(records, "personal", false))
    );
    assert_eq!(
        t["employer"].as_u64(),
        Some(sum(records, "employer", false))
    );
    assert_eq!(
        t["arrears_personal"].as_u64(),
        Some(sum(records, "personal", true))
    );
    assert_eq!(
        t["total"].as_u64(),
        Some(sum(records, "personal", false) + sum(records, "employer", false))
    );
    let mut months: Vec<&str> = records.iter().filter_map(|r| r["month"].as_str()).collect();
    months.sort_unstable();
    months.dedup();
    assert_eq!(t["months"].as_u64(), Some(months.len() as u64));
    let answered = records.len();

    // One insurance only, asked by its code or its name.
    for kind in ["pension", "%E5%85%BB%E8%80%81%E4%BF%9D%E9%99%A9"] {
        let (_, v) = env
            .get(
                &format!("{RECORDS}?from=2024-01&to=2024-03&insurance_type={kind}"),
                Some(&env.context(&as_zhang())),
            )
            .await;
        let records = v["data"]["records"].as_array().expect("records");
        assert!(!records.is_empty());
        assert!(
            records.iter().all(|r| r["insurance_type"] == "养老保险"),
            "{v}"
        );
    }

    let rows = env.log_rows().await;
    assert_eq!(rows.len(), 3);
    let entries = env.svc.query_log().entries_for(id).await.expect("entries");
    assert_eq!(
        entries.len(),
        3,
        "found by the blind index of the ID number"
    );
    let first = &entries[0];
    assert!(first.own);
    assert_eq!(first.code, 0);
    assert_eq!(first.subject.as_deref(), Some("sub-zhang"));
    assert!(
        first
            .request_id
            .as_deref()
            .is_some_and(|r| r.starts_with("r-"))
    );
    assert_eq!(
        (first.period_from.as_str(), first.period_to.as_str()),
        ("2023-01", "2024-06")
    );
    assert_eq!(first.records as usize, answered);
    assert_eq!(first.person_index.value.len(), 43);
    assert_log_has_no_personal_data(&env, &[(name, id)]).await;
    env.finish().await;
}

async fn someone_elses_records_are_masked_and_ones_own_are_not(db: Db) {
    let env = start(db, |_| {}).await;
    let (li_name, li_id) = li();
    let (zhang_name, zhang_id) = zhang();

    let (status, v) = env.query(&as_zhang(), li(), "2024-01", "2024-06").await;
    assert_eq!((status, v["code"].as_u64()), (200, Some(0)), "{v}");
    let p = &v["data"]["person"];
    let masked_name = format!("{}*", li_name.chars().next().unwrap_or('?'));
    assert_eq!(p["name"], masked_name.as_str());
    assert_eq!(
        p["id_number"],
        format!("{}**********{}", &li_id[..4], &li_id[14..]).as_str()
    );
    assert_eq!(p["masked"], true);
    let text = v.to_string();
    assert!(!text.contains(li_id) && !text.contains(li_name), "{text}");
    assert!(!v["data"]["records"].as_array().expect("records").is_empty());

    // The caller's own ID number through the same endpoint (lowercase x or not): whole.
    let (status, v) = env.query(&as_zhang(), zhang(), "2024-01", "2024-06").await;
    assert_eq!((status, v["code"].as_u64()), (200, Some(0)), "{v}");
    assert_eq!(v["data"]["person"]["id_number"], zhang_id);
    assert_eq!(v["data"]["person"]["name"], zhang_name);
    assert_eq!(v["data"]["person"]["masked"], false);

    // A name that is not the person's: the province refuses it (30012, its words not shown).
    let (status, v) = env
        .query(&as_zhang(), ("王五", li_id), "2024-01", "2024-06")
        .await;
    assert_eq!((status, v["code"].as_u64()), (502, Some(30012)), "{v}");
    assert!(!v.to_string().contains("姓名"), "{v}");

    let li_entries = env.svc.query_log().entries_for(li_id).await.expect("li");
    assert_eq!(
        li_entries
            .iter()
            .map(|e| (e.own, e.code))
            .collect::<Vec<_>>(),
        [(false, 0), (false, 30012)]
    );
    let own = env
        .svc
        .query_log()
        .entries_for(zhang_id)
        .await
        .expect("own");
    assert_eq!(own.len(), 1);
    assert!(own[0].own);
    assert_log_has_no_personal_data(&env, &[(li_name, li_id), (zhang_name, zhang_id)]).await;
    env.finish().await;
}

async fn an_empty_period_answers_10022_and_is_logged(db: Db) {
    let env = start(db, |_| {}).await;
    // The province's electronic register starts in 1995.
    let (status, v) = env
        .get(
            &format!("{RECORDS}?from=1990-01&to=1990-12"),
            Some(&env.context(&as_zhang())),
        )
        .await;
    assert_eq!((status, v["code"].as_u64()), (200, Some(10022)), "{v}");
    assert_eq!(v["data"]["records"], serde_json::json!([]));
    assert_eq!(v["data"]["person"]["id_number"], zhang().1);
    assert_eq!(v["data"]["totals"]["total"], 0);
    let rows = env.log_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][9], "10022");
    env.finish().await;
}

async fn bad_input_answers_20000_and_is_never_logged(db: Db) {
    let env = start(db, |_| {}).await;
    let (_, li_id) = li();
    let ctx = || env.context(&as_zhang());
    let long = "张".repeat(10 * 1024 / 3);
    let ok = |f: &mut serde_json::Map<String, Value>| {
        f.insert("id_number".into(), li_id.into());
        f.insert("name".into(), "李娜".into());
        f.insert("from".into(), "2024-01".into());
        f.insert("to".into(), "2024-03".into());
    };
    let with = |field: &str, value: Value| {
        let mut m = serde_json::Map::new();
        ok(&mut m);
        m.insert(field.to_owned(), value);
        Value::Object(m).to_string()
    };
    let without = |field: &str| {
        let mut m = serde_json::Map::new();
        ok(&mut m);
        m.remove(field);
        Value::Object(m).to_string()
    };
    let mut bad_check = li_id.to_owned();
    let last = if bad_check.ends_with('0') { "1" } else { "0" };
    bad_check.replace_range(17.., last);
    let full_width: String = li_id
        .chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c))
        .collect();
    let bodies: Vec<(String, &str)> = vec![
        ("{}".to_owned(), "id_number"),
        (without("name"), "name"),
        (without("to"), "to"),
        (with("id_number", 110105199003070017u64.into()), "id_number"),
        (with("from", 202401.into()), "from"),
        (with("name", Value::Null), "name"),
        (with("id_number", bad_check.clone().into()), "id_number"),
        (with("id_number", "1".repeat(10 * 1024).into()), "id_number"),
        (with("name", long.clone().into()), "name"),
        (with("name", "<script>alert(1)</script>".into()), "name"),
        (
            with("id_number", "<script>alert(1)</script>".into()),
            "id_number",
        ),
        (
            with("name", "李娜'; DROP TABLE si_query_log; --".into()),
            "name",
        ),
        (
            with("id_number", format!("{li_id}' OR '1'='1").into()),
            "id_number",
        ),
        (with("name", "李\u{0}娜".into()), "name"),
        (
            with("id_number", format!("{}\u{0}", &li_id[..17]).into()),
            "id_number",
        ),
        (with("name", "李娜😀".into()), "name"),
        (with("id_number", full_width.clone().into()), "id_number"),
        (with("from", "２０２４-０１".into()), "from"),
        (with("to", "2024-13".into()), "to"),
        (with("insurance_type", "car".into()), "insurance_type"),
        (with("extra", 1.into()), "extra"),
    ];
    for (body, field) in &bodies {
        let (status, v) = env.post(QUERIES, Some(&ctx()), body.clone()).await;
        assert_eq!(
            (status, v["code"].as_u64()),
            (400, Some(20000)),
            "{body:.200} → {v}"
        );
        assert_eq!(v["data"]["field"], *field, "{body:.200} → {v}");
        let text = v.to_string();
        assert!(!text.contains("script") && !text.contains("DROP"), "{text}");
    }
    // Not JSON, not declared JSON, too large: refused before any field is read.
    let (status, v) = env.post(QUERIES, Some(&ctx()), "{\"id_number\":").await;
    assert_eq!((status, v["code"].as_u64()), (400, Some(20000)), "{v}");
    let (status, v) = env
        .post(QUERIES, Some(&ctx()), "x".repeat(100 * 1024))
        .await;
    assert_eq!((status, v["code"].as_u64()), (400, Some(20000)), "{v}");
    let resp = env
        .http
        .post(format!("{}{QUERIES}", env.svc.url()))
        .header(tongban_crypto::caller_context::HEADER, ctx())
        .body(with("name", "李娜".into()))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status().as_u16(), 400);

    for (query, field) in [
        ("to=2024-03", "from"),
        ("from=2024-01", "to"),
        ("from=2024-1&to=2024-03", "from"),
        (
            "from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%94-01&to=2024-03",
            "from",
        ),
        ("from=%3Cscript%3E&to=2024-03", "from"),
        ("from=2024-01%00&to=2024-03", "from"),
        ("from=2024-01&to=2024-03'%20OR%201=1--", "to"),
        (
            "from=2024-01&to=2024-03&insurance_type=%F0%9F%98%80",
            "insurance_type",
        ),
        ("from=2024-01&to=2024-03&id_number=110105199003070017", "?"),
    ] {
        let (status, v) = env.get(&format!("{RECORDS}?{query}"), Some(&ctx())).await;
        assert_eq!(
            (status, v["code"].as_u64()),
            (400, Some(20000)),
            "{query} → {v}"
        );
        assert_eq!(v["data"]["field"], field, "{query} → {v}");
    }
    let (status, v) = env.get(&format!("{RECORDS}?from=%ZZ"), Some(&ctx())).await;
    assert_eq!((status, v["code"].as_u64()), (400, Some(20000)), "{v}");

    // The service's own codes for a period it does not allow.
    let (status, v) = env.query(&as_zhang(), li(), "2019-01", "2024-01").await;
    assert_eq!((status, v["code"].as_u64()), (400, Some(11001)), "{v}");
    let (status, v) = env
        .get(&format!("{RECORDS}?from=2024-02&to=2024-01"), Some(&ctx()))
        .await;
    assert_eq!((status, v["code"].as_u64()), (400, Some(11002)), "{v}");

    assert!(env.log_rows().await.is_empty(), "bad input reached the log");
    assert_eq!(
        env.sim_stats().await["requests"],
        0,
        "bad input reached the province"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_below_real_name_or_without_a_person_are_refused() {
    let env = start(Db::Sqlite, |_| {}).await;
    let path = format!("{RECORDS}?from=2024-01&to=2024-03");
    let cases = [
        // Bound to a session but no real-name person handed over.
        (
            As {
                person: None,
                ..as_zhang()
            },
            403,
            10008,
        ),
        // Signed in, real-name check not done.
        (
            As {
                lvl: "anonymous",
                person: None,
                ..as_zhang()
            },
            403,
            10008,
        ),
        // Not signed in.
        (
            As {
                lvl: "anonymous",
                sub: None,
                person: None,
                ..as_zhang()
            },
            401,
            10006,
        ),
    ];
    for (who, status, code) in cases {
        let ctx = env.context(&who);
        let (s, v) = env.get(&path, Some(&ctx)).await;
        assert_eq!(
            (s, v["code"].as_u64()),
            (status, Some(code)),
            "{who:?}: {v}"
        );
        let (s, v) = env
            .post(
                QUERIES,
                Some(&ctx),
                r#"{"id_number":"x","name":"y","from":"a","to":"b"}"#,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_u64()),
            (status, Some(code)),
            "{who:?}: {v}"
        );
    }
    let (_, v) = env
        .get(
            &path,
            Some(&env.context(&As {
                person: None,
                ..as_zhang()
            })),
        )
        .await;
    assert!(v["msg"].as_str().is_some_and(|m| m.contains("实名")), "{v}");
    assert!(env.log_rows().await.is_empty());
    assert_eq!(env.sim_stats().await["requests"], 0);
    env.finish().await;
}

/// `s` with the character at `i` (ASCII) replaced by another.
fn altered(s: &str, i: usize) -> String {
    let mut b = s.as_bytes().to_vec();
    b[i] = if b[i] == b'A' { b'B' } else { b'A' };
    String::from_utf8(b).expect("ASCII")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_around_the_gateway_are_refused() {
    let env = start(Db::Sqlite, |_| {}).await;
    let path = format!("{RECORDS}?from=2024-01&to=2024-03");
    let (s, v) = env.get(&path, None).await;
    assert_eq!((s, v["code"].as_u64()), (401, Some(10006)), "{v}");
    let (s, v) = env.post(QUERIES, None, "{}").await;
    assert_eq!((s, v["code"].as_u64()), (401, Some(10006)), "{v}");

    let good = env.context(&as_zhang());
    let other_key = tongban_crypto::caller_context::ContextKey::from_bytes(1, &[8; 32]);
    let forged = [
        // Tag altered (a character in its middle: the last one carries padding bits).
        altered(&good, good.len() - 10),
        // Another key (of the same version).
        support::seal_context(&other_key, &as_zhang()),
        // Another service's context.
        env.context(&As {
            svc: "hall-booking",
            ..as_zhang()
        }),
        // Expired.
        env.context(&As {
            exp_in: -1,
            ..as_zhang()
        }),
        // A key version the service does not hold.
        good.replacen("v1.1.", "v1.2.", 1),
        "garbage".to_owned(),
    ];
    for ctx in &forged {
        let (s, v) = env.get(&path, Some(ctx)).await;
        assert_eq!((s, v["code"].as_u64()), (403, Some(20001)), "{ctx}: {v}");
    }
    // A well-tagged context whose person was sealed under another key: refused like a bad
    // tag.
    let swapped = support::seal_context_with(&env.key, &other_key, &as_zhang());
    let (s, v) = env.get(&path, Some(&swapped)).await;
    assert_eq!((s, v["code"].as_u64()), (403, Some(20001)), "{v}");

    assert!(env.log_rows().await.is_empty());
    assert_eq!(env.sim_stats().await["requests"], 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_the_envelope() {
    let env = start(Db::Sqlite, |_| {}).await;
    let ctx = env.context(&as_zhang());
    let (s, v) = env.get("/api/v1/nothing-heres", Some(&ctx)).await;
    assert_eq!((s, v["code"].as_u64()), (404, Some(20404)), "{v}");
    let (s, v) = env.post(RECORDS, Some(&ctx), "{}").await;
    assert_eq!((s, v["code"].as_u64()), (405, Some(20002)), "{v}");
    env.finish().await;
}

/// The service's log lines (its own, the third-party client's, the store's) carry no name and
/// no whole ID number, even written without the platform's masking layer.
#[test]
fn logs_carry_no_personal_data() {
    let capture = tongban_log::Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so that every task of the service logs to this test's subscriber.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let env = start(Db::Sqlite, |c| c.province.retry.max_retries = 0).await;
        let ctx = env.context(&as_zhang());
        let (_, v) = env
            .get(&format!("{RECORDS}?from=2024-01&to=2024-03"), Some(&ctx))
            .await;
        assert_eq!(v["code"], 0, "{v}");
        let (_, v) = env.query(&as_zhang(), li(), "2024-01", "2024-03").await;
        assert_eq!(v["code"], 0, "{v}");
        let (_, v) = env
            .query(&as_zhang(), ("王五", li().1), "2024-01", "2024-03")
            .await;
        assert_eq!(v["code"], 30012, "{v}");
        env.sim.inject(tongban_province_sim::Fault::Malformed, 1);
        let (_, v) = env.query(&as_zhang(), li(), "2024-01", "2024-03").await;
        assert_eq!(v["code"], 30011, "{v}");
        env.finish().await;
    });
    let text = capture.text();
    assert!(text.contains("Contribution records queried."), "{text}");
    assert!(text.contains("Province query failed."), "{text}");
    for (name, id) in [zhang(), li(), ("王五", li().1)] {
        assert!(
            !text.contains(id) && !text.contains(&id[..17]),
            "an ID number in the log: {text}"
        );
        assert!(!text.contains(name), "a name in the log: {text}");
    }
}

#[test]
fn the_gateway_routes_are_valid_and_sensitive() {
    let routes = tongban_social_insurance::routes();
    assert_eq!(routes.len(), 2);
    for r in &routes {
        let spec: tongban_gateway::route::RouteSpec =
            serde_json::from_value(r.clone()).expect("a route spec");
        spec.validate().expect("a valid route");
        assert_eq!(r["auth"], "real_name");
        assert_eq!(r["caller_person"], true);
        assert_eq!(r["signed"], true);
        assert_eq!(r["upstream"]["service"], "social-insurance");
        assert!(
            r["limits"]
                .as_array()
                .is_some_and(|l| l.iter().any(|l| l["by"] == "user"))
        );
        assert!(r["breaker"].is_object());
        // The gateway waits longer than the service waits for the province (5 s).
        assert!(r["timeouts"]["per_try_ms"].as_u64() > Some(5_000));
    }
    assert_eq!(routes[0]["id"], "contribution-records");
    assert_eq!(routes[0]["methods"], serde_json::json!(["GET"]));
    assert_eq!(routes[1]["id"], "contribution-record-queries");
    assert_eq!(routes[1]["methods"], serde_json::json!(["POST"]));
    assert_eq!(routes[1]["envelope"], "optional");
    let renamed = tongban_social_insurance::routes_for("si-2");
    assert_eq!(renamed[0]["upstream"]["service"], "si-2");
}
