//! The gateway: the route table (hot-swapped when the config centre changes), each route's
//! runtime state (balancer, breaker, budget, limits), and the stack every request passes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use http::Request;
use tongban_core::ApiError;
use tongban_core::net::IpNet;
use tongban_governance::config::{ConfigCentre, ConfigError};
use tongban_governance::registry::Registry;
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::auth::{AuthLayer, AuthResolver};
use crate::balance::{Endpoint, OutlierRule};
use crate::breaker::State;
use crate::breaker::layer::BreakerLayer;
use crate::concurrency::ConcurrencyLayer;
use crate::context::{CallerContextKeys, Contexts, NoCallerContext, NoPersons, PersonSource};
use crate::envelope::{EnvelopeKeySource, EnvelopeLayer, NoEnvelopeKeys};
use crate::limit::RateLimiter;
use crate::limit::layer::RateLimitLayer;
use crate::metrics::Metrics;
use crate::metrics::layer::MetricsLayer;
use crate::proxy::Proxy;
use crate::route::active::ActiveRoute;
use crate::route::layer::{RouteLayer, SharedTable};
use crate::route::{Matcher, RouteError, RouteSpec, Table};
use crate::sign::{LocalNonces, NonceStore, SignatureLayer, SigningKeys};
use crate::sync::lock;
use tongban_core::clock::Clock;

/// Config centre namespace of the route rules.
pub const ROUTES_NAMESPACE: &str = "gateway-routes";

/// What the gateway is built from.
#[derive(Clone, Debug)]
pub struct GatewayOptions {
    pub clock: Arc<dyn Clock>,
    pub limiter: Arc<dyn RateLimiter>,
    pub auth: Arc<dyn AuthResolver>,
    /// Source of instances for routes that name a service.
    pub registry: Option<Arc<dyn Registry>>,
    pub outlier: OutlierRule,
    /// Per-session signing keys, for routes marked `signed`.
    pub keys: Arc<dyn SigningKeys>,
    /// Where nonces of signed requests are remembered.
    pub nonces: Arc<dyn NonceStore>,
    /// Front load balancers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Idle upstream connections kept per host.
    pub pool_max_idle_per_host: usize,
    /// The digital envelope's key pairs, for routes with `envelope`.
    pub envelope_keys: Arc<dyn EnvelopeKeySource>,
    /// The services' caller-context keys: every forwarded request carries a context sealed
    /// with its service's key.
    pub caller_context: Arc<dyn CallerContextKeys>,
    /// Real-name persons, for routes with `caller_person`.
    pub persons: Arc<dyn PersonSource>,
}

/// Knows no signing key: signed routes refuse every request until identity provides keys.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoSigningKeys;

#[async_trait::async_trait]
impl SigningKeys for NoSigningKeys {
    async fn key(&self, _: &http::request::Parts, _: &str) -> Result<Option<Vec<u8>>, ApiError> {
        Ok(None)
    }
}

/// The gateway; cheap to clone.
#[derive(Clone, Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    opts: GatewayOptions,
    table: SharedTable,
    trusted: Arc<[IpNet]>,
    metrics: Arc<Metrics>,
}

// === impl GatewayOptions ===

impl GatewayOptions {
    pub fn new(
        clock: Arc<dyn Clock>,
        limiter: Arc<dyn RateLimiter>,
        auth: Arc<dyn AuthResolver>,
    ) -> Self {
        Self {
            clock,
            limiter,
            auth,
            registry: None,
            outlier: OutlierRule::default(),
            keys: Arc::new(NoSigningKeys),
            nonces: Arc::new(LocalNonces::default()),
            trusted_proxies: Vec::new(),
            pool_max_idle_per_host: 256,
            envelope_keys: Arc::new(NoEnvelopeKeys),
            caller_context: Arc::new(NoCallerContext),
            persons: Arc::new(NoPersons),
        }
    }
}

// === impl Gateway ===

impl Gateway {
    pub fn new(opts: GatewayOptions) -> Self {
        let trusted = opts.trusted_proxies.clone().into();
        Self {
            shared: Arc::new(Shared {
                opts,
                table: Arc::new(RwLock::new(Arc::new(Table::new(Vec::new())))),
                trusted,
                metrics: Arc::new(Metrics::default()),
            }),
        }
    }

