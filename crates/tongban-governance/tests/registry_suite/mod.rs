//! The registry conformance suite: one body per behaviour, run by a thin file per backend.
//! Timings are short and real (both backends must honour them on the wall clock); each case
//! uses its own service names.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tongban_governance::registry::{Registration, Registry, RegistryError, Timings};

/// Declares one test per case; `$open` takes the timings and returns a registry.
#[macro_export]
macro_rules! registry_suite {
    ($open:path) => {
        registry_suite!(@cases $open;
            register_list_and_deregister, silence_makes_unhealthy_then_removes,
            protect_threshold_keeps_the_service_whole, changes_are_pushed_to_watchers,
            bad_input_is_refused);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                registry_suite::$case(|t| $open(t)).await;
            }
        )*
    };
}

pub(crate) fn timings() -> Timings {
    Timings {
        heartbeat_interval: Duration::from_millis(100),
        unhealthy_after: Duration::from_millis(300),
        remove_after: Duration::from_millis(600),
        ..Timings::default()
    }
}

fn service() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "svc-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn reg(service: &str, port: u16) -> Registration {
    Registration {
        service: service.to_owned(),
        address: format!("127.0.0.1:{port}"),
        weight: 100,
        metadata: [("zone".to_owned(), "a".to_owned())].into(),
        persistent: false,
    }
}

pub(crate) async fn register_list_and_deregister<F, Fut>(open: F)
where
    F: Fn(Timings) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Registry>>,
{
    let r = open(Timings::default()).await;
    let s = service();
    let a = r.register(reg(&s, 1001)).await.expect("a");
    let b = r.register(reg(&s, 1002)).await.expect("b");
    assert_ne!(a.id, b.id);
    assert_eq!(
        r.register(reg(&s, 1001)).await.expect("again").id,
        a.id,
        "same address, same id"
    );
    let all = r.instances(&s).await.expect("list");
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|i| i.healthy && i.metadata.get("zone").map(String::as_str) == Some("a"))
    );
    assert!(r.services().await.expect("services").contains(&s));
    r.heartbeat(&a.id).await.expect("beat");
    r.deregister(&a.id).await.expect("deregister");
    let left = r.healthy(&s).await.expect("healthy");
    assert_eq!(
        left.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![b.id.as_str()]
    );
    assert!(matches!(
        r.deregister(&a.id).await,
        Err(RegistryError::NotFound)
    ));
    r.deregister(&b.id).await.expect("deregister b");
    assert!(!r.services().await.expect("services").contains(&s));
}

pub(crate) async fn silence_makes_unhealthy_then_removes<F, Fut>(open: F)
where
    F: Fn(Timings) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Registry>>,
{
    let r = open(timings()).await;
    let s = service();
    let live = r.register(reg(&s, 2001)).await.expect("live");
    let silent = r.register(reg(&s, 2002)).await.expect("silent");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        r.heartbeat(&live.id).await.expect("beat");
    }
    let all = r.instances(&s).await.expect("list");
    assert_eq!(all.len(), 2, "unhealthy instances are still listed");
    assert!(all.iter().any(|i| i.id == silent.id && !i.healthy));
    assert!(all.iter().any(|i| i.id == live.id && i.healthy));
    assert_eq!(r.healthy(&s).await.expect("healthy").len(), 1);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        r.heartbeat(&live.id).await.expect("beat");
    }
    let all = r.instances(&s).await.expect("list");
    assert_eq!(
        all.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(),
        vec![live.id.as_str()]
    );
    assert!(
        matches!(r.heartbeat(&silent.id).await, Err(RegistryError::NotFound)),
        "register again"
    );
    r.deregister(&live.id).await.expect("cleanup");
}

pub(crate) async fn protect_threshold_keeps_the_service_whole<F, Fut>(open: F)
where
    F: Fn(Timings) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Registry>>,
{
    let r = open(Timings {
        protect_threshold: 0.6,
        ..timings()
    })
    .await;
    let s = service();
    let live = r.register(reg(&s, 3001)).await.expect("live");
    let silent = r.register(reg(&s, 3002)).await.expect("silent");
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        r.heartbeat(&live.id).await.expect("beat");
    }
    // Half are healthy, below 0.6: every instance is returned.
    assert_eq!(r.healthy(&s).await.expect("healthy").len(), 2);
    r.deregister(&live.id).await.expect("cleanup");
    r.deregister(&silent.id).await.expect("cleanup");
}

pub(crate) async fn changes_are_pushed_to_watchers<F, Fut>(open: F)
where
    F: Fn(Timings) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Registry>>,
{
    let r = open(Timings::default()).await;
    let s = service();
    let mut w = r.watch();
    let i = r.register(reg(&s, 4001)).await.expect("register");
    let e = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match w.recv().await {
                Ok(e) if e.service == s => return e,
                Ok(_) => {}
                Err(e) => panic!("watch ended: {e}"),
            }
        }
    })
    .await
    .expect("pushed within 1 s");
    assert_eq!(e.service, s);
    r.deregister(&i.id).await.expect("deregister");
    tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            if matches!(w.recv().await, Ok(e) if e.service == s) {
                return;
            }
        }
    })
    .await
    .expect("deregistration pushed within 1 s");
}

pub(crate) async fn bad_input_is_refused<F, Fut>(open: F)
where
    F: Fn(Timings) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn Registry>>,
{
    let r = open(Timings::default()).await;
    let mut bad = reg("Bad_Service", 1);
    assert!(matches!(
        r.register(bad.clone()).await,
        Err(RegistryError::Invalid(_))
    ));
    bad.service = "ok".into();
    bad.address = "nowhere".into();
    assert!(matches!(
        r.register(bad).await,
        Err(RegistryError::Invalid(_))
    ));
    assert!(matches!(
        r.heartbeat("0123456789abcdef").await,
        Err(RegistryError::NotFound)
    ));
}
