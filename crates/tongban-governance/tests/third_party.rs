//! The third-party client against the province simulator (and a few raw sockets) on loopback:
//! each failure answers its code, retries happen only where allowed and stop at the budget,
//! and the breaker stops traffic, probes and closes. Requests are counted at the simulator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tongban_core::Code;
use tongban_core::clock::ManualClock;
use tongban_governance::breaker::{BreakerRule, State, Trip};
use tongban_governance::retry::RetryRule;
use tongban_governance::third_party::{
    BearerKey, Reason, ThirdPartyClient, ThirdPartyConfig, ThirdPartyError,
};
use tongban_province_sim::{Fault, ProvinceSim, SimOptions, persons, serve, serve_with};

const QUERIES: &str = "/api/v1/contribution-record-queries";

#[derive(Debug, Deserialize)]
struct Contributions {
    person: Person,
    records: Vec<Record>,
}

#[derive(Debug, Deserialize)]
struct Person {
    name: String,
    id_number: String,
}

#[derive(Debug, Deserialize)]
struct Record {
    month: String,
    base: u64,
}

async fn sim() -> ProvinceSim {
    serve(bind().await).expect("serve")
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind")
}

/// No retries and a breaker that never opens, unless a test says otherwise.
fn config(base_url: &str) -> ThirdPartyConfig {
    let mut c = ThirdPartyConfig::new("province", base_url);
    c.connect_timeout_ms = 1_000;
    c.read_timeout_ms = 2_000;
    c.total_timeout_ms = 5_000;
    c.retry.max_retries = 0;
    c.breaker = BreakerRule {
        trip: Trip::ErrorCount,
        threshold: 1_000.0,
        slow_ms: 60_000,
        min_requests: 1,
        stat_interval_ms: 10_000,
        open_ms: 5_000,
    };
    c
}

fn client(c: ThirdPartyConfig) -> ThirdPartyClient {
    ThirdPartyClient::new(c).expect("client")
}

fn body(i: usize) -> serde_json::Value {
    serde_json::json!({"id_number": persons()[i].id_number, "from": "2024-01", "to": "2024-03"})
}

/// The contribution query, idempotent (it only reads), with an optional fault header.
async fn query(
    c: &ThirdPartyClient,
    fault: Option<&'static str>,
) -> Result<Contributions, ThirdPartyError> {
    let mut call = c
        .request(Method::POST, QUERIES)
        .json(&body(0))
        .idempotent(true);
    if let Some(f) = fault {
        call = call.header(
            HeaderName::from_static("x-sim-fault"),
            HeaderValue::from_static(f),
        );
    }
    call.send().await
}

fn code<T: std::fmt::Debug>(r: Result<T, ThirdPartyError>) -> u32 {
    r.expect_err("a failure").code().0
}

#[tokio::test]
async fn a_query_returns_typed_data_and_sends_the_key() {
    let sim = serve_with(
        bind().await,
        SimOptions {
            api_key: Some("province-key".to_owned()),
            ..SimOptions::default()
        },
    )
    .expect("serve");
    let mut cfg = config(&sim.url());
    cfg.bearer_key = Some(BearerKey::new("province-key"));
    let c = client(cfg.clone());
    let data = query(&c, None).await.expect("records");
    assert_eq!(data.person.name, persons()[0].name);
    assert_eq!(data.person.id_number, persons()[0].id_number);
    assert_eq!(data.records.len(), 12, "three months of four insurances");
    assert!(
        data.records
            .iter()
            .all(|r| r.month.starts_with("2024-0") && r.base > 0)
    );
    let shown = format!("{c:?}");
    assert!(!shown.contains("province-key"), "{shown}");

    cfg.bearer_key = Some(BearerKey::new("wrong-key"));
    let e = query(&client(cfg), None).await.expect_err("refused");
    assert_eq!(e.reason(), &Reason::Status(401));
    assert_eq!(e.code(), Code(30013));
    assert!(!e.to_string().contains("wrong-key"));
}