    /// The request path through the gateway, outermost first.
    pub fn service(&self) -> BoxCloneSyncService<Request<Body>, Response, Infallible> {
        let o = &self.shared.opts;
        let svc = ServiceBuilder::new()
            // Finds the route; every later layer reads it from the request's extensions.
            .layer(RouteLayer {
                table: self.shared.table.clone(),
                trusted: self.shared.trusted.clone(),
            })
            // Counts every routed answer, refusals included, by code and latency.
            .layer(MetricsLayer)
            // The route's auth level, before any other work is spent on the request.
            .layer(AuthLayer::new(o.auth.clone()))
            // Rate limits per route, IP, user and app (429, or a bounded wait).
            .layer(RateLimitLayer::new(o.limiter.clone(), o.clock.clone()))
            // Anti-tamper: signed routes verify the request and sign the answer.
            .layer(SignatureLayer::new(
                o.keys.clone(),
                o.nonces.clone(),
                o.clock.clone(),
            ))
            // The digital envelope: sealed bodies opened, answers sealed (after the
            // signature, which covers the bytes as sent).
            .layer(EnvelopeLayer::new(o.envelope_keys.clone()))
            // A cap on the route's requests in flight.
            .layer(ConcurrencyLayer)
            // Breaker: fail fast with the route's fallback while the upstream is unwell.
            .layer(BreakerLayer)
            // Balancer, timeouts, retries and envelope normalization.
            .service(Proxy {
                contexts: Contexts {
                    keys: o.caller_context.clone(),
                    persons: o.persons.clone(),
                    clock: o.clock.clone(),
                },
            });
        BoxCloneSyncService::new(svc)
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// The routes in force.
    pub fn routes(&self) -> Vec<RouteSpec> {
        self.table().iter().map(|r| r.spec.clone()).collect()
    }

    /// Each route's breaker state.
    pub fn breaker_states(&self) -> Vec<(String, State)> {
        let now = self.shared.opts.clock.now();
        self.table()
            .iter()
            .filter_map(|r| {
                let b = r.breaker.as_ref()?;
                Some((r.spec.id.clone(), lock(b).state(now)))
            })
            .collect()
    }

    /// Prometheus text of the gateway's metrics.
    pub fn render_metrics(&self) -> String {
        let states: Vec<(String, u8)> = self
            .breaker_states()
            .into_iter()
            .map(|(r, s)| {
                let n = match s {
                    State::Closed => 0,
                    State::Open => 1,
                    State::HalfOpen => 2,
                };
                (r, n)
            })
            .collect();
        self.shared.metrics.render(&states)
    }

    /// Replaces the route table. Valid routes take effect at once; a route whose rule did not
    /// change keeps its state (breaker, budget, balancer). Returns the refused routes.
    pub fn apply(&self, specs: Vec<RouteSpec>) -> Vec<(String, RouteError)> {
        let old: HashMap<String, Arc<ActiveRoute>> = self
            .table()
            .iter()
            .map(|r| (r.spec.id.clone(), r.clone()))
            .collect();
        let mut refused = Vec::new();
        let mut entries = Vec::new();
        for spec in specs {
            let matcher = match spec.validate() {
                Ok(m) => m,
                Err(e) => {
                    refused.push((spec.id.clone(), e));
                    continue;
                }
            };
            let route = match old.get(&spec.id) {
                Some(r) if r.spec == spec => r.clone(),
                _ => {
                    let fresh = self.activate(spec, matcher.clone());
                    // Registry instances known to any current route of the same service carry
                    // over, so a changed route has instances before the next refresh.
                    if let Some(service) = &fresh.spec.upstream.service
                        && let Some(known) = old
                            .values()
                            .find(|r| r.spec.upstream.service.as_ref() == Some(service))
                    {
                        fresh.set_instances(
                            known
                                .balancer()
                                .endpoints()
                                .iter()
                                .map(|e| (e.address.clone(), e.weight))
                                .collect(),
                        );
                    }
                    Arc::new(fresh)
                }
            };
            entries.push((matcher, route));
        }
        let table = Arc::new(Table::new(entries));
        *self
            .shared
            .table
            .write()
            .unwrap_or_else(PoisonError::into_inner) = table;
        refused
    }

    /// Loads every route from the config centre and resolves registry instances.
    pub async fn load(
        &self,
        config: &dyn ConfigCentre,
    ) -> Result<Vec<(String, RouteError)>, ConfigError> {
        let mut specs = Vec::new();
        let mut refused = Vec::new();
        for e in config.list(ROUTES_NAMESPACE).await? {
            let Some(v) = e.value else { continue };
            match serde_json::from_str::<RouteSpec>(&v) {
                Ok(s) => specs.push(s),
                Err(err) => refused.push((e.key.clone(), RouteError::Invalid(err.to_string()))),
            }
        }
        refused.extend(self.apply(specs));
        for (id, error) in &refused {
            tracing::warn!(route = %id, %error, "Route refused; the others are in force.");
        }
        self.refresh_instances().await;
        Ok(refused)
    }

    /// Follows the config centre: each change reloads the table (connections stay open: only
    /// the table is swapped). Runs until aborted.
    pub async fn watch_config(
        &self,
        config: Arc<dyn ConfigCentre>,
    ) -> Result<tokio::task::JoinHandle<()>, ConfigError> {
        let mut w = config.watch(ROUTES_NAMESPACE).await?;
        let gw = self.clone();
        Ok(tokio::spawn(async move {
            while w.next().await.is_some() {
                if let Err(error) = gw.load(config.as_ref()).await {
                    tracing::error!(%error, "Reloading routes failed; the previous table stays.");
                }
            }
        }))
    }

    /// Follows the registry: instance changes rebuild the balancers of the routes concerned;
    /// a periodic refresh catches anything missed. Runs until aborted.
    pub fn watch_registry(&self, every: Duration) -> Option<tokio::task::JoinHandle<()>> {
        let registry = self.shared.opts.registry.clone()?;
        let gw = self.clone();
        Some(tokio::spawn(async move {
            let mut events = registry.watch();
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = events.recv() => {}
                    _ = tick.tick() => {}
                }
                gw.refresh_instances().await;
            }
        }))
    }

    /// Probes every upstream instance (TCP connect within `timeout`) until aborted; an
    /// instance that does not answer is skipped by the balancers until it does again.
    pub fn spawn_health_checks(
        &self,
        every: Duration,
        timeout: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let gw = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                gw.check_health(timeout).await;
            }
        })
    }

    /// One round of active health checks.
    pub async fn check_health(&self, timeout: Duration) {
        let mut seen = std::collections::HashSet::new();
        let endpoints: Vec<Arc<Endpoint>> = self
            .table()
            .iter()
            .flat_map(|r| r.balancer().endpoints().to_vec())
            .filter(|e| seen.insert(Arc::as_ptr(e) as usize))
            .collect();
        let probes = endpoints.iter().map(|e| async move {
            let ok = matches!(
                tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&e.address)).await,
                Ok(Ok(_))
            );
            if ok == e.is_down() {
                tracing::info!(instance = %e.address, healthy = ok, "Active health check changed an instance's state.");
            }
            e.set_down(!ok);
        });
        futures_util::future::join_all(probes).await;
    }

    /// Re-reads the instances of every route that names a registry service.
    pub async fn refresh_instances(&self) {
        let Some(registry) = &self.shared.opts.registry else {
            return;
        };
        for route in self.table().iter() {
            let Some(service) = &route.spec.upstream.service else {
                continue;
            };
            match registry.healthy(service).await {
                Ok(list) => {
                    route.set_instances(list.into_iter().map(|i| (i.address, i.weight)).collect())
                }
                Err(error) => {
                    tracing::warn!(route = %route.spec.id, %error, "Could not read instances; keeping the last known.");
                }
            }
        }
    }

    fn table(&self) -> Arc<Table<Arc<ActiveRoute>>> {
        self.shared
            .table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn activate(&self, spec: RouteSpec, matcher: Matcher) -> ActiveRoute {
        let o = &self.shared.opts;
        ActiveRoute::new(
            spec,
            matcher,
            o.clock.clone(),
            self.shared.metrics.clone(),
            o.outlier,
            o.pool_max_idle_per_host,
        )
    }
}
