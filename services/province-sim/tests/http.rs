//! The simulator through HTTP on loopback: its API's answers and codes, the control endpoints,
//! every fault kind (per request and queued), the key, and logs without personal data.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_core::clock::ManualClock;
use tongban_province_sim::{ProvinceSim, SimOptions, codes, persons, serve, serve_with};

const QUERIES: &str = "/api/v1/contribution-record-queries";

async fn start() -> ProvinceSim {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    serve(l).expect("serve")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Posts `body` to the API with an optional fault header; the status and the JSON answer.
async fn post(sim: &ProvinceSim, body: &Value, fault: Option<&str>) -> (StatusCode, Value) {
    let mut req = client().post(format!("{}{QUERIES}", sim.url())).json(body);
    if let Some(f) = fault {
        req = req.header("x-sim-fault", f);
    }
    let resp = req.send().await.expect("answer");
    let status = resp.status();
    (status, resp.json().await.expect("json"))
}

fn dev(i: usize) -> &'static tongban_province_sim::Person {
    &persons()[i]
}

fn query(id: &str, from: &str, to: &str) -> Value {
    json!({"id_number": id, "from": from, "to": to})
}

#[test]
fn the_test_accounts_are_the_identity_simulators() {
    let identity: Vec<(&str, &str)> = tongban_identity::ticket::simulator::DEV_ACCOUNTS
        .iter()
        .map(|a| (a.3, a.4))
        .collect();
    assert_eq!(
        identity,
        tongban_province_sim::population::DEV_ACCOUNTS.to_vec()
    );
}

