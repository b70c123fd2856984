//! Service governance: the service registry (instances, heartbeats, health, protect threshold),
//! the config centre (namespaced, versioned documents with history, rollback and watch),
//! cluster notices (what one instance tells every other at once), and the policies every
//! outgoing call shares: circuit breakers, retry budgets and the third-party client that
//! applies them to a service's calls.
//!
//! The registry, config centre and notices are each one trait with an embedded backend (in
//! process, persisted in `tongban_store`) and a cluster backend (NATS JetStream KV); both pass
//! one test suite.
#![forbid(unsafe_code)]

pub mod breaker;
pub mod config;
mod nats_kv;
pub mod notice;
pub mod registry;
pub mod retry;
pub mod third_party;

pub use config::{ConfigCentre, ConfigEntry, ConfigError, ConfigWatch};
pub use registry::{Instance, Registration, Registry, RegistryError, RegistryEvent, Timings};
