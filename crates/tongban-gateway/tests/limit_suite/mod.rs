//! The rate limiter conformance suite: one body per behaviour, run by a thin file per backend.
//! Each case gets its own keys; time is passed in, so results are exact.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tongban_gateway::limit::{Decision, Params, RateLimiter};

/// Declares one test per case; `$open` returns the limiter instances that share one limit
/// (three connections for Redis, one shared limiter in process).
#[macro_export]
macro_rules! limit_suite {
    ($open:path) => {
        limit_suite!(@cases $open;
            rate_is_within_five_percent_over_ten_seconds, burst_then_retry_after,
            queueing_waits_its_turn, keys_are_independent, warm_up_ramps_from_a_third);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let limiters = $open().await;
                limit_suite::$case(&limiters).await;
            }
        )*
    };
}

fn fresh_key() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "suite:{}:{nanos}:{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn start() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock")
}

async fn allowed(l: &Arc<dyn RateLimiter>, key: &str, p: &Params, now: Duration) -> bool {
    matches!(
        l.check(key, p, now).await.expect("limiter answers"),
        Decision::Allow { .. }
    )
}

pub(crate) async fn rate_is_within_five_percent_over_ten_seconds(ls: &[Arc<dyn RateLimiter>]) {
    let p = Params::new(100, Duration::from_secs(1), 10, Duration::ZERO);
    let key = fresh_key();
    let t0 = start();
    let mut admitted = 0u32;
    // Offered: 500 requests a second for 10 s, spread over the instances in turn.
    for i in 0..5000u32 {
        let now = t0 + Duration::from_millis(u64::from(i) * 2);
        if allowed(&ls[i as usize % ls.len()], &key, &p, now).await {
            admitted += 1;
        }
    }
    // 100/s for 10 s plus the initial burst of 10.
    let expected = 1000.0 + 10.0;
    let err = (f64::from(admitted) - expected).abs() / expected;
    assert!(
        err <= 0.05,
        "admitted {admitted}, expected about {expected}"
    );
}

pub(crate) async fn burst_then_retry_after(ls: &[Arc<dyn RateLimiter>]) {
    let p = Params::new(10, Duration::from_secs(1), 3, Duration::ZERO);
    let key = fresh_key();
    let t0 = start();
    for i in 0..3 {
        assert!(
            allowed(&ls[i % ls.len()], &key, &p, t0).await,
            "burst request {i}"
        );
    }
    assert_eq!(
        ls[0].check(&key, &p, t0).await.expect("answer"),
        Decision::Deny {
            retry_after: Duration::from_millis(100)
        }
    );
    assert!(!allowed(&ls[ls.len() - 1], &key, &p, t0 + Duration::from_millis(99)).await);
    assert!(allowed(&ls[ls.len() - 1], &key, &p, t0 + Duration::from_millis(100)).await);
}

pub(crate) async fn queueing_waits_its_turn(ls: &[Arc<dyn RateLimiter>]) {
    let p = Params::new(10, Duration::from_secs(1), 1, Duration::from_millis(250));
    let key = fresh_key();
    let t0 = start();
    let mut verdicts = Vec::new();
    for i in 0..4 {
        verdicts.push(ls[i % ls.len()].check(&key, &p, t0).await.expect("answer"));
    }
    assert_eq!(
        verdicts,
        vec![
            Decision::Allow {
                wait: Duration::ZERO
            },
            Decision::Allow {
                wait: Duration::from_millis(100)
            },
            Decision::Allow {
                wait: Duration::from_millis(200)
            },
            Decision::Deny {
                retry_after: Duration::from_millis(300)
            },
        ]
    );
}

pub(crate) async fn keys_are_independent(ls: &[Arc<dyn RateLimiter>]) {
    let p = Params::new(1, Duration::from_secs(60), 1, Duration::ZERO);
    let (a, b) = (fresh_key(), fresh_key());
    let t0 = start();
    assert!(allowed(&ls[0], &a, &p, t0).await);
    assert!(!allowed(&ls[0], &a, &p, t0).await);
    assert!(
        allowed(&ls[0], &b, &p, t0).await,
        "another key has its own budget"
    );
    // Braces would change a Redis hash tag; they must not merge keys.
    assert!(allowed(&ls[0], &format!("{a}{{x}}"), &p, t0).await);
}

pub(crate) async fn warm_up_ramps_from_a_third(ls: &[Arc<dyn RateLimiter>]) {
    let p = Params::new(100, Duration::from_secs(1), 1, Duration::ZERO)
        .with_warm_up(Duration::from_secs(2), 3);
    let key = fresh_key();
    let t0 = start();
    let mut per_second = [0u32; 5];
    // Offered: 1000 requests a second for 5 s, from cold.
    for ms in 0..5000u32 {
        let now = t0 + Duration::from_millis(u64::from(ms));
        if allowed(&ls[ms as usize % ls.len()], &key, &p, now).await {
            per_second[(ms / 1000) as usize] += 1;
        }
    }
    assert!(
        (34..=60).contains(&per_second[0]),
        "cold start near a third: {per_second:?}"
    );
    assert!(per_second[0] < per_second[1], "{per_second:?}");
    for s in &per_second[3..] {
        assert!(
            (95..=105).contains(s),
            "warm: within 5 % of 100: {per_second:?}"
        );
    }
}
