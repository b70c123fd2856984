//! The cluster registry: one NATS JetStream KV bucket, key `<service>.<id>`, value the instance
//! and its last heartbeat (wall-clock milliseconds). Every node reads health from the beat
//! times, so all agree; any node's sweep removes expired instances, guarded by the revision so
//! a beat that lands meanwhile wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::embedded::Probe;
use super::health::{self, Health};
use super::{Instance, Registration, Registry, RegistryError, RegistryEvent, Timings};

/// A registry on a NATS JetStream KV bucket.
#[derive(Clone, Debug)]
pub struct NatsRegistry {
    kv: kv::Store,
    timings: Timings,
    events: broadcast::Sender<RegistryEvent>,
    /// Instance id → service, learnt from the bucket, so a heartbeat finds its key.
    ids: Arc<Mutex<HashMap<String, String>>>,
    watcher: Arc<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    instance: Instance,
    beat_ms: i64,
    #[serde(default)]
    probe_fails: u32,
}

// === impl NatsRegistry ===

impl NatsRegistry {
    /// Connects and opens (or creates) `bucket`; starts following it for watchers.
    pub async fn connect(url: &str, bucket: &str, timings: Timings) -> Result<Self, RegistryError> {
        // One version per key: an instance's current state is all the registry needs.
        let kv = crate::nats_kv::open_bucket(url, bucket, 1)
            .await
            .map_err(RegistryError::Backend)?;
        let (events, _) = broadcast::channel(1024);
        let ids = Arc::new(Mutex::new(HashMap::new()));
        let mut watch = kv.watch_all().await.map_err(backend)?;
        let (tx, known) = (events.clone(), ids.clone());
        let watcher = tokio::spawn(async move {
            while let Some(e) = watch.next().await {
                let Ok(e) = e else { continue };
                if let Some((service, id)) = e.key.split_once('.') {
                    let mut m = known.lock().unwrap_or_else(PoisonError::into_inner);
                    if e.operation == Operation::Put {
                        m.insert(id.to_owned(), service.to_owned());
                    } else {
                        m.remove(id);
                    }
                    drop(m);
                    let _ = tx.send(RegistryEvent {
                        service: service.to_owned(),
                    });
                }
            }
        });
        Ok(Self {
            kv,
            timings,
            events,
            ids,
            watcher: Arc::new(watcher),
        })
    }

    /// Removes expired instances and probes persistent ones, until aborted.
    pub fn spawn_maintenance(&self, probe: Arc<dyn Probe>) -> tokio::task::JoinHandle<()> {
        let reg = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(1));
            let mut probes = tokio::time::interval(reg.timings.probe_interval);
            loop {
                tokio::select! {
                    _ = sweep.tick() => {
                        if let Err(error) = reg.sweep().await {
                            tracing::warn!(%error, "Registry sweep failed.");
                        }
                    }
                    _ = probes.tick() => {
                        if let Err(error) = reg.probe_all(probe.as_ref()).await {
                            tracing::warn!(%error, "Registry probes failed.");
                        }
                    }
                }
            }
        })
    }

    /// Deletes instances silent past `remove_after`.
    pub async fn sweep(&self) -> Result<(), RegistryError> {
        let now = now_ms();
        for (key, rec, revision) in self.records(None).await? {
            if !rec.instance.persistent && self.health(&rec, now) == Health::Expired {
                // Fails harmlessly if the instance beat meanwhile.
                if self
                    .kv
                    .delete_expect_revision(&key, Some(revision))
                    .await
                    .is_ok()
                {
                    tracing::info!(service = %rec.instance.service, id = %rec.instance.id, "Removed an instance that stopped beating.");
                }
            }
        }
        Ok(())
    }

    /// Probes every persistent instance once and records its health.
    pub async fn probe_all(&self, probe: &dyn Probe) -> Result<(), RegistryError> {
        for (key, mut rec, revision) in self.records(None).await? {
            if !rec.instance.persistent {
                continue;
            }
            let ok = probe.check(&rec.instance.address).await;
            rec.probe_fails = if ok {
                0
            } else {
                rec.probe_fails.saturating_add(1)
            };
            let healthy = ok || rec.probe_fails < self.timings.probe_failures;
            if healthy != rec.instance.healthy || !ok {
                rec.instance.healthy = healthy;
                let _ = self.kv.update(&key, encode(&rec)?, revision).await;
            }
        }
        Ok(())
    }

    fn health(&self, rec: &Record, now: i64) -> Health {
        let silent = Duration::from_millis(u64::try_from(now - rec.beat_ms).unwrap_or(0));
        health::of_heartbeat(silent, &self.timings)
    }

    /// Records of one service (or all), with their keys and revisions.
    async fn records(
        &self,
        service: Option<&str>,
    ) -> Result<Vec<(String, Record, u64)>, RegistryError> {
        let prefix = service.map(|s| format!("{s}."));
        let keys: Vec<String> = match self.kv.keys().await {
            Ok(k) => k.try_collect().await.map_err(backend)?,
            Err(e) => return Err(backend(e)),
        };
        let mut out = Vec::new();
        for key in keys {
            if prefix
                .as_ref()
                .is_some_and(|p| !key.starts_with(p.as_str()))
            {
                continue;
            }
            if let Some((rec, revision)) = self.read(&key).await? {
                out.push((key, rec, revision));
            }
        }
        Ok(out)
    }

    async fn read(&self, key: &str) -> Result<Option<(Record, u64)>, RegistryError> {
        let Some(e) = self.kv.entry(key).await.map_err(backend)? else {
            return Ok(None);
        };
        if e.operation != Operation::Put {
            return Ok(None);
        }
        match serde_json::from_slice::<Record>(&e.value) {
            Ok(rec) => Ok(Some((rec, e.revision))),
            Err(error) => {
                tracing::warn!(%error, key, "Skipped an unreadable registry record.");
                Ok(None)
            }
        }
    }

    async fn key_of(&self, id: &str) -> Result<Option<String>, RegistryError> {
        let known = self
            .ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned();
        if let Some(service) = known {
            return Ok(Some(format!("{service}.{id}")));
        }
        let suffix = format!(".{id}");
        let keys: Vec<String> = match self.kv.keys().await {
            Ok(k) => k.try_collect().await.map_err(backend)?,
            Err(e) => return Err(backend(e)),
        };
        Ok(keys.into_iter().find(|k| k.ends_with(&suffix)))
    }
}

