//! The storage suite on SQLite, the embedded default: a fresh file per test.

mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};

use tongban_store::{Backend, Store, StoreOptions};

async fn open() -> Store {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tongban-store-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/nested/tongban.db", dir.display());
    let store = Store::open(&StoreOptions::new(url))
        .await
        .expect("open sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    store
}

store_suite!(open);

#[tokio::test]
async fn reopening_applies_nothing_twice_and_keeps_data() {
    let dir = std::env::temp_dir().join(format!("tongban-store-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/t.db", dir.display());
    let s = Store::open(&StoreOptions::new(&url)).await.expect("open");
    s.kv()
        .put("a", "b", "c", tongban_store::Expect::Any)
        .await
        .expect("put");
    s.close().await;
    let s = Store::open(&StoreOptions::new(&url)).await.expect("reopen");
    assert_eq!(s.applied_migrations().await.expect("list"), vec![1, 2, 3]);
    assert_eq!(
        s.kv()
            .get("a", "b")
            .await
            .expect("get")
            .and_then(|e| e.value)
            .as_deref(),
        Some("c")
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(s.pool())
        .await
        .expect("pragma");
    assert_eq!(mode, "wal");
}
