//! The registry suite on NATS JetStream KV (127.0.0.1:4222, or `TONGBAN_TEST_NATS_URL`).

mod registry_suite;

use std::sync::Arc;

use tongban_governance::registry::{NatsRegistry, Registry, Timings};

async fn open(t: Timings) -> Arc<dyn Registry> {
    let url = std::env::var("TONGBAN_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    Arc::new(
        NatsRegistry::connect(&url, "tongban_registry_test", t)
            .await
            .expect("NATS JetStream must be running (bash scripts/services.sh)"),
    )
}

registry_suite!(open);
