//! The registry suite on the embedded backend.

mod registry_suite;

use std::sync::Arc;

use tongban_governance::registry::{EmbeddedRegistry, Registry, Timings};

async fn open(t: Timings) -> Arc<dyn Registry> {
    Arc::new(EmbeddedRegistry::open(t, None).await.expect("open"))
}

registry_suite!(open);
