//! The config centre: documents by namespace and key, every change a new version kept in
//! history, rollback to any earlier version, and a watch that pushes each change to every
//! subscriber. Route rules, limits and breaker settings of the gateway live here.

mod embedded;
mod nats;

use std::fmt::Debug;
use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};

pub use embedded::EmbeddedConfig;
pub use nats::NatsConfig;
pub use tongban_store::Expect;

/// One version of a document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    pub namespace: String,
    pub key: String,
    /// Grows with every change of the key (per key in the embedded backend, per bucket in NATS).
    pub version: i64,
    /// `None` for a deletion.
    pub value: Option<String>,
    pub updated_at_ms: i64,
}

/// Why a config operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The document changed since the caller read it (or exists, for a create).
    #[error("version conflict")]
    Conflict,
    #[error("not found")]
    NotFound,
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("config backend: {0}")]
    Backend(String),
}

/// Changes of one namespace, in order, from the moment of subscription.
pub struct ConfigWatch {
    inner: Pin<Box<dyn Stream<Item = ConfigEntry> + Send>>,
}

/// A config centre backend.
#[async_trait::async_trait]
pub trait ConfigCentre: Send + Sync + Debug + 'static {
    /// The current document, if any.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<ConfigEntry>, ConfigError>;
    /// Writes a new version if `expect` holds.
    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expect: Expect,
    ) -> Result<ConfigEntry, ConfigError>;
    /// Deletes the document; its history stays.
    async fn delete(&self, namespace: &str, key: &str) -> Result<(), ConfigError>;
    /// Current documents of a namespace, by key.
    async fn list(&self, namespace: &str) -> Result<Vec<ConfigEntry>, ConfigError>;
    /// Versions of a document, oldest first, deletions included.
    async fn history(&self, namespace: &str, key: &str) -> Result<Vec<ConfigEntry>, ConfigError>;
    /// Subscribes to the changes of a namespace.
    async fn watch(&self, namespace: &str) -> Result<ConfigWatch, ConfigError>;

    /// Writes the value of an earlier version as a new version.
    async fn rollback(
        &self,
        namespace: &str,
        key: &str,
        version: i64,
    ) -> Result<ConfigEntry, ConfigError> {
        let value = self
            .history(namespace, key)
            .await?
            .into_iter()
            .find(|e| e.version == version)
            .and_then(|e| e.value)
            .ok_or(ConfigError::NotFound)?;
        self.put(namespace, key, &value, Expect::Any).await
    }
}

// === impl ConfigWatch ===

impl ConfigWatch {
    pub fn new(stream: impl Stream<Item = ConfigEntry> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// The next change; `None` once the backend has gone away.
    pub async fn next(&mut self) -> Option<ConfigEntry> {
        self.inner.next().await
    }
}

impl Debug for ConfigWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigWatch").finish_non_exhaustive()
    }
}

/// Names every backend accepts: namespaces are lowercase words with hyphens; keys may also hold
/// `.`, `_` and `/` (they become NATS subject tokens and SQL text alike).
pub(crate) fn check_names(namespace: &str, key: Option<&str>) -> Result<(), ConfigError> {
    let ns_ok = !namespace.is_empty()
        && namespace.len() <= 64
        && namespace
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ns_ok {
        return Err(ConfigError::Invalid(
            "namespace must be 1 to 64 lowercase letters, digits or hyphens".to_owned(),
        ));
    }
    if let Some(key) = key {
        let ok = !key.is_empty()
            && key.len() <= 128
            && !key.starts_with(['.', '/'])
            && !key.ends_with(['.', '/'])
            && !key.contains("..")
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !ok {
            return Err(ConfigError::Invalid(
                "key must be 1 to 128 letters, digits, '-', '_', '.' or '/', not starting or ending with '.' or '/'"
                    .to_owned(),
            ));
        }
    }
    Ok(())
}
