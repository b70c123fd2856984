//! Service governance: the service registry (instances, heartbeats, health, protect threshold),
//! the config centre (namespaced, versioned documents with history, rollback and watch), and
//! cluster notices (what one instance tells every other at once).
//!
//! Each concept is one trait with an embedded backend (in process, persisted in
//! `tongban_store`) and a cluster backend (NATS JetStream KV); both pass one test suite.
#![forbid(unsafe_code)]

pub mod config;
mod nats_kv;
pub mod notice;
pub mod registry;

pub use config::{ConfigCentre, ConfigEntry, ConfigError, ConfigWatch};
pub use registry::{Instance, Registration, Registry, RegistryError, RegistryEvent, Timings};