#[tokio::test]
async fn a_query_answers_the_person_and_their_records() {
    let sim = start().await;
    let p = dev(0);
    let (status, v) = post(&sim, &query(&p.id_number, "2023-07", "2024-06"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["code"], 0, "{v}");
    let person = &v["data"]["person"];
    assert_eq!(person["name"], "张伟");
    assert_eq!(person["id_number"], p.id_number.as_str());
    assert!(
        person["insured_since"]
            .as_str()
            .is_some_and(|s| s.len() == 7)
    );
    assert_eq!(person["insurance_types"][0], "养老保险");
    let records = v["data"]["records"].as_array().expect("records");
    assert!(!records.is_empty());
    for r in records {
        let month = r["month"].as_str().expect("month");
        assert!(("2023-07"..="2024-06").contains(&month), "{month}");
        let t = r["insurance_type"].as_str().expect("type");
        assert!(["养老保险", "医疗保险", "失业保险", "工伤保险"].contains(&t));
        assert!(["已缴", "欠缴", "补缴"].contains(&r["status"].as_str().expect("status")));
        for f in ["base", "personal", "employer"] {
            assert!(r[f].is_u64(), "{f} is an integer amount in fen: {r}");
        }
        if t == "养老保险" {
            let base = r["base"].as_u64().expect("base");
            assert_eq!(r["personal"].as_u64(), Some((base * 800 + 5_000) / 10_000));
            assert_eq!(r["employer"].as_u64(), Some((base * 1600 + 5_000) / 10_000));
        }
        assert!(
            r["employer_name"]
                .as_str()
                .is_some_and(|n| n.ends_with("有限公司"))
        );
    }
    let (_, again) = post(&sim, &query(&p.id_number, "2023-07", "2024-06"), None).await;
    assert_eq!(again, v, "the same person has the same records every time");
    let with_name =
        json!({"id_number": p.id_number, "name": "张伟", "from": "2024-01", "to": "2024-01"});
    assert_eq!(post(&sim, &with_name, None).await.1["code"], 0);
    let lower = query(&p.id_number.to_ascii_lowercase(), "2024-01", "2024-01");
    assert_eq!(post(&sim, &lower, None).await.1["code"], 0);
}

#[tokio::test]
async fn records_stop_at_the_month_before_today() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    // 2024-03-15 in China.
    let clock = Arc::new(ManualClock::at_ms(1_710_460_800_000));
    let sim = serve_with(
        l,
        SimOptions {
            api_key: None,
            clock,
        },
    )
    .expect("serve");
    let (_, v) = post(&sim, &query(&dev(1).id_number, "2023-12", "2024-12"), None).await;
    let months: Vec<&str> = v["data"]["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["month"].as_str())
        .collect();
    assert_eq!(months.first(), Some(&"2023-12"));
    assert_eq!(months.last(), Some(&"2024-02"));
}

#[tokio::test]
async fn bad_input_answers_the_systems_own_codes_never_a_5xx() {
    let sim = start().await;
    let id = dev(2).id_number.clone();
    let unknown = tongban_core::idcard::with_check_char("11010520000101999").expect("id");
    assert!(tongban_province_sim::find(&unknown).is_none());
    let mut wrong_check = id.clone();
    wrong_check.replace_range(17.., if id.ends_with('0') { "1" } else { "0" });
    let cases = [
        (
            json!({"from": "2024-01", "to": "2024-02"}),
            codes::BAD_PARAMETER,
        ),
        (
            json!({"id_number": id, "to": "2024-02"}),
            codes::BAD_PARAMETER,
        ),
        (
            json!({"id_number": 110105, "from": "2024-01", "to": "2024-02"}),
            codes::BAD_PARAMETER,
        ),
        (
            json!({"id_number": id, "name": 7, "from": "2024-01", "to": "2024-02"}),
            codes::BAD_PARAMETER,
        ),
        (json!([1, 2]), codes::BAD_PARAMETER),
        (query(&id, "2024-1", "2024-02"), codes::BAD_PARAMETER),
        (query(&id, "2024-13", "2025-02"), codes::BAD_PARAMETER),
        (
            query(&wrong_check, "2024-01", "2024-02"),
            codes::BAD_ID_NUMBER,
        ),
        (
            query("11010519900307001", "2024-01", "2024-02"),
            codes::BAD_ID_NUMBER,
        ),
        (
            query("１１０１０５１９９００３０７００１７", "2024-01", "2024-02"),
            codes::BAD_ID_NUMBER,
        ),
        (query(&id, "2024-03", "2024-02"), codes::BAD_RANGE),
        (query(&id, "2010-01", "2020-01"), codes::BAD_RANGE),
        (query(&unknown, "2024-01", "2024-02"), codes::NO_SUCH_PERSON),
        (
            json!({"id_number": id, "name": "李四", "from": "2024-01", "to": "2024-02"}),
            codes::NAME_MISMATCH,
        ),
    ];
    for (body, code) in cases {
        let (status, v) = post(&sim, &body, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(v["code"], code, "{body}: {v}");
        assert!(v["msg"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(v.get("data").is_none(), "{v}");
    }
    let (_, v) = post(&sim, &json!({"id_number": id, "to": "2024-02"}), None).await;
    assert!(
        v["msg"].as_str().is_some_and(|m| m.contains("from")),
        "names the field: {v}"
    );
    let resp = client()
        .post(format!("{}{QUERIES}", sim.url()))
        .body("{not json")
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["code"], codes::BAD_PARAMETER);
    let resp = client()
        .get(format!("{}{QUERIES}", sim.url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["code"],
        codes::WRONG_METHOD
    );
    let resp = client()
        .post(format!("{}/api/v1/persons", sim.url()))
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.json::<Value>().await.expect("json")["code"],
        codes::NO_SUCH_API
    );
}

#[tokio::test]
async fn the_key_is_required_when_configured() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = serve_with(
        l,
        SimOptions {
            api_key: Some("province-key".to_owned()),
            ..SimOptions::default()
        },
    )
    .expect("serve");
    let url = format!("{}{QUERIES}", sim.url());
    let body = query(&dev(0).id_number, "2024-01", "2024-01");
    for auth in [None, Some("Bearer other"), Some("province-key")] {
        let mut req = client().post(&url).json(&body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.expect("answer");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            resp.json::<Value>().await.expect("json")["code"],
            codes::UNAUTHORIZED
        );
    }
    let resp = client()
        .post(&url)
        .bearer_auth("province-key")
        .json(&body)
        .send()
        .await
        .expect("answer");
    assert_eq!(resp.json::<Value>().await.expect("json")["code"], 0);
}

#[tokio::test]
async fn header_faults_answer_as_told() {
    let sim = start().await;
    let body = query(&dev(0).id_number, "2024-01", "2024-01");
    let url = format!("{}{QUERIES}", sim.url());
    let send = |fault: &'static str| {
        client()
            .post(&url)
            .header("x-sim-fault", fault)
            .json(&body)
            .send()
    };

    let t = Instant::now();
    let (status, v) = post(&sim, &body, Some("delay;ms=300")).await;
    assert!(t.elapsed() >= Duration::from_millis(300), "waited first");
    assert_eq!(
        (status, v["code"].as_u64()),
        (StatusCode::OK, Some(0)),
        "then answered"
    );

    let resp = send("status").await.expect("answer");
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/html")
    );
    assert!(resp.text().await.expect("body").contains("<h1>500"));
    assert_eq!(
        send("status;status=503").await.expect("answer").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    let resp = send("malformed").await.expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&text).is_err(), "{text}");

    let (status, v) = post(&sim, &body, Some("error_code")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!({"code": codes::BUSY, "msg": "系统繁忙"}));
    let (_, v) = post(
        &sim,
        &body,
        Some("error_code;code=-1;msg=%E5%81%9C%E6%9C%BA"),
    )
    .await;
    assert_eq!(v, json!({"code": -1, "msg": "停机"}));

    let hang = client()
        .post(&url)
        .header("x-sim-fault", "hang")
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(hang.expect_err("never answered").is_timeout());

    let resp = send("explode").await.expect("answer");
    assert_eq!(
        resp.status(),
        StatusCode::BAD_REQUEST,
        "a harness mistake, not a fault"
    );
    assert_eq!(resp.json::<Value>().await.expect("json")["code"], 20000);

    let stats = sim.stats();
    assert_eq!(stats.requests, 8);
    for (kind, n) in [
        ("delay", 1),
        ("status", 2),
        ("malformed", 1),
        ("error_code", 2),
        ("hang", 1),
    ] {
        assert_eq!(stats.faults.get(kind), Some(&n), "{kind}");
    }
    assert_eq!(
        stats.contribution_record_queries, 1,
        "only the delayed one reached the system"
    );
}