impl Drop for NatsRegistry {
    fn drop(&mut self) {
        // The last clone stops following the bucket.
        if Arc::strong_count(&self.watcher) == 1 {
            self.watcher.abort();
        }
    }
}

#[async_trait::async_trait]
impl Registry for NatsRegistry {
    async fn register(&self, reg: Registration) -> Result<Instance, RegistryError> {
        reg.validate()?;
        let existing = self
            .records(Some(&reg.service))
            .await?
            .into_iter()
            .find(|(_, r, _)| r.instance.address == reg.address)
            .map(|(_, r, _)| r.instance.id);
        let id = existing.unwrap_or_else(super::embedded::new_id);
        let instance = Instance {
            id: id.clone(),
            service: reg.service.clone(),
            address: reg.address,
            weight: reg.weight,
            metadata: reg.metadata,
            persistent: reg.persistent,
            healthy: true,
        };
        let rec = Record {
            instance: instance.clone(),
            beat_ms: now_ms(),
            probe_fails: 0,
        };
        self.kv
            .put(format!("{}.{id}", reg.service), encode(&rec)?)
            .await
            .map_err(backend)?;
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, reg.service);
        tracing::info!(service = %instance.service, id = %instance.id, "Instance registered.");
        Ok(instance)
    }

    async fn heartbeat(&self, id: &str) -> Result<(), RegistryError> {
        let key = self.key_of(id).await?.ok_or(RegistryError::NotFound)?;
        for _ in 0..3 {
            let (mut rec, revision) = self.read(&key).await?.ok_or(RegistryError::NotFound)?;
            let now = now_ms();
            if !rec.instance.persistent && self.health(&rec, now) == Health::Expired {
                let _ = self.kv.delete_expect_revision(&key, Some(revision)).await;
                return Err(RegistryError::NotFound);
            }
            rec.beat_ms = now;
            if !rec.instance.persistent {
                rec.instance.healthy = true;
            }
            if self.kv.update(&key, encode(&rec)?, revision).await.is_ok() {
                return Ok(());
            }
        }
        Err(RegistryError::Backend(
            "heartbeat lost three races for the same instance".to_owned(),
        ))
    }

    async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
        let key = self.key_of(id).await?.ok_or(RegistryError::NotFound)?;
        if self.read(&key).await?.is_none() {
            return Err(RegistryError::NotFound);
        }
        self.kv.delete(&key).await.map_err(backend)?;
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
        tracing::info!(id, "Instance deregistered.");
        Ok(())
    }

    async fn instances(&self, service: &str) -> Result<Vec<Instance>, RegistryError> {
        let now = now_ms();
        let mut out: Vec<Instance> = self
            .records(Some(service))
            .await?
            .into_iter()
            .filter_map(|(_, rec, _)| {
                let mut i = rec.instance.clone();
                if !i.persistent {
                    match self.health(&rec, now) {
                        Health::Expired => return None,
                        Health::Unhealthy => i.healthy = false,
                        Health::Healthy => i.healthy = true,
                    }
                }
                Some(i)
            })
            .collect();
        out.sort_by(|a, b| a.address.cmp(&b.address));
        Ok(out)
    }

    async fn healthy(&self, service: &str) -> Result<Vec<Instance>, RegistryError> {
        let all = self.instances(service).await?;
        Ok(health::select(all, self.timings.protect_threshold))
    }

    async fn services(&self) -> Result<Vec<String>, RegistryError> {
        let now = now_ms();
        let mut names: Vec<String> = self
            .records(None)
            .await?
            .into_iter()
            .filter(|(_, r, _)| r.instance.persistent || self.health(r, now) != Health::Expired)
            .map(|(_, r, _)| r.instance.service)
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn watch(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }
}

fn encode(rec: &Record) -> Result<bytes::Bytes, RegistryError> {
    serde_json::to_vec(rec)
        .map(bytes::Bytes::from)
        .map_err(|e| RegistryError::Backend(e.to_string()))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn backend(e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Backend(e.to_string())
}
