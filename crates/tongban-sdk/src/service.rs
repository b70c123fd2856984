//! An instance kept in the registry while the service runs: registered at start, a heartbeat
//! every interval (registering again when the registry forgot it), deregistered on shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tongban_governance::registry::Registration;

use crate::platform::{PlatformClient, PlatformError};

/// The registry's expected heartbeat period (`docs/gateway.md`, "Registry").
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// A registered instance; [`Registered::deregister`] on shutdown.
#[derive(Debug)]
pub struct Registered {
    platform: PlatformClient,
    id: Arc<Mutex<String>>,
    beats: JoinHandle<()>,
}

impl Registered {
    /// Registers `registration` and beats every `every` until deregistered or dropped.
    pub async fn start(
        platform: PlatformClient,
        registration: Registration,
        every: Duration,
    ) -> Result<Self, PlatformError> {
        let instance = platform.register(&registration).await?;
        tracing::info!(service = %registration.service, instance = %instance.id, "Registered.");
        let id = Arc::new(Mutex::new(instance.id));
        let beats = tokio::spawn(beat(platform.clone(), registration, id.clone(), every));
        Ok(Self {
            platform,
            id,
            beats,
        })
    }

    /// The instance id the registry knows now (it changes if the registry forgot the
    /// instance and it registered again).
    pub fn id(&self) -> String {
        self.id.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// Stops the heartbeats and deregisters, so the gateway stops sending requests at once
    /// rather than after the registry's timeout.
    pub async fn deregister(self) -> Result<(), PlatformError> {
        self.beats.abort();
        let id = self.id();
        self.platform.deregister(&id).await
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.beats.abort();
    }
}

async fn beat(
    platform: PlatformClient,
    registration: Registration,
    id: Arc<Mutex<String>>,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let current = id.lock().map(|g| g.clone()).unwrap_or_default();
        match platform.heartbeat(&current).await {
            Ok(()) => {}
            // The registry removed the instance (it was silent too long, or the registry
            // restarted): register again.
            Err(e) if e.code() == Some(20404) => match platform.register(&registration).await {
                Ok(instance) => {
                    tracing::warn!(instance = %instance.id, "The registry had forgotten this instance: registered again.");
                    if let Ok(mut g) = id.lock() {
                        *g = instance.id;
                    }
                }
                Err(error) => tracing::warn!(%error, "Registering again failed."),
            },
            Err(error) => tracing::warn!(%error, "Heartbeat failed."),
        }
    }
}
