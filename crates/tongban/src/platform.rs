//! The parts of figure 1 assembled for one process: service governance (registry and config
//! centre, embedded or NATS), the gateway (limits in process or in Redis), and identity, whose
//! sessions the gateway's auth-level check resolves callers against.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::request::Parts;
use serde::Deserialize;
use tokio::task::JoinHandle;
use tongban_core::config::{Config, Profile};
use tongban_core::routes::Routes;
use tongban_core::{ApiError, Code};
use tongban_crypto::keyring::Keyring;
use tongban_gateway::auth::AuthResolver;
use tongban_gateway::limit::{LocalLimiter, RedisLimiter};
use tongban_gateway::routed::Caller;
use tongban_gateway::sign::nonce::RedisNonces;
use tongban_gateway::{Gateway, GatewayOptions};
use tongban_governance::config::{EmbeddedConfig, NatsConfig};
use tongban_governance::notice::{Heard, NatsNotices};
use tongban_governance::registry::{EmbeddedRegistry, NatsRegistry, TcpProbe};
use tongban_governance::{ConfigCentre, Registry, Timings};
use tongban_identity::{ChangeFeed, Identity, IdentityConfig, KeySource};

use crate::app::AppState;
use tongban_keys::KeyService;

/// Governance, gateway and identity of one process, and the background tasks they run.
pub struct Platform {
    pub gateway: Gateway,
    pub registry: Arc<dyn Registry>,
    pub config_centre: Arc<dyn ConfigCentre>,
    pub identity: Arc<Identity>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Platform").finish_non_exhaustive()
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The gateway opens sealed bodies with the key service's envelope key pairs (rotations seen
/// on the next request).
#[derive(Debug)]
struct GatewayEnvelopeKeys(Arc<KeyService>);

impl tongban_gateway::envelope::EnvelopeKeySource for GatewayEnvelopeKeys {
    fn envelope_keys(&self) -> Arc<tongban_crypto::envelope::EnvelopeKeySet> {
        self.0.envelope_keys()
    }
}

/// Identity's keys come from the key service: a rotation made there is seen by identity on
/// its next call.
#[derive(Debug)]
struct IdentityKeys(Arc<KeyService>);

impl KeySource for IdentityKeys {
    fn ring(&self) -> Arc<Keyring> {
        self.0.ring()
    }

    fn envelope_keys(&self) -> Option<Arc<tongban_crypto::envelope::EnvelopeKeySet>> {
        Some(self.0.envelope_keys())
    }
}

/// The gateway's auth-level check, answered from identity's sessions.
#[derive(Debug)]
struct IdentityAuth(Arc<Identity>);

#[async_trait::async_trait]
impl AuthResolver for IdentityAuth {
    async fn resolve(&self, parts: &Parts) -> Result<Caller, ApiError> {
        let (token, device) = credentials(parts)?;
        // The gateway asks only after `resolve_now` said the cache cannot answer.
        Ok(gateway_caller(
            self.0.resolve_stored(token, device).await?.into(),
        ))
    }

