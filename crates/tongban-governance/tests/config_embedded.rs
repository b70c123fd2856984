//! The config centre suite on the embedded backend (SQLite store), plus a restart check.

mod config_suite;

use std::sync::atomic::{AtomicUsize, Ordering};

use tongban_governance::config::{ConfigCentre, EmbeddedConfig, Expect};
use tongban_store::{Store, StoreOptions};

fn db_url() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tongban-config-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    format!("sqlite://{}/t.db", dir.display())
}

async fn open() -> EmbeddedConfig {
    let store = Store::open(&StoreOptions::new(db_url()))
        .await
        .expect("open");
    EmbeddedConfig::new(store)
}

config_suite!(open);

#[tokio::test]
async fn documents_survive_a_restart() {
    let url = db_url();
    let store = Store::open(&StoreOptions::new(&url)).await.expect("open");
    let c = EmbeddedConfig::new(store.clone());
    c.put("gateway-routes", "users", "{}", Expect::Any)
        .await
        .expect("put");
    store.close().await;
    let c = EmbeddedConfig::new(Store::open(&StoreOptions::new(&url)).await.expect("reopen"));
    let e = c
        .get("gateway-routes", "users")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(e.value.as_deref(), Some("{}"));
}
