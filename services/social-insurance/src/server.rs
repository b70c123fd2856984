//! Running the service: storage migrated, the province client, the caller-context keys, the
//! listener, and the instance registered once it listens; on shutdown, deregistered first so
//! the gateway stops sending before the listener closes.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tongban_sdk::Registration;
use tongban_sdk::context::ContextVerifier;
use tongban_sdk::platform::{PlatformClient, PlatformError};
use tongban_sdk::service::{HEARTBEAT_EVERY, Registered};
use tongban_sdk::third_party::{self, ThirdPartyClient};
use tongban_store::{Store, StoreError, StoreOptions};

use crate::app::{Shared, router};
use crate::codes;
use crate::config::{Config, Platform};
use crate::query_log::QueryLog;

/// A running service; [`RunningService::shutdown`] deregisters and stops it, dropping it stops
/// it (without deregistering: the registry forgets it after its timeout).
#[derive(Debug)]
pub struct RunningService {
    addr: SocketAddr,
    log: Arc<QueryLog>,
    registered: Option<Registered>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

/// Why the service could not start. Each names its cause in its text (and so has no
/// `source`, which would print it twice in a chain).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("the service's codes: {0}")]
    Codes(tongban_core::code::RegistryError),
    #[error("the province: {0}")]
    Province(third_party::ConfigError),
    #[error("storage: {0}")]
    Store(StoreError),
    #[error("the platform: {0}")]
    Platform(PlatformError),
    #[error("cannot listen on {addr}: {error}")]
    Listen { addr: SocketAddr, error: io::Error },
}

/// Starts the service as `config` says; must be called within a tokio runtime.
pub async fn serve(config: Config) -> Result<RunningService, ServeError> {
    let codes = codes::table().map_err(ServeError::Codes)?;
    let province = ThirdPartyClient::new(config.province).map_err(ServeError::Province)?;
    let store = Store::open(&StoreOptions::new(config.database_url))
        .await
        .map_err(ServeError::Store)?;
    let log = QueryLog::open(store, &config.index_key)
        .await
        .map_err(ServeError::Store)?;
    let log = Arc::new(log);
    let (verifier, platform) = match config.platform {
        Platform::Admin(cfg) => {
            let platform = PlatformClient::new(&cfg).map_err(ServeError::Platform)?;
            let verifier = ContextVerifier::fetch(&config.service_name, platform.clone())
                .await
                .map_err(ServeError::Platform)?;
            (verifier, Some(platform))
        }
        Platform::Keys(keys) => (ContextVerifier::with_keys(&config.service_name, keys), None),
    };
    let listen_failed = |error| ServeError::Listen {
        addr: config.addr,
        error,
    };
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(listen_failed)?;
    let addr = listener.local_addr().map_err(listen_failed)?;
    let app = router(
        Shared {
            verifier: Arc::new(verifier),
            province,
            log: log.clone(),
            codes,
        },
        config.max_body_bytes,
    );
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    let mut running = RunningService {
        addr,
        log,
        registered: None,
        stop,
        task: Some(task),
    };
    if let Some(platform) = platform {
        // Registered only once listening: the gateway may send at once.
        let registration = Registration {
            service: config.service_name.clone(),
            address: config.advertise.unwrap_or_else(|| addr.to_string()),
            weight: 100,
            metadata: BTreeMap::from([(
                "version".to_owned(),
                env!("CARGO_PKG_VERSION").to_owned(),
            )]),
            persistent: false,
        };
        match Registered::start(platform, registration, HEARTBEAT_EVERY).await {
            Ok(r) => running.registered = Some(r),
            Err(error) => {
                running.shutdown().await;
                return Err(ServeError::Platform(error));
            }
        }
    }
    tracing::info!(service = %config.service_name, %addr, "Social-insurance service listening.");
    Ok(running)
}

// === impl RunningService ===

impl RunningService {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The audit log of queries.
    pub fn query_log(&self) -> &QueryLog {
        &self.log
    }

    /// The instance id in the registry, when registered.
    pub fn instance_id(&self) -> Option<String> {
        self.registered.as_ref().map(Registered::id)
    }

    /// Deregisters (so the gateway stops sending at once), then stops accepting, lets the
    /// requests in flight finish and closes the database.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.registered.take()
            && let Err(error) = r.deregister().await
        {
            tracing::warn!(%error, "Deregistering failed; the registry forgets the instance after its timeout.");
        }
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "The server stopped with an error."),
                Err(error) => tracing::warn!(%error, "The server task failed."),
            }
        }
        self.log.store().close().await;
        tracing::info!("Social-insurance service stopped.");
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