#[tokio::test]
async fn each_answer_of_the_system_maps_to_its_code() {
    let sim = sim().await;
    let c = client(config(&sim.url()));

    let e = query(&c, Some("status")).await.expect_err("500");
    assert_eq!((e.code(), e.reason()), (Code(30013), &Reason::Status(500)));
    assert!(!e.to_string().contains("html"), "no body in the text: {e}");

    let e = query(&c, Some("malformed")).await.expect_err("cut JSON");
    assert_eq!(e.code(), Code(30011));
    assert!(
        !e.to_string().contains("person"),
        "no body in the text: {e}"
    );

    let e = query(&c, Some("error_code")).await.expect_err("busy");
    assert_eq!(e.code(), Code(30012));
    assert_eq!(e.third_party_code(), Some(50001));
    assert!(
        matches!(e.reason(), Reason::ErrorCode { msg: Some(m), .. } if m == "系统繁忙"),
        "the system's message is kept for the log: {e:?}"
    );
    assert_eq!(
        tongban_core::ApiError::from(e).message(),
        Code(30012).default_msg(),
        "citizens see the standard message"
    );

    // The system's own refusals: unknown person, invalid ID number.
    let unknown = tongban_core::idcard::with_check_char("11010520000101999").expect("id");
    let unknown = serde_json::json!({"id_number": unknown, "from": "2024-01", "to": "2024-01"});
    let e = c
        .post::<_, Contributions>(QUERIES, &unknown)
        .await
        .expect_err("unknown");
    assert_eq!((e.code(), e.third_party_code()), (Code(30012), Some(40401)));
    let bad_id =
        serde_json::json!({"id_number": "110105199003070010", "from": "2024-01", "to": "2024-01"});
    let e = c
        .post::<_, Contributions>(QUERIES, &bad_id)
        .await
        .expect_err("bad check character");
    assert_eq!((e.code(), e.third_party_code()), (Code(30012), Some(40002)));

    // Code 0 with data of another shape.
    let e = c
        .post::<_, Vec<u32>>(QUERIES, &body(0))
        .await
        .expect_err("not a list");
    assert_eq!(
        e.reason(),
        &Reason::BadData("data not of the expected type")
    );

    // A path the system does not have.
    assert_eq!(code(c.get::<()>("/api/v1/persons").await), 30013);
    assert_eq!(
        c.request(Method::GET, "no-slash")
            .send::<()>()
            .await
            .expect_err("refused")
            .reason(),
        &Reason::Invalid("path")
    );

    let e = query(&c, Some("reset")).await.expect_err("reset");
    assert_eq!((e.code(), e.reason()), (Code(30000), &Reason::Broken));

    let data = query(&c, Some("delay;ms=300"))
        .await
        .expect("a short delay is fine");
    assert!(!data.records.is_empty());
}

#[tokio::test]
async fn silence_is_a_read_timeout_and_the_deadline_a_total_timeout() {
    let sim = sim().await;
    let mut cfg = config(&sim.url());
    cfg.read_timeout_ms = 200;
    let c = client(cfg.clone());
    let t = Instant::now();
    assert_eq!(code(query(&c, Some("hang")).await), 30003);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the read timeout fired"
    );
    assert_eq!(code(query(&c, Some("delay;ms=1500")).await), 30003);

    cfg.read_timeout_ms = 5_000;
    cfg.total_timeout_ms = 300;
    let c = client(cfg);
    let t = Instant::now();
    assert_eq!(code(query(&c, Some("hang")).await), 30001);
    assert!(
        t.elapsed() < Duration::from_secs(4),
        "the total timeout fired"
    );
}

/// A system that sends its head and part of the body, then nothing.
#[tokio::test]
async fn a_stall_within_the_answer_is_a_read_timeout() {
    let l = bind().await;
    let addr = l.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"code\":0,")
                    .await;
                tokio::time::sleep(Duration::from_secs(10)).await;
            });
        }
    });
    let mut cfg = config(&format!("http://{addr}"));
    cfg.read_timeout_ms = 200;
    let t = Instant::now();
    assert_eq!(code(client(cfg).get::<()>("/").await), 30003);
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_refused_connection_is_30000() {
    let addr = bind().await.local_addr().expect("addr");
    // The listener is gone: connections to its port are refused.
    let e = client(config(&format!("http://{addr}")))
        .get::<()>("/")
        .await
        .expect_err("refused");
    assert_eq!((e.code(), e.reason()), (Code(30000), &Reason::Connect));
}

/// A listener whose accept queue is full: Linux drops further SYNs, so a connect hangs.
async fn full_listener() -> (TcpListener, Vec<TcpStream>) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let l = socket.listen(0).expect("listen");
    let addr = l.local_addr().expect("addr");
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            _ => break,
        }
    }
    (l, fillers)
}

