//! The service registry: services register instances, keep them alive with heartbeats (or are
//! probed, for persistent instances), and the gateway asks for the healthy ones.

mod embedded;
pub mod health;
pub mod http;
mod nats;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

pub use embedded::{EmbeddedRegistry, Probe, TcpProbe};
pub use nats::NatsRegistry;

/// What an instance sends to register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Service name: lowercase letters, digits and hyphens.
    pub service: String,
    /// `host:port` the gateway connects to.
    pub address: String,
    /// Relative share of traffic (1 to 10000); 100 by default.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Free-form labels (version, zone, …).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Persistent instances are probed by the registry instead of sending heartbeats, and are
    /// kept (in storage) until deregistered.
    #[serde(default)]
    pub persistent: bool,
}

/// A registered instance as the registry reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub service: String,
    pub address: String,
    pub weight: u32,
    pub metadata: BTreeMap<String, String>,
    pub persistent: bool,
    pub healthy: bool,
}

/// Something changed in a service's instance list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEvent {
    pub service: String,
}

/// Heartbeat and health timings (Nacos defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timings {
    /// How often instances are expected to beat; also the sweep period.
    pub heartbeat_interval: Duration,
    /// An instance that has not beaten for this long is unhealthy.
    pub unhealthy_after: Duration,
    /// An instance that has not beaten for this long is removed.
    pub remove_after: Duration,
    /// If the healthy share of a service falls below this (0.0–1.0), every instance is returned
    /// rather than emptying the service.
    pub protect_threshold: f64,
    /// How often persistent instances are probed.
    pub probe_interval: Duration,
    /// Consecutive failed probes before a persistent instance is unhealthy.
    pub probe_failures: u32,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("instance not found")]
    NotFound,
    #[error("invalid registration: {0}")]
    Invalid(String),
    #[error("registry backend: {0}")]
    Backend(String),
}

/// A service registry backend.
#[async_trait::async_trait]
pub trait Registry: Send + Sync + Debug + 'static {
    /// Registers an instance; registering the same service and address again returns the same id.
    async fn register(&self, reg: Registration) -> Result<Instance, RegistryError>;
    /// Records a heartbeat; `NotFound` tells the instance to register again.
    async fn heartbeat(&self, id: &str) -> Result<(), RegistryError>;
    async fn deregister(&self, id: &str) -> Result<(), RegistryError>;
    /// Every instance of a service with its current health.
    async fn instances(&self, service: &str) -> Result<Vec<Instance>, RegistryError>;
    /// The healthy instances, or all of them when the protect threshold is crossed.
    async fn healthy(&self, service: &str) -> Result<Vec<Instance>, RegistryError>;
    /// Names of the services with at least one instance.
    async fn services(&self) -> Result<Vec<String>, RegistryError>;
    /// Notifications of changes (registration, removal, health transitions).
    fn watch(&self) -> broadcast::Receiver<RegistryEvent>;
}

fn default_weight() -> u32 {
    100
}

// === impl Timings ===

impl Default for Timings {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(5),
            unhealthy_after: Duration::from_secs(15),
            remove_after: Duration::from_secs(30),
            protect_threshold: 0.0,
            probe_interval: Duration::from_secs(5),
            probe_failures: 2,
        }
    }
}

// === impl Registration ===

impl Registration {
    /// Checks the fields a client sent.
    pub fn validate(&self) -> Result<(), RegistryError> {
        let s = &self.service;
        if s.is_empty()
            || s.len() > 64
            || !s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(RegistryError::Invalid(
                "service must be 1 to 64 lowercase letters, digits or hyphens".to_owned(),
            ));
        }
        if self.address.parse::<std::net::SocketAddr>().is_err() {
            let ok = self.address.rsplit_once(':').is_some_and(|(h, p)| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
                    && p.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !ok {
                return Err(RegistryError::Invalid(
                    "address must be host:port".to_owned(),
                ));
            }
        }
        if !(1..=10_000).contains(&self.weight) {
            return Err(RegistryError::Invalid(
                "weight must be 1 to 10000".to_owned(),
            ));
        }
        if self.metadata.len() > 32
            || self
                .metadata
                .iter()
                .any(|(k, v)| k.len() > 64 || v.len() > 256)
        {
            return Err(RegistryError::Invalid(
                "metadata: at most 32 entries, keys up to 64 and values up to 256 bytes".to_owned(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
