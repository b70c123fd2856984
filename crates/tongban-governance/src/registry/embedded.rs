//! The embedded registry: instances in memory, persistent ones also in storage so they survive
//! a restart; a maintenance task sweeps silent instances and probes persistent ones.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tongban_store::{Expect, Store};

use super::health::{self, Health};
use super::{Instance, Registration, Registry, RegistryError, RegistryEvent, Timings};

/// Storage namespace of persistent instances.
const NAMESPACE: &str = "registry/instances";

/// Checks whether a persistent instance answers.
#[async_trait::async_trait]
pub trait Probe: Send + Sync + Debug + 'static {
    async fn check(&self, address: &str) -> bool;
}

/// Probes by opening a TCP connection within a timeout.
#[derive(Clone, Copy, Debug)]
pub struct TcpProbe {
    pub timeout: Duration,
}

/// The in-process registry.
#[derive(Clone, Debug)]
pub struct EmbeddedRegistry {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    timings: Timings,
    store: Option<Store>,
    events: broadcast::Sender<RegistryEvent>,
    state: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    instance: Instance,
    last_beat: Instant,
    probe_fails: u32,
}

// === impl TcpProbe ===

#[async_trait::async_trait]
impl Probe for TcpProbe {
    async fn check(&self, address: &str) -> bool {
        matches!(
            tokio::time::timeout(self.timeout, tokio::net::TcpStream::connect(address)).await,
            Ok(Ok(_))
        )
    }
}

// === impl EmbeddedRegistry ===

impl EmbeddedRegistry {
    /// A registry; with a store, persistent instances are saved and loaded back from it.
    pub async fn open(timings: Timings, store: Option<Store>) -> Result<Self, RegistryError> {
        let (events, _) = broadcast::channel(1024);
        let reg = Self {
            inner: Arc::new(Inner {
                timings,
                store,
                events,
                state: Mutex::new(HashMap::new()),
            }),
        };
        if let Some(store) = &reg.inner.store {
            let now = Instant::now();
            let rows = store.kv().list(NAMESPACE).await.map_err(backend)?;
            let mut state = reg.lock();
            for row in rows {
                let Some(value) = row.value else { continue };
                match serde_json::from_str::<Instance>(&value) {
                    Ok(instance) => {
                        state.insert(
                            instance.id.clone(),
                            Entry {
                                instance,
                                last_beat: now,
                                probe_fails: 0,
                            },
                        );
                    }
                    Err(error) => {
                        tracing::warn!(%error, key = %row.key, "Skipped an unreadable stored instance.");
                    }
                }
            }
        }
        Ok(reg)
    }

    /// Runs sweeps and probes until the returned handle is aborted.
    pub fn spawn_maintenance(&self, probe: Arc<dyn Probe>) -> tokio::task::JoinHandle<()> {
        let reg = self.clone();
        tokio::spawn(async move {
            let mut sweep = tokio::time::interval(Duration::from_secs(1));
            let mut probes = tokio::time::interval(reg.inner.timings.probe_interval);
            loop {
                tokio::select! {
                    _ = sweep.tick() => reg.sweep(),
                    _ = probes.tick() => reg.probe_all(probe.as_ref()).await,
                }
            }
        })
    }