#[tokio::test]
async fn a_connect_that_does_not_complete_is_a_connect_timeout() {
    let (l, _fillers) = full_listener().await;
    let mut cfg = config(&format!("http://{}", l.local_addr().expect("addr")));
    cfg.connect_timeout_ms = 200;
    let t = Instant::now();
    let e = client(cfg).get::<()>("/").await.expect_err("no connection");
    assert_eq!(
        (e.code(), e.reason()),
        (Code(30002), &Reason::ConnectTimeout)
    );
    assert!(t.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn a_non_routable_address_is_a_connect_timeout() {
    let mut cfg = config("http://10.255.255.1:81");
    cfg.connect_timeout_ms = 300;
    let t = Instant::now();
    let r = client(cfg).get::<()>("/").await;
    let took = t.elapsed();
    match r.as_ref().map_err(ThirdPartyError::reason) {
        Err(Reason::Connect) if took < Duration::from_millis(300) => {
            eprintln!(
                "skipped: this machine refuses 10.255.255.1 at once (no route) instead of \
                 letting the connect hang; a_connect_that_does_not_complete_is_a_connect_timeout \
                 covers 30002"
            );
        }
        Err(Reason::Connect | Reason::ConnectTimeout) => {}
        other => {
            eprintln!(
                "skipped: something on this network answers 10.255.255.1 ({other:?}), so no \
                 connect hangs; a_connect_that_does_not_complete_is_a_connect_timeout covers 30002"
            );
            return;
        }
    }
    if took >= Duration::from_millis(300) {
        assert_eq!(code(r), 30002);
        assert!(took < Duration::from_secs(4));
    }
}

/// The read timeout starts once connected: a connect slower than the read timeout (but within
/// the connect timeout) is not reported as a read timeout.
#[tokio::test]
async fn a_slow_connect_does_not_use_up_the_read_timeout() {
    let (l, fillers) = full_listener().await;
    let addr = l.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        // Free the queue after a while; the client's SYN is retransmitted and then accepted.
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(fillers);
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                if matches!(s.read(&mut buf).await, Ok(n) if n > 0) {
                    let body = br#"{"code":0,"data":{"ok":true}}"#;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes()).await;
                    let _ = s.write_all(body).await;
                }
            });
        }
    });
    let mut cfg = config(&format!("http://{addr}"));
    cfg.connect_timeout_ms = 5_000;
    cfg.read_timeout_ms = 500;
    cfg.total_timeout_ms = 8_000;
    let t = Instant::now();
    let r = client(cfg).get::<serde_json::Value>("/").await;
    let took = t.elapsed();
    server.abort();
    if took < Duration::from_millis(500) {
        eprintln!("skipped: the connect was not delayed on this machine ({took:?})");
        return;
    }
    assert_eq!(r.expect("answered once connected")["ok"], true);
}

#[tokio::test]
async fn retries_only_what_may_be_repeated() {
    let sim = sim().await;
    let mut cfg = config(&sim.url());
    cfg.retry = RetryRule {
        max_retries: 2,
        non_idempotent: false,
        budget_ratio: 1.0,
        min_retries_per_sec: 100,
    };
    let c = client(cfg);
    let requests = || sim.stats().requests;

    // A plain POST that failed with a 500 may have acted: not repeated.
    sim.inject(Fault::Status { status: 500 }, 3);
    let e = c
        .post::<_, Contributions>(QUERIES, &body(0))
        .await
        .expect_err("500");
    assert_eq!(e.code(), Code(30013));
    assert_eq!(requests(), 1);
    sim.clear_faults();

    // Declared idempotent: repeated, and the third attempt succeeds.
    sim.inject(Fault::Status { status: 503 }, 2);
    query(&c, None).await.expect("third time lucky");
    assert_eq!(requests(), 4);

    // At most max_retries.
    sim.inject(Fault::Reset, 5);
    assert_eq!(code(query(&c, None).await), 30000);
    assert_eq!(requests(), 7);
    sim.clear_faults();

    // A reset after sending is not repeated for a plain POST.
    sim.inject(Fault::Reset, 1);
    let r = c.post::<_, Contributions>(QUERIES, &body(0)).await;
    assert_eq!(code(r), 30000);
    assert_eq!(requests(), 8);

    // Deliberate answers are final, idempotent or not.
    sim.inject(Fault::Malformed, 3);
    assert_eq!(code(query(&c, None).await), 30011);
    assert_eq!(requests(), 9);
    sim.clear_faults();
    sim.inject(
        Fault::ErrorCode {
            code: 50001,
            msg: "系统繁忙".to_owned(),
        },
        3,
    );
    assert_eq!(code(query(&c, None).await), 30012);
    assert_eq!(requests(), 10);
}

