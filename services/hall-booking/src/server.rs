//! Running the service: storage opened and migrated, slots generated, the caller-context keys
//! fetched, the listener bound, then registration with the platform, so the gateway never
//! learns of an instance that cannot answer yet. Shutdown runs the other way round.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tongban_core::clock::{Clock, SystemClock};
use tongban_crypto::caller_context::ContextKey;
use tongban_sdk::Registration;
use tongban_sdk::codes::BusinessCodes;
use tongban_sdk::context::ContextVerifier;
use tongban_sdk::platform::{PlatformClient, PlatformConfig, PlatformError};
use tongban_sdk::service::{HEARTBEAT_EVERY, Registered};
use tongban_store::{Store, StoreError, StoreOptions};

use crate::app::{AppState, codes, router};
use crate::db::Db;
use crate::schedule::LocalDate;

/// The name the service registers under, and that caller contexts must be made for.
pub const SERVICE_NAME: &str = "hall-booking";

/// Slots are generated, and old idempotency keys forgotten, this often (and at start).
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);

/// Idempotency keys are kept this long: far longer than any client retries.
const KEEP_KEYS_MS: i64 = 24 * 3_600_000;

/// How the service runs.
#[derive(Debug)]
pub struct Config {
    /// Where to listen; port 0 picks a free one ([`HallBooking::addr`] tells which).
    pub addr: SocketAddr,
    /// `sqlite://PATH` or `postgres://…`; the service's tables are its own (`hb_*`).
    pub database_url: String,
    /// The registry name; contexts made for another service are refused.
    pub service_name: String,
    /// Where the caller-context keys come from, and whether to register.
    pub platform: Platform,
    /// `host:port` the gateway should call, when not `addr` (listening on `0.0.0.0`).
    pub advertise: Option<String>,
    /// "Now" for every booking rule: slot generation, past slots, the cancellation deadline.
    pub clock: Arc<dyn Clock>,
}

/// Where the service gets its caller-context keys.
#[derive(Debug)]
pub enum Platform {
    /// The platform's admin API: the keys are fetched from it (again on a rotation) and the
    /// instance registered, kept alive by heartbeats and deregistered at shutdown.
    Admin(PlatformConfig),
    /// Fixed keys and no registration: tests, or a platform that hands keys over in process.
    Keys(Vec<ContextKey>),
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("storage")]
    Store(#[from] StoreError),
    #[error("the platform's admin API")]
    Platform(#[from] PlatformError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("business codes")]
    Codes(#[from] tongban_core::code::RegistryError),
}

/// The running service; [`HallBooking::shutdown`] stops it cleanly, dropping it stops it too
/// (without deregistering).
#[derive(Debug)]
pub struct HallBooking {
    addr: SocketAddr,
    store: Store,
    registered: Option<Registered>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
    maintenance: JoinHandle<()>,
}

// === impl Config ===

impl Config {
    /// Defaults: the name `hall-booking`, the system clock, `addr` advertised.
    pub fn new(addr: SocketAddr, database_url: impl Into<String>, platform: Platform) -> Self {
        Self {
            addr,
            database_url: database_url.into(),
            service_name: SERVICE_NAME.to_owned(),
            platform,
            advertise: None,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Starts the service; it runs on the caller's tokio runtime until shut down or dropped.
pub async fn serve(config: Config) -> Result<HallBooking, ServeError> {
    let codes = Arc::new(BusinessCodes::new("b", codes::ALL)?);
    let store = Store::open(&StoreOptions::new(config.database_url.clone())).await?;
    let db = Db::open(store.clone()).await?;
    let made = db
        .ensure_slots(LocalDate::at(config.clock.now_ms()))
        .await?;
    tracing::info!(slots = made, "Time slots generated.");
    let (verifier, platform) = match config.platform {
        Platform::Admin(cfg) => {
            let client = PlatformClient::new(&cfg)?;
            let verifier = ContextVerifier::fetch(&config.service_name, client.clone()).await?;
            (verifier, Some(client))
        }
        Platform::Keys(keys) => (ContextVerifier::with_keys(&config.service_name, keys), None),
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.addr,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr,
        source,
    })?;
    let app = router(AppState {
        verifier: Arc::new(verifier),
        db: db.clone(),
        clock: config.clock.clone(),
        codes,
    });
    let (stop, stopped) = watch::channel(false);
    let mut until = stopped.clone();
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = until.wait_for(|s| *s).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(%error, "The listener failed.");
        }
    });
    let maintenance = tokio::spawn(maintain(db, config.clock, stopped));
    let registered = match platform {
        Some(client) => {
            let registration = Registration {
                service: config.service_name.clone(),
                address: config.advertise.unwrap_or_else(|| addr.to_string()),
                weight: 100,
                metadata: Default::default(),
                persistent: false,
            };
            Some(Registered::start(client, registration, HEARTBEAT_EVERY).await?)
        }
        None => None,
    };
    tracing::info!(%addr, service = %config.service_name, "Hall booking listening.");
    Ok(HallBooking {
        addr,
        store,
        registered,
        stop,
        server: Some(server),
        maintenance,
    })
}

/// Keeps the booking window full as days pass, and forgets old idempotency keys.
async fn maintain(db: Db, clock: Arc<dyn Clock>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(MAINTENANCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        let now = clock.now_ms();
        if let Err(error) = db.ensure_slots(LocalDate::at(now)).await {
            tracing::warn!(%error, "Time slots could not be generated.");
        }
        if let Err(error) = db.purge_keys(now - KEEP_KEYS_MS).await {
            tracing::warn!(%error, "Old idempotency keys could not be removed.");
        }
    }
}

// === impl HallBooking ===

impl HallBooking {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The storage, for operators' tools and tests that look at the tables.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The instance id the registry knows, when registered.
    pub fn instance_id(&self) -> Option<String> {
        self.registered.as_ref().map(Registered::id)
    }

    /// Deregisters first (the gateway stops sending at once), then lets requests in flight
    /// finish and stops.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.registered.take()
            && let Err(error) = r.deregister().await
        {
            tracing::warn!(%error, "Deregistering failed; the registry will time the instance out.");
        }
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        self.store.close().await;
    }
}

impl Drop for HallBooking {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.maintenance.abort();
    }
}
