//! The cluster config centre: a NATS JetStream KV bucket, key `<namespace>.<key>`; JetStream
//! keeps the history (up to 64 versions per key) and pushes changes to watchers.

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use futures_util::{StreamExt, TryStreamExt, future};

use super::{ConfigCentre, ConfigEntry, ConfigError, ConfigWatch, Expect, check_names};

/// A config centre on a NATS JetStream KV bucket.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    kv: kv::Store,
}

// === impl NatsConfig ===

impl NatsConfig {
    /// Connects and opens (or creates) `bucket`, keeping 64 versions of each key.
    pub async fn connect(url: &str, bucket: &str) -> Result<Self, ConfigError> {
        let kv = crate::nats_kv::open_bucket(url, bucket, 64)
            .await
            .map_err(ConfigError::Backend)?;
        Ok(Self { kv })
    }
}

#[async_trait::async_trait]
impl ConfigCentre for NatsConfig {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<ConfigEntry>, ConfigError> {
        check_names(namespace, Some(key))?;
        let e = self
            .kv
            .entry(subject(namespace, key))
            .await
            .map_err(backend)?;
        Ok(e.filter(|e| e.operation == Operation::Put)
            .map(|e| entry(namespace, &e)))
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
        expect: Expect,
    ) -> Result<ConfigEntry, ConfigError> {
        check_names(namespace, Some(key))?;
        let k = subject(namespace, key);
        let bytes = bytes_of(value);
        let revision = match expect {
            Expect::Any => self.kv.put(&k, bytes).await.map_err(backend)?,
            Expect::Absent => self
                .kv
                .create(&k, bytes)
                .await
                .map_err(|e| match e.kind() {
                    CreateErrorKind::AlreadyExists => ConfigError::Conflict,
                    _ => backend(e),
                })?,
            Expect::Version(v) => {
                let v = u64::try_from(v).map_err(|_| ConfigError::Conflict)?;
                self.kv
                    .update(&k, bytes, v)
                    .await
                    .map_err(|e| match e.kind() {
                        UpdateErrorKind::WrongLastRevision => ConfigError::Conflict,
                        _ => backend(e),
                    })?
            }
        };
        Ok(ConfigEntry {
            namespace: namespace.to_owned(),
            key: key.to_owned(),
            version: i64::try_from(revision).unwrap_or(i64::MAX),
            value: Some(value.to_owned()),
            updated_at_ms: now_ms(),
        })
    }

    async fn delete(&self, namespace: &str, key: &str) -> Result<(), ConfigError> {
        let Some(current) = self.get(namespace, key).await? else {
            return Err(ConfigError::NotFound);
        };
        let revision = u64::try_from(current.version).unwrap_or(0);
        self.kv
            .delete_expect_revision(subject(namespace, key), Some(revision))
            .await
            .map_err(backend)
    }

    async fn list(&self, namespace: &str) -> Result<Vec<ConfigEntry>, ConfigError> {
        check_names(namespace, None)?;
        let prefix = format!("{namespace}.");
        let keys: Vec<String> = self
            .kv
            .keys()
            .await
            .map_err(backend)?
            .try_filter(|k| future::ready(k.starts_with(&prefix)))
            .try_collect()
            .await
            .map_err(backend)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            if let Some(e) = self.kv.entry(k).await.map_err(backend)?
                && e.operation == Operation::Put
            {
                out.push(entry(namespace, &e));
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    async fn history(&self, namespace: &str, key: &str) -> Result<Vec<ConfigEntry>, ConfigError> {
        check_names(namespace, Some(key))?;
        let mut h = match self.kv.history(subject(namespace, key)).await {
            Ok(h) => h,
            // No message for the key at all.
            Err(_)
                if self
                    .kv
                    .entry(subject(namespace, key))
                    .await
                    .ok()
                    .flatten()
                    .is_none() =>
            {
                return Ok(Vec::new());
            }
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        while let Some(e) = h.next().await {
            out.push(entry(namespace, &e.map_err(backend)?));
        }
        Ok(out)
    }

    async fn watch(&self, namespace: &str) -> Result<ConfigWatch, ConfigError> {
        check_names(namespace, None)?;
        let w = self
            .kv
            .watch(format!("{namespace}.>"))
            .await
            .map_err(backend)?;
        let namespace = namespace.to_owned();
        let s = w.filter_map(move |e| {
            let out = match e {
                Ok(e) => Some(entry(&namespace, &e)),
                Err(error) => {
                    tracing::warn!(%error, "A config watch message could not be read.");
                    None
                }
            };
            future::ready(out)
        });
        Ok(ConfigWatch::new(s))
    }
}

fn subject(namespace: &str, key: &str) -> String {
    format!("{namespace}.{key}")
}

fn bytes_of(value: &str) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(value.as_bytes())
}

fn entry(namespace: &str, e: &kv::Entry) -> ConfigEntry {
    let key = e
        .key
        .strip_prefix(namespace)
        .and_then(|k| k.strip_prefix('.'))
        .unwrap_or(&e.key)
        .to_owned();
    let value = match e.operation {
        Operation::Put => Some(String::from_utf8_lossy(&e.value).into_owned()),
        Operation::Delete | Operation::Purge => None,
    };
    ConfigEntry {
        namespace: namespace.to_owned(),
        key,
        version: i64::try_from(e.revision).unwrap_or(i64::MAX),
        value,
        updated_at_ms: i64::try_from(e.created.unix_timestamp_nanos() / 1_000_000).unwrap_or(0),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn backend(e: impl std::fmt::Display) -> ConfigError {
    ConfigError::Backend(e.to_string())
}
