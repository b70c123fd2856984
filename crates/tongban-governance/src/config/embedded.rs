//! The embedded config centre: documents in `tongban_store`'s versioned KV (namespace
//! `config/<ns>`), changes pushed to subscribers in process.

use futures_util::stream;
use tokio::sync::broadcast;
use tongban_store::{Expect, KvEntry, Store, StoreError};

use super::{ConfigCentre, ConfigEntry, ConfigError, ConfigWatch, check_names};

/// The in-process config centre, persisted in storage.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    store: Store,
    events: broadcast::Sender<ConfigEntry>,
}

// === impl EmbeddedConfig ===

impl EmbeddedConfig {
    pub fn new(store: Store) -> Self {
        let (events, _) = broadcast::channel(1024);
        Self { store, events }
    }

    fn announce(&self, e: ConfigEntry) {
        // No subscriber is not an error.
        let _ = self.events.send(e);
    }
}

#[async_trait::async_trait]
impl ConfigCentre for EmbeddedConfig {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<ConfigEntry>, ConfigError> {
        check_names(namespace, Some(key))?;
        let e = self
            .store
            .kv()
            .get(&ns(namespace), key)
            .await
            .map_err(err)?;
        Ok(e.map(|e| entry(namespace, e)))
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expect: Expect,
    ) -> Result<ConfigEntry, ConfigError> {
        check_names(namespace, Some(key))?;
        let e = self
            .store
            .kv()
            .put(&ns(namespace), key, value, expect)
            .await
            .map_err(err)?;
        let e = entry(namespace, e);
        self.announce(e.clone());
        Ok(e)
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), ConfigError> {
        check_names(namespace, Some(key))?;
        self.store
            .kv()
            .delete(&ns(namespace), key, Expect::Any)
            .await
            .map_err(err)?;
        let last = self
            .store
            .kv()
            .history(&ns(namespace), key)
            .await
            .map_err(err)?
            .pop();
        if let Some(last) = last {
            self.announce(entry(namespace, last));
        }
        Ok(())
    }

    async fn list(&self, namespace: &str) -> Result<Vec<ConfigEntry>, ConfigError> {
        check_names(namespace, None)?;
        let rows = self.store.kv().list(&ns(namespace)).await.map_err(err)?;
        Ok(rows.into_iter().map(|e| entry(namespace, e)).collect())
    }

    async fn history(&self, namespace: &str, key: &str) -> Result<Vec<ConfigEntry>, ConfigError> {
        check_names(namespace, Some(key))?;
        let rows = self
            .store
            .kv()
            .history(&ns(namespace), key)
            .await
            .map_err(err)?;
        Ok(rows.into_iter().map(|e| entry(namespace, e)).collect())
    }

    async fn watch(&self, namespace: &str) -> Result<ConfigWatch, ConfigError> {
        check_names(namespace, None)?;
        let rx = self.events.subscribe();
        let namespace = namespace.to_owned();
        let s = stream::unfold((rx, namespace), |(mut rx, namespace)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.namespace == namespace => return Some((e, (rx, namespace))),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(
                            missed = n,
                            "A config watcher fell behind; changes were skipped."
                        );
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(ConfigWatch::new(s))
    }
}

fn ns(namespace: &str) -> String {
    format!("config/{namespace}")
}

fn entry(namespace: &str, e: KvEntry) -> ConfigEntry {
    ConfigEntry {
        namespace: namespace.to_owned(),
        key: e.key,
        version: e.version,
        value: e.value,
        updated_at_ms: e.updated_at_ms,
    }
}

fn err(e: StoreError) -> ConfigError {
    match e {
        StoreError::Conflict { .. } => ConfigError::Conflict,
        StoreError::NotFound => ConfigError::NotFound,
        StoreError::Invalid(m) => ConfigError::Invalid(m),
        other => ConfigError::Backend(other.to_string()),
    }
}
