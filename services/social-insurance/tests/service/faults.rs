//! Every failure the province can show reaches the citizen as its 300xx code, unchanged, with
//! the HTTP status of Appendix A, and is logged with that code.

use tongban_province_sim::Fault;
use tongban_social_insurance::Config;

use crate::support::{Db, Env, as_zhang, start};

const PATH: &str = "/api/v1/contribution-records?from=2024-01&to=2024-03";

/// Short timeouts so that a silent province fails fast, and no retries so that one injected
/// fault is one answer.
fn strict(c: &mut Config) {
    c.province.read_timeout_ms = 1_000;
    c.province.total_timeout_ms = 5_000;
    c.province.retry.max_retries = 0;
}

async fn ask(env: &Env) -> (u16, Option<u64>) {
    let (status, v) = env.get(PATH, Some(&env.context(&as_zhang()))).await;
    assert!(v["data"].is_null(), "a failure carries no records: {v}");
    (status, v["code"].as_u64())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fault_answers_its_code() {
    let env = start(Db::Sqlite, strict).await;
    let cases = [
        (Fault::Delay { ms: 3_000 }, 504, 30003),
        (Fault::Hang, 504, 30003),
        (Fault::Reset, 502, 30000),
        (Fault::Status { status: 500 }, 502, 30013),
        (Fault::Status { status: 404 }, 502, 30013),
        (Fault::Malformed, 502, 30011),
        (
            Fault::ErrorCode {
                code: 50001,
                msg: "系统繁忙".to_owned(),
            },
            502,
            30012,
        ),
        (
            Fault::ErrorCode {
                code: 40401,
                msg: "查无此人".to_owned(),
            },
            502,
            30012,
        ),
    ];
    for (fault, status, code) in &cases {
        env.sim.inject(fault.clone(), 1);
        assert_eq!(ask(&env).await, (*status, Some(*code)), "{fault:?}");
    }
    // After the faults, the province answers again.
    assert_eq!(ask_ok(&env).await, (200, Some(0)));
    let logged: Vec<String> = env
        .log_rows()
        .await
        .into_iter()
        .map(|r| r[9].clone())
        .collect();
    let mut expected: Vec<String> = cases.iter().map(|c| c.2.to_string()).collect();
    expected.push("0".to_owned());
    assert_eq!(logged, expected);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_within_the_total_runs_out_of_it() {
    // Silence shorter than the read timeout each time, but longer than the whole call.
    let env = start(Db::Sqlite, |c| {
        c.province.read_timeout_ms = 2_000;
        c.province.total_timeout_ms = 500;
        c.province.retry.max_retries = 0;
    })
    .await;
    env.sim.inject(Fault::Delay { ms: 1_500 }, 1);
    assert_eq!(ask(&env).await, (504, Some(30001)));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_port_answers_30000() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let env = start(Db::Sqlite, |c| {
        c.province.base_url = format!("http://{closed}")
    })
    .await;
    assert_eq!(ask(&env).await, (502, Some(30000)));
    assert_eq!(env.sim_stats().await["requests"], 0);
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_breaker_answers_30000_without_calling_the_province() {
    let env = start(Db::Sqlite, |c| {
        strict(c);
        c.province.breaker.min_requests = 3;
        c.province.breaker.open_ms = 60_000;
    })
    .await;
    env.sim.inject(Fault::Status { status: 503 }, 3);
    for _ in 0..3 {
        assert_eq!(ask(&env).await, (502, Some(30013)));
    }
    let before = env.sim_stats().await;
    assert_eq!(before["requests"], 3);
    for _ in 0..3 {
        assert_eq!(ask(&env).await, (502, Some(30000)));
    }
    let after = env.sim_stats().await;
    assert_eq!(
        after["requests"], 3,
        "the open breaker sent nothing: {after}"
    );
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_fault_is_retried_within_the_budget() {
    // The default retries: the query only reads, so a reset is tried again.
    let env = start(Db::Sqlite, |_| {}).await;
    env.sim.inject(Fault::Reset, 1);
    assert_eq!(ask_ok(&env).await, (200, Some(0)));
    assert_eq!(env.sim_stats().await["requests"], 2);
    env.finish().await;
}

async fn ask_ok(env: &Env) -> (u16, Option<u64>) {
    let (status, v) = env.get(PATH, Some(&env.context(&as_zhang()))).await;
    (status, v["code"].as_u64())
}