/// The reset is a real TCP reset: the client's read fails with ECONNRESET, no answer and no
/// orderly close first.
#[tokio::test]
async fn a_reset_fault_resets_the_connection() {
    let sim = start().await;
    let body = query(&dev(0).id_number, "2024-01", "2024-01").to_string();
    let mut s = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    let mut req = Vec::new();
    write!(
        req,
        "POST {QUERIES} HTTP/1.1\r\nHost: sim\r\nX-Sim-Fault: reset\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    s.write_all(&req).await.expect("send");
    let mut buf = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("the connection ends at once");
    let e = r.expect_err("reset, not closed");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    assert!(buf.is_empty(), "not a byte of an answer");
    assert_eq!(sim.stats().faults.get("reset"), Some(&1));
    // The simulator goes on serving other connections.
    let (_, v) = post(&sim, &query(&dev(0).id_number, "2024-01", "2024-01"), None).await;
    assert_eq!(v["code"], 0);
}

#[tokio::test]
async fn queued_faults_cover_the_next_requests() {
    let sim = start().await;
    let c = client();
    let faults = format!("{}/sim/faults", sim.url());
    let resp = c
        .post(&faults)
        .json(&json!({"kind": "status", "status": 502, "count": 2}))
        .send()
        .await
        .expect("answer");
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["code"], 0);
    assert_eq!(
        v["data"],
        json!([{"kind": "status", "status": 502, "remaining": 2}])
    );
    c.post(&faults)
        .json(&json!({"kind": "error_code", "code": 40401, "msg": "查无此人"}))
        .send()
        .await
        .expect("answer");
    let listed: Value = c
        .get(&faults)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));

    let url = format!("{}{QUERIES}", sim.url());
    let body = query(&dev(0).id_number, "2024-01", "2024-01");
    for _ in 0..2 {
        let r = c.post(&url).json(&body).send().await.expect("answer");
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }
    let (_, v) = post(&sim, &body, None).await;
    assert_eq!(v["code"], 40401);
    let (_, v) = post(&sim, &body, None).await;
    assert_eq!(v["code"], 0, "the queue is spent");

    // A header fault wins and leaves the queue alone.
    c.post(&faults)
        .json(&json!({"kind": "malformed", "count": 5}))
        .send()
        .await
        .expect("answer");
    let (_, v) = post(&sim, &body, Some("error_code")).await;
    assert_eq!(v["code"], codes::BUSY);
    let stats: Value = c
        .get(format!("{}/sim/stats", sim.url()))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["data"]["pending_faults"], 5);
    assert_eq!(
        stats["data"]["requests"], 5,
        "control requests are not counted"
    );
    let cleared: Value = c
        .delete(&faults)
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["data"]["cleared"], 5);
    assert_eq!(post(&sim, &body, None).await.1["code"], 0);

    for bad in [
        json!({"kind": "delay"}),
        json!({"kind": "teleport"}),
        json!({"kind": "hang", "count": 0}),
        json!({"kind": "reset", "ms": 5}),
        json!({"kind": "status", "status": 99}),
        json!({"kind": "error_code", "code": 0}),
        json!({"count": 3}),
        json!({"kind": "hang", "colour": "red"}),
    ] {
        let r = c.post(&faults).json(&bad).send().await.expect("answer");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            r.json::<Value>().await.expect("json")["code"],
            20000,
            "{bad}"
        );
    }
    assert_eq!(sim.stats().pending_faults, 0);
}

/// A writer the test reads back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_no_name_and_no_whole_id_number() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = start().await;
    let p = dev(1);
    let named =
        json!({"id_number": p.id_number, "name": p.name, "from": "2024-01", "to": "2024-01"});
    assert_eq!(post(&sim, &named, None).await.1["code"], 0);
    let wrong =
        json!({"id_number": p.id_number, "name": "某某某", "from": "2024-01", "to": "2024-01"});
    assert_eq!(
        post(&sim, &wrong, None).await.1["code"],
        codes::NAME_MISMATCH
    );
    let unknown = tongban_core::idcard::with_check_char("11010520000101999").expect("id");
    let q = query(&unknown, "2024-01", "2024-01");
    assert_eq!(post(&sim, &q, None).await.1["code"], codes::NO_SUCH_PERSON);
    drop(sim);
    let log = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    assert!(log.contains("Contribution records queried."), "{log}");
    assert!(log.contains(&format!(
        "{}***********{}",
        &p.id_number[..3],
        &p.id_number[14..]
    )));
    for secret in [
        p.id_number.as_str(),
        p.name.as_str(),
        "某某某",
        unknown.as_str(),
    ] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}
