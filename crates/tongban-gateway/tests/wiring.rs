//! The admin API tables the binary mounts on its admin listener (the gateway's routes and the
//! service registry's), as they are built: every path follows the URL rules of 6.2.3, and the
//! two tables share no path. How the binary merges and serves them is `tongban`'s
//! `tests/platform.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use tongban_core::clock::SystemClock;
use tongban_gateway::auth::AnonymousOnly;
use tongban_gateway::limit::LocalLimiter;
use tongban_gateway::route::url_rules;
use tongban_gateway::{Gateway, GatewayOptions, admin};
use tongban_governance::config::{ConfigCentre, EmbeddedConfig};
use tongban_governance::registry::{self, EmbeddedRegistry, Registry, Timings};
use tongban_store::{Store, StoreOptions};

#[tokio::test]
async fn admin_and_registry_paths_follow_the_url_rules_and_do_not_collide() {
    let dir = std::env::temp_dir().join(format!("tongban-wiring-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&StoreOptions::new(format!(
        "sqlite://{}/t.db",
        dir.display()
    )))
    .await
    .expect("store");
    let config: Arc<dyn ConfigCentre> = Arc::new(EmbeddedConfig::new(store.clone()));
    let reg: Arc<dyn Registry> = Arc::new(
        EmbeddedRegistry::open(Timings::default(), Some(store))
            .await
            .expect("registry"),
    );
    let gw = Gateway::new(GatewayOptions::new(
        Arc::new(SystemClock),
        Arc::new(LocalLimiter::default()),
        Arc::new(AnonymousOnly),
    ));
    let gateway: BTreeSet<&str> = admin::router::<()>(gw, config)
        .paths()
        .iter()
        .copied()
        .collect();
    let registry: BTreeSet<&str> = registry::http::router::<()>(reg)
        .paths()
        .iter()
        .copied()
        .collect();

    // The tables are the real ones, not empty or cut short.
    for (table, paths, known) in [
        ("gateway", &gateway, "/api/v1/routes/{id}/rollbacks"),
        ("registry", &registry, "/api/v1/instances/{id}/heartbeats"),
    ] {
        assert!(paths.contains(known), "{table}: {paths:?}");
    }
    let broken: Vec<_> = gateway
        .iter()
        .chain(&registry)
        .filter_map(|p| url_rules::check(p).err().map(|e| (*p, e)))
        .collect();
    assert!(broken.is_empty(), "{broken:?}");
    let shared: Vec<_> = gateway.intersection(&registry).collect();
    assert!(shared.is_empty(), "in both tables: {shared:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