    /// Marks silent instances unhealthy, removes expired ones and announces what changed.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut changed = Vec::new();
        {
            let mut state = self.lock();
            state.retain(|_, e| {
                if e.instance.persistent {
                    return true;
                }
                match health::of_heartbeat(now - e.last_beat, &self.inner.timings) {
                    Health::Expired => {
                        tracing::info!(service = %e.instance.service, id = %e.instance.id, "Removed an instance that stopped beating.");
                        changed.push(e.instance.service.clone());
                        false
                    }
                    Health::Unhealthy => {
                        if e.instance.healthy {
                            e.instance.healthy = false;
                            tracing::warn!(service = %e.instance.service, id = %e.instance.id, "Instance missed its heartbeats; marked unhealthy.");
                            changed.push(e.instance.service.clone());
                        }
                        true
                    }
                    Health::Healthy => true,
                }
            });
        }
        for service in changed {
            self.announce(service);
        }
    }

    /// Probes every persistent instance once.
    pub async fn probe_all(&self, probe: &dyn Probe) {
        let targets: Vec<(String, String)> = self
            .lock()
            .values()
            .filter(|e| e.instance.persistent)
            .map(|e| (e.instance.id.clone(), e.instance.address.clone()))
            .collect();
        for (id, address) in targets {
            let ok = probe.check(&address).await;
            let mut changed = None;
            if let Some(e) = self.lock().get_mut(&id) {
                if ok {
                    e.probe_fails = 0;
                } else {
                    e.probe_fails = e.probe_fails.saturating_add(1);
                }
                let healthy = ok || e.probe_fails < self.inner.timings.probe_failures;
                if healthy != e.instance.healthy {
                    e.instance.healthy = healthy;
                    tracing::info!(service = %e.instance.service, id = %id, healthy, "Persistent instance changed health.");
                    changed = Some(e.instance.service.clone());
                }
            }
            if let Some(service) = changed {
                self.announce(service);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        // A panic while holding the lock leaves plain data that is still consistent.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn announce(&self, service: String) {
        let _ = self.inner.events.send(RegistryEvent { service });
    }

    async fn persist(&self, instance: &Instance) -> Result<(), RegistryError> {
        if let Some(store) = &self.inner.store {
            let json = serde_json::to_string(instance)
                .map_err(|e| RegistryError::Backend(e.to_string()))?;
            store
                .kv()
                .put(NAMESPACE, &instance.id, &json, Expect::Any)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Registry for EmbeddedRegistry {
    async fn register(&self, reg: Registration) -> Result<Instance, RegistryError> {
        reg.validate()?;
        let now = Instant::now();
        let was_persistent;
        let instance = {
            let mut state = self.lock();
            let existing = state
                .values()
                .find(|e| e.instance.service == reg.service && e.instance.address == reg.address)
                .map(|e| (e.instance.id.clone(), e.instance.persistent));
            was_persistent = existing.as_ref().is_some_and(|(_, p)| *p);
            let id = existing.map_or_else(new_id, |(id, _)| id);
            let instance = Instance {
                id: id.clone(),
                service: reg.service,
                address: reg.address,
                weight: reg.weight,
                metadata: reg.metadata,
                persistent: reg.persistent,
                healthy: true,
            };
            state.insert(
                id,
                Entry {
                    instance: instance.clone(),
                    last_beat: now,
                    probe_fails: 0,
                },
            );
            instance
        };
        if instance.persistent {
            self.persist(&instance).await?;
        } else if was_persistent && let Some(store) = &self.inner.store {
            // No longer persistent: it must not come back after a restart.
            match store
                .kv()
                .delete(NAMESPACE, &instance.id, Expect::Any)
                .await
            {
                Ok(()) | Err(tongban_store::StoreError::NotFound) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        tracing::info!(service = %instance.service, id = %instance.id, "Instance registered.");
        self.announce(instance.service.clone());
        Ok(instance)
    }

    async fn heartbeat(&self, id: &str) -> Result<(), RegistryError> {
        let now = Instant::now();
        let revived = {
            let mut state = self.lock();
            let e = state.get_mut(id).ok_or(RegistryError::NotFound)?;
            if !e.instance.persistent
                && health::of_heartbeat(now - e.last_beat, &self.inner.timings) == Health::Expired
            {
                // Removed in all but the sweep: the instance must register again.
                let service = e.instance.service.clone();
                state.remove(id);
                drop(state);
                self.announce(service);
                return Err(RegistryError::NotFound);
            }
            e.last_beat = now;
            if !e.instance.persistent && !e.instance.healthy {
                e.instance.healthy = true;
                Some(e.instance.service.clone())
            } else {
                None
            }
        };
        if let Some(service) = revived {
            self.announce(service);
        }
        Ok(())
    }

    async fn deregister(&self, id: &str) -> Result<(), RegistryError> {
        let removed = self.lock().remove(id).ok_or(RegistryError::NotFound)?;
        if removed.instance.persistent
            && let Some(store) = &self.inner.store
        {
            match store.kv().delete(NAMESPACE, id, Expect::Any).await {
                Ok(()) | Err(tongban_store::StoreError::NotFound) => {}
                Err(e) => return Err(backend(e)),
            }
        }
        tracing::info!(service = %removed.instance.service, id, "Instance deregistered.");
        self.announce(removed.instance.service);
        Ok(())
    }

    async fn instances(&self, service: &str) -> Result<Vec<Instance>, RegistryError> {
        let now = Instant::now();
        let t = self.inner.timings;
        let mut out: Vec<Instance> = self
            .lock()
            .values()
            .filter(|e| e.instance.service == service)
            .filter_map(|e| {
                let mut i = e.instance.clone();
                if !i.persistent {
                    // Health is computed on read too, so answers are right between sweeps.
                    match health::of_heartbeat(now - e.last_beat, &t) {
                        Health::Expired => return None,
                        Health::Unhealthy => i.healthy = false,
                        Health::Healthy => {}
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
        Ok(health::select(all, self.inner.timings.protect_threshold))
    }

    async fn services(&self) -> Result<Vec<String>, RegistryError> {
        let now = Instant::now();
        let t = self.inner.timings;
        let mut names: Vec<String> = self
            .lock()
            .values()
            .filter(|e| {
                e.instance.persistent
                    || health::of_heartbeat(now - e.last_beat, &t) != Health::Expired
            })
            .map(|e| e.instance.service.clone())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn watch(&self) -> broadcast::Receiver<RegistryEvent> {
        self.inner.events.subscribe()
    }
}

pub(super) fn new_id() -> String {
    use rand::Rng;
    let n: u128 = rand::rng().random();
    format!("{n:032x}")
}

fn backend(e: tongban_store::StoreError) -> RegistryError {
    RegistryError::Backend(e.to_string())
}
