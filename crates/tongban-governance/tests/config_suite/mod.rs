//! The config centre conformance suite: one body per behaviour, run by a thin file per backend.
//! Each case gets a fresh namespace so backends may share one database or bucket.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tongban_governance::config::{ConfigCentre, ConfigError, Expect};

/// Declares one `#[tokio::test]` per case for the backend that `$open` opens.
#[macro_export]
macro_rules! config_suite {
    ($open:path) => {
        config_suite!(@cases $open;
            put_get_and_versions_grow, create_and_update_are_optimistic,
            delete_keeps_history, rollback_writes_an_old_value_anew,
            watch_pushes_to_every_subscriber_within_a_second, list_is_per_namespace,
            bad_names_are_refused);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let centre = $open().await;
                config_suite::$case(&centre).await;
            }
        )*
    };
}

fn fresh_ns() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "t{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub(crate) async fn put_get_and_versions_grow(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    assert_eq!(c.get(&ns, "routes.portal").await.expect("get"), None);
    let mut last = 0;
    for i in 1..=3 {
        let e = c
            .put(&ns, "routes.portal", &format!("v{i}"), Expect::Any)
            .await
            .expect("put");
        assert!(e.version > last, "versions grow");
        last = e.version;
    }
    let got = c
        .get(&ns, "routes.portal")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.value.as_deref(), Some("v3"));
    assert_eq!(got.version, last);
    let h = c.history(&ns, "routes.portal").await.expect("history");
    let values: Vec<_> = h.iter().map(|e| e.value.as_deref()).collect();
    assert_eq!(values, vec![Some("v1"), Some("v2"), Some("v3")]);
    assert!(h.windows(2).all(|w| w[0].version < w[1].version));
    assert!(c.history(&ns, "nothing").await.expect("history").is_empty());
}

pub(crate) async fn create_and_update_are_optimistic(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    let first = c
        .put(&ns, "limit", "10", Expect::Absent)
        .await
        .expect("create");
    assert!(matches!(
        c.put(&ns, "limit", "11", Expect::Absent).await,
        Err(ConfigError::Conflict)
    ));
    let second = c
        .put(&ns, "limit", "12", Expect::Version(first.version))
        .await
        .expect("update");
    assert!(matches!(
        c.put(&ns, "limit", "13", Expect::Version(first.version))
            .await,
        Err(ConfigError::Conflict)
    ));
    let now = c.get(&ns, "limit").await.expect("get").expect("present");
    assert_eq!(now.value.as_deref(), Some("12"));
    assert_eq!(now.version, second.version);
}

pub(crate) async fn delete_keeps_history(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    c.put(&ns, "breaker", "a", Expect::Any).await.expect("put");
    c.delete(&ns, "breaker").await.expect("delete");
    assert_eq!(c.get(&ns, "breaker").await.expect("get"), None);
    assert!(matches!(
        c.delete(&ns, "breaker").await,
        Err(ConfigError::NotFound)
    ));
    let h = c.history(&ns, "breaker").await.expect("history");
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].value, None, "deletion recorded");
    // Created again after a deletion.
    c.put(&ns, "breaker", "b", Expect::Absent)
        .await
        .expect("recreate");
    assert_eq!(c.history(&ns, "breaker").await.expect("history").len(), 3);
}

pub(crate) async fn rollback_writes_an_old_value_anew(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    let v1 = c.put(&ns, "route", "old", Expect::Any).await.expect("put");
    let v2 = c.put(&ns, "route", "new", Expect::Any).await.expect("put");
    let back = c
        .rollback(&ns, "route", v1.version)
        .await
        .expect("rollback");
    assert!(back.version > v2.version);
    assert_eq!(back.value.as_deref(), Some("old"));
    assert_eq!(
        c.get(&ns, "route")
            .await
            .expect("get")
            .and_then(|e| e.value)
            .as_deref(),
        Some("old")
    );
    assert!(matches!(
        c.rollback(&ns, "route", back.version + 100).await,
        Err(ConfigError::NotFound)
    ));
}

pub(crate) async fn watch_pushes_to_every_subscriber_within_a_second(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    let other = fresh_ns();
    let mut a = c.watch(&ns).await.expect("watch a");
    let mut b = c.watch(&ns).await.expect("watch b");
    c.put(&other, "x", "elsewhere", Expect::Any)
        .await
        .expect("put other");
    c.put(&ns, "limit", "100", Expect::Any).await.expect("put");
    c.delete(&ns, "limit").await.expect("delete");
    for w in [&mut a, &mut b] {
        let e = tokio::time::timeout(Duration::from_secs(1), w.next())
            .await
            .expect("pushed within 1 s")
            .expect("open");
        assert_eq!(
            (e.namespace.as_str(), e.key.as_str()),
            (ns.as_str(), "limit")
        );
        assert_eq!(e.value.as_deref(), Some("100"));
        let d = tokio::time::timeout(Duration::from_secs(1), w.next())
            .await
            .expect("pushed within 1 s")
            .expect("open");
        assert_eq!(d.value, None, "deletions are pushed too");
    }
}

pub(crate) async fn list_is_per_namespace(c: &dyn ConfigCentre) {
    let ns = fresh_ns();
    let other = fresh_ns();
    for k in ["b", "a", "c/d"] {
        c.put(&ns, k, k, Expect::Any).await.expect("put");
    }
    c.put(&other, "z", "z", Expect::Any).await.expect("put");
    c.put(&ns, "gone", "x", Expect::Any).await.expect("put");
    c.delete(&ns, "gone").await.expect("delete");
    let keys: Vec<String> = c
        .list(&ns)
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["a", "b", "c/d"]);
}

pub(crate) async fn bad_names_are_refused(c: &dyn ConfigCentre) {
    for (ns, key) in [
        ("Bad", "k"),
        ("ns", ""),
        ("ns", ".x"),
        ("ns", "a b"),
        ("a.b", "k"),
        ("ns", "a..b"),
    ] {
        assert!(
            matches!(
                c.put(ns, key, "v", Expect::Any).await,
                Err(ConfigError::Invalid(_))
            ),
            "{ns:?} {key:?}"
        );
    }
}