#[tokio::test]
async fn retries_stop_when_the_budget_is_spent() {
    let sim = sim().await;
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let mut cfg = config(&sim.url());
    cfg.retry = RetryRule {
        max_retries: 3,
        non_idempotent: false,
        budget_ratio: 0.0,
        min_retries_per_sec: 1,
    };
    let c = ThirdPartyClient::with_clock(cfg, clock.clone()).expect("client");
    sim.inject(Fault::Status { status: 500 }, 100);
    // One retry a second, and the clock stands still: the first call takes it…
    assert_eq!(code(query(&c, None).await), 30013);
    assert_eq!(sim.stats().requests, 2);
    // …and the next gets none.
    assert_eq!(code(query(&c, None).await), 30013);
    assert_eq!(sim.stats().requests, 3);
    clock.advance(Duration::from_secs(1));
    assert_eq!(code(query(&c, None).await), 30013);
    assert_eq!(sim.stats().requests, 5, "a second later, one more");
}

#[tokio::test]
async fn the_breaker_stops_traffic_then_probes_and_closes() {
    let sim = sim().await;
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let mut cfg = config(&sim.url());
    cfg.breaker = BreakerRule {
        trip: Trip::ErrorCount,
        threshold: 2.0,
        slow_ms: 60_000,
        min_requests: 1,
        stat_interval_ms: 10_000,
        open_ms: 5_000,
    };
    let c = ThirdPartyClient::with_clock(cfg, clock.clone()).expect("client");
    let requests = || sim.stats().requests;

    // The system's own refusals say nothing of its health.
    sim.inject(
        Fault::ErrorCode {
            code: 40401,
            msg: "查无此人".to_owned(),
        },
        5,
    );
    for _ in 0..5 {
        assert_eq!(code(query(&c, None).await), 30012);
    }
    assert_eq!(c.breaker_state(), State::Closed);

    sim.inject(Fault::Status { status: 500 }, 100);
    for _ in 0..3 {
        assert_eq!(code(query(&c, None).await), 30013);
    }
    assert_eq!(c.breaker_state(), State::Open, "more than 2 failures");
    assert_eq!(requests(), 8);
    for _ in 0..10 {
        let e = query(&c, None).await.expect_err("refused");
        assert_eq!((e.code(), e.reason()), (Code(30000), &Reason::BreakerOpen));
    }
    assert_eq!(requests(), 8, "refused without touching the network");

    // After open_ms one probe goes; it fails, and the breaker opens again.
    clock.advance(Duration::from_millis(5_000));
    assert_eq!(c.breaker_state(), State::HalfOpen);
    assert_eq!(code(query(&c, None).await), 30013);
    assert_eq!(requests(), 9);
    assert_eq!(c.breaker_state(), State::Open);
    assert_eq!(code(query(&c, None).await), 30000);
    assert_eq!(requests(), 9);

    // The system recovers: the next probe succeeds and closes the breaker.
    sim.clear_faults();
    clock.advance(Duration::from_millis(5_000));
    query(&c, None).await.expect("probe");
    assert_eq!(c.breaker_state(), State::Closed);
    query(&c, None).await.expect("closed");
    assert_eq!(requests(), 11);
}

#[tokio::test]
async fn an_abandoned_probe_reopens_the_breaker() {
    let sim = sim().await;
    let clock = Arc::new(ManualClock::new(Duration::from_secs(1_000_000)));
    let mut cfg = config(&sim.url());
    cfg.breaker.threshold = 0.0;
    let c = ThirdPartyClient::with_clock(cfg, clock.clone()).expect("client");
    assert_eq!(code(query(&c, Some("status")).await), 30013);
    assert_eq!(c.breaker_state(), State::Open);
    clock.advance(Duration::from_secs(5));
    // The probe hangs and its caller gives up.
    let gave_up = tokio::time::timeout(Duration::from_millis(200), query(&c, Some("hang"))).await;
    assert!(gave_up.is_err());
    assert_eq!(c.breaker_state(), State::Open, "not half-open for ever");
}