    fn resolve_now(&self, parts: &Parts) -> Option<Result<Caller, ApiError>> {
        let (token, device) = match credentials(parts) {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(self.0.resolve_cached(token, device)?.map(gateway_caller))
    }
}

/// The request's access token (10006 without one) and device id.
fn credentials(parts: &Parts) -> Result<(&str, Option<&str>), ApiError> {
    let token = tongban_identity::routes::token_of(&parts.headers)
        .ok_or_else(|| ApiError::new(Code::TOKEN_MISSING))?;
    Ok((token, tongban_identity::routes::device_of(&parts.headers)))
}

/// What the gateway needs to know of an identity caller.
fn gateway_caller(s: tongban_identity::Standing) -> Caller {
    Caller {
        level: s.level,
        user: Some(s.user_id),
        app: None,
        face_age: s.face_age,
        session: Some(s.session_id),
        face_verified_at: s.face_verified_at,
    }
}

/// Real-name persons for the caller context, from identity's vault.
#[derive(Debug)]
struct IdentityPersons(Arc<Identity>);

#[async_trait::async_trait]
impl tongban_gateway::context::PersonSource for IdentityPersons {
    async fn person(&self, user_id: &str) -> Option<tongban_crypto::caller_context::Person> {
        match self.0.person_of(user_id).await {
            Ok(found) => found.map(|(name, id_number)| tongban_crypto::caller_context::Person {
                name,
                id_number,
            }),
            Err(error) => {
                tracing::warn!(error = %error, "The caller's person could not be read.");
                None
            }
        }
    }
}

/// Per-session signing keys for signed routes: the key id must name the session of the
/// request's own token, so a key cannot be used outside its session or after sign-out.
#[derive(Debug)]
struct SessionSigningKeys {
    identity: Arc<Identity>,
    keys: Arc<KeyService>,
}

#[async_trait::async_trait]
impl tongban_gateway::sign::SigningKeys for SessionSigningKeys {
    async fn key(&self, parts: &Parts, key_id: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let (token, device) = credentials(parts)?;
        let caller = self.identity.resolve(token, device).await?;
        Ok(
            tongban_identity::signing::key_for(&self.keys.ring(), key_id)
                .filter(|(session, _)| *session == caller.session_id)
                .map(|(_, key)| key),
        )
    }
}

/// The identity section of the configuration, checked (also by `tongban config check`).
pub fn identity_config(cfg: &Config) -> anyhow::Result<IdentityConfig> {
    IdentityConfig::deserialize(toml::Value::Table(cfg.identity.clone()))
        .map_err(|e| anyhow!("invalid [identity] section: {}", e.message()))
}

/// Identity's session changes as cluster notices: `u:<account id>`, or `*` for every account.
#[derive(Debug)]
struct SessionNotices(NatsNotices);

impl ChangeFeed for SessionNotices {
    fn announce(&self, user: Option<&str>) {
        match user {
            Some(u) => self.0.send(&format!("u:{u}")),
            None => self.0.send("*"),
        }
    }
}

/// Joins identity to the cluster's session notices: its changes are sent, the others' drop
/// what it cached. The task runs while the platform does.
async fn join_session_notices(
    url: &str,
    subject: &str,
    identity: &Arc<Identity>,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let (notices, mut heard, io) = NatsNotices::connect(url, subject)
        .await
        .map_err(|e| anyhow!("session notices on NATS: {e}"))?;
    identity.set_change_feed(Arc::new(SessionNotices(notices)));
    let id = identity.clone();
    let apply = tokio::spawn(async move {
        while let Some(h) = heard.recv().await {
            match &h {
                Heard::Notice(n) => match n.strip_prefix("u:") {
                    Some(user) => id.changed_elsewhere(Some(user)),
                    None if n == "*" => id.changed_elsewhere(None),
                    None => tracing::warn!("An unknown session notice was ignored."),
                },
                Heard::Resync => {
                    tracing::warn!(
                        "Session notices may have been missed while NATS was unreachable; the session cache is emptied."
                    );
                    id.changed_elsewhere(None);
                }
            }
        }
    });
    Ok(vec![io, apply])
}

// === impl Platform ===

impl Platform {
    /// Starts governance, the gateway (routes loaded from the config centre and watched) and
    /// identity, with embedded or cluster backends as configured.
    pub async fn start(state: &AppState) -> anyhow::Result<Platform> {
        let cfg = &state.config;
        let mut tasks = Vec::new();
        let probe = Arc::new(TcpProbe {
            timeout: Duration::from_secs(2),
        });
        let (config_centre, registry): (Arc<dyn ConfigCentre>, Arc<dyn Registry>) =
            if cfg.cluster.nats_url.is_empty() {
                let reg = EmbeddedRegistry::open(Timings::default(), Some(state.store.clone()))
                    .await
                    .context("registry")?;
                tasks.push(reg.spawn_maintenance(probe));
                (
                    Arc::new(EmbeddedConfig::new(state.store.clone())),
                    Arc::new(reg),
                )
            } else {
                let url = &cfg.cluster.nats_url;
                let prefix = &cfg.cluster.nats_bucket_prefix;
                let conf = NatsConfig::connect(url, &format!("{prefix}_config"))
                    .await
                    .map_err(|e| anyhow!("config centre on NATS: {e}"))?;
                let reg =
                    NatsRegistry::connect(url, &format!("{prefix}_registry"), Timings::default())
                        .await
                        .map_err(|e| anyhow!("registry on NATS: {e}"))?;
                tasks.push(reg.spawn_maintenance(probe));
                (Arc::new(conf), Arc::new(reg))
            };

        let mut id_cfg = (*state.identity).clone();
        if id_cfg.login.is_none() && cfg.profile == Profile::Test {
            // A newcomer can sign in at once: the test profile logs in through a simulated
            // identity platform on loopback, with documented test accounts (docs/identity.md).
            let scheme = if cfg.server.plain_http {
                "http"
            } else {
                "https"
            };
            let mut public = cfg.server.public_addr;
            if public.ip().is_unspecified() {
                public.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            let redirect = format!("{scheme}://{public}/api/v1/login-callbacks");
            let (login, task) = tongban_identity::ticket::simulator::TicketSimulator::serve_dev(
                Arc::new(tongban_core::clock::SystemClock),
                &redirect,
            )
            .await
            .context("login simulator")?;
            tracing::warn!(login_url = %login.login_url, "No login configured: signing in through the login simulator (test profile only).");
            id_cfg.login = Some(tongban_identity::config::LoginConfig::Ticket(login));
            tasks.push(task);
        }
        let simulators = id_cfg.simulators_in_use();
        if !simulators.is_empty() {
            if cfg.profile == Profile::Production {
                bail!(
                    "the production profile refuses identity simulators ({}); configure the \
                     real providers in [identity]",
                    simulators.join(", ")
                );
            }
            tracing::warn!(simulators = %simulators.join(", "), "Identity uses simulators (test profile only).");
        }
        let keys: Arc<dyn KeySource> = Arc::new(IdentityKeys(state.keys.clone()));
        let identity = Arc::new(
            Identity::from_config(
                state.store.clone(),
                keys,
                Arc::new(tongban_core::clock::SystemClock),
                id_cfg,
            )
            .map_err(|e| anyhow!("identity: {e}"))?,
        );

        if !cfg.cluster.nats_url.is_empty() {
            let subject = format!("{}.identity.sessions", cfg.cluster.nats_bucket_prefix);
            tasks.extend(join_session_notices(&cfg.cluster.nats_url, &subject, &identity).await?);
        }

        let limiter: Arc<dyn tongban_gateway::limit::RateLimiter> =
            if cfg.cluster.redis_url.is_empty() {
                Arc::new(LocalLimiter::default())
            } else {
                Arc::new(
                    RedisLimiter::connect(&cfg.cluster.redis_url, "tb:rl:", true)
                        .await
                        .map_err(|e| anyhow!("rate limits on Redis: {e}"))?,
                )
            };
        let mut opts = GatewayOptions::new(
            Arc::new(tongban_core::clock::SystemClock),
            limiter,
            Arc::new(IdentityAuth(identity.clone())),
        );
        opts.registry = Some(registry.clone());
        opts.keys = Arc::new(SessionSigningKeys {
            identity: identity.clone(),
            keys: state.keys.clone(),
        });
        opts.trusted_proxies = cfg.cluster.trusted_proxies.clone();
        opts.envelope_keys = Arc::new(GatewayEnvelopeKeys(state.keys.clone()));
        opts.caller_context = Arc::new(crate::caller_keys::CallerKeys::new(state.keys.clone()));
        opts.persons = Arc::new(IdentityPersons(identity.clone()));
        if !cfg.cluster.redis_url.is_empty() {
            opts.nonces = Arc::new(
                RedisNonces::connect(&cfg.cluster.redis_url, "tb:nonce:")
                    .await
                    .map_err(|e| anyhow!("nonce store on Redis: {e}"))?,
            );
        }
        let gateway = Gateway::new(opts);
        gateway
            .load(config_centre.as_ref())
            .await
            .map_err(|e| anyhow!("loading gateway routes: {e}"))?;
        tasks.push(
            gateway
                .watch_config(config_centre.clone())
                .await
                .map_err(|e| anyhow!("watching gateway routes: {e}"))?,
        );
        if let Some(t) = gateway.watch_registry(Duration::from_secs(5)) {
            tasks.push(t);
        }
        tasks.push(gateway.spawn_health_checks(Duration::from_secs(5), Duration::from_secs(1)));
        Ok(Platform {
            gateway,
            registry,
            config_centre,
            identity,
            tasks,
        })
    }

    /// The platform's public routes (identity's) and the gateway, which takes every other
    /// path (it answers 20404 where no route matches).
    pub fn public_parts(&self) -> crate::app::Parts {
        crate::app::Parts {
            routes: tongban_identity::routes::routes(self.identity.clone()),
            gateway: self.gateway.service(),
        }
    }

    /// The admin API: registry, gateway routes/breakers/stats, and Prometheus metrics (with
    /// the server certificate's expiry when the listeners use TLS); all but health need the
    /// admin token.
    pub fn admin_routes(&self, state: &AppState, cert_not_after: Option<u64>) -> Routes<AppState> {
        let gateway = self.gateway.clone();
        Routes::new()
            .merge(tongban_governance::registry::http::router(
                self.registry.clone(),
            ))
            .merge(tongban_gateway::admin::router(
                self.gateway.clone(),
                self.config_centre.clone(),
            ))
            .merge(crate::caller_keys::admin_routes(state.keys.clone()))
            .route(
                "/metrics",
                get(move || {
                    let mut body = gateway.render_metrics();
                    if let Some(not_after) = cert_not_after {
                        let now = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_secs());
                        body.push_str(&tongban_server::tls::expiry_metric(not_after, now));
                    }
                    async move {
                        (
                            [(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            body,
                        )
                    }
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                admin_auth,
            ))
    }
}

/// The admin token check: `Authorization: Bearer TOKEN` whose SM3 is `admin.token_sm3`.
async fn admin_auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let want = &state.config.admin.token_sm3;
    if want.is_empty() {
        // `serve` always sets one (generating it in the test profile); an embedding that did
        // not is closed, not open.
        tracing::warn!("Admin request refused: no admin token is configured.");
        return ApiError::new(Code::NOT_AUTHORIZED).into_response();
    }
    let Some(token) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return ApiError::new(Code::TOKEN_MISSING).into_response();
    };
    let got = tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3(token.as_bytes()));
    let want = want.to_ascii_lowercase();
    if tongban_crypto::sm3::ct_eq(got.as_bytes(), want.as_bytes()) {
        next.run(req).await
    } else {
        tracing::warn!("Admin request with a wrong token refused.");
        ApiError::new(Code::NOT_AUTHORIZED).into_response()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn identity_signs_with_the_key_the_key_service_keeps() {
        assert_eq!(
            tongban_keys::SESSION_SIGN,
            tongban_identity::signing::SESSION_SIGN_KEY
        );
    }
}
