//! The identity service: storage, keys, clock, configuration and the providers it calls.

use std::sync::Arc;
use std::time::Duration;

use tongban_crypto::keyring::Keyring;
use tongban_crypto::vault::{FieldRef, Vault};
use tongban_store::Store;

use crate::KeySource;
use crate::config::{FaceConfig, IdentityConfig, LoginConfig, RealNameConfig};
use crate::error::IdentityError;
use crate::face::{FaceProvider, FaceSimulator, HttpFaceProvider};
use crate::login::LoginAdapter;
use crate::oidc::OidcRp;
use crate::realname::{HttpRealNameProvider, RealNameProvider, RealNameSimulator};
use crate::session_cache::{ChangeFeed, SessionCache};
use crate::ticket::TicketAdapter;
use tongban_core::clock::Clock;

/// Everything the service is built from.
pub struct IdentityParts {
    pub store: Store,
    pub keys: Arc<dyn KeySource>,
    pub clock: Arc<dyn Clock>,
    pub config: IdentityConfig,
    pub real_name: Arc<dyn RealNameProvider>,
    pub face: Arc<dyn FaceProvider>,
    /// The external login configured (OIDC or platform ticket), if any.
    pub login: Option<Arc<dyn LoginAdapter>>,
}

/// Accounts, sessions, real-name, face verification, consent and external login.
pub struct Identity {
    pub(crate) store: Store,
    pub(crate) keys: Arc<dyn KeySource>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) cfg: IdentityConfig,
    pub(crate) real_name: Arc<dyn RealNameProvider>,
    pub(crate) face: Arc<dyn FaceProvider>,
    pub(crate) login: Option<Arc<dyn LoginAdapter>>,
    pub(crate) sessions: SessionCache,
}

// === impl Identity ===

impl std::fmt::Debug for IdentityParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityParts")
            .field("backend", &self.store.backend())
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Builds the service and the providers its configuration names.
    pub fn from_config(
        store: Store,
        keys: Arc<dyn KeySource>,
        clock: Arc<dyn Clock>,
        config: IdentityConfig,
    ) -> Result<Self, IdentityError> {
        let face: Arc<dyn FaceProvider> = match &config.face {
            FaceConfig::Simulator { live_image } => Arc::new(FaceSimulator {
                live_image: live_image.as_bytes().to_vec(),
            }),
            FaceConfig::Http(h) => Arc::new(HttpFaceProvider::new(
                &h.url,
                &h.api_key,
                Duration::from_secs(h.timeout_secs),
            )?),
        };
        let real_name: Arc<dyn RealNameProvider> = match &config.real_name {
            RealNameConfig::Simulator { accept_unknown } => {
                Arc::new(RealNameSimulator::new(*accept_unknown))
            }
            RealNameConfig::Http(h) => Arc::new(HttpRealNameProvider::new(
                &h.url,
                &h.api_key,
                Duration::from_secs(h.timeout_secs),
            )?),
        };
        let login: Option<Arc<dyn LoginAdapter>> = match &config.login {
            None => None,
            Some(LoginConfig::Oidc(c)) => Some(Arc::new(OidcRp::new(c.clone(), clock.clone())?)),
            Some(LoginConfig::Ticket(c)) => Some(Arc::new(TicketAdapter::new(c.clone())?)),
        };
        Ok(Self::new(IdentityParts {
            store,
            keys,
            clock,
            config,
            real_name,
            face,
            login,
        }))
    }

    pub fn new(parts: IdentityParts) -> Self {
        Self {
            store: parts.store,
            keys: parts.keys,
            clock: parts.clock,
            sessions: SessionCache::new(Duration::from_millis(parts.config.session_cache_ms)),
            cfg: parts.config,
            real_name: parts.real_name,
            face: parts.face,
            login: parts.login,
        }
    }

    /// Tells `feed` every change of an account's sessions made here, so the cluster's other
    /// instances drop what they cached of it; see [`ChangeFeed`]. Set once; `false` if a feed
    /// was already set.
    pub fn set_change_feed(&self, feed: Arc<dyn ChangeFeed>) -> bool {
        self.sessions.set_feed(feed)
    }

    /// A change another instance made to `user`'s sessions (every account's when `None`, as
    /// after notices may have been missed): what this instance cached of them is dropped, and
    /// reads of them begun before now are not kept.
    pub fn changed_elsewhere(&self, user: Option<&str>) {
        self.sessions.changed_elsewhere(user);
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.cfg
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn ring(&self) -> Arc<Keyring> {
        self.keys.ring()
    }

    pub(crate) fn envelope_keys(&self) -> Option<Arc<tongban_crypto::envelope::EnvelopeKeySet>> {
        self.keys.envelope_keys()
    }

    /// Encrypts a personal value for its table, column and row.
    pub(crate) fn seal(
        &self,
        table: &str,
        column: &str,
        row_id: &str,
        value: &str,
    ) -> Result<String, IdentityError> {
        let ring = self.ring();
        let vault = Vault::new(&*ring, &self.cfg.pii_data_key, &self.cfg.pii_index_key);
        Ok(vault.encrypt_str(
            &FieldRef {
                table,
                column,
                row_id,
            },
            value,
        )?)
    }

    /// Decrypts a personal value stored by [`Identity::seal`].
    pub(crate) fn open(
        &self,
        table: &str,
        column: &str,
        row_id: &str,
        stored: &str,
    ) -> Result<zeroize::Zeroizing<String>, IdentityError> {
        let ring = self.ring();
        let vault = Vault::new(&*ring, &self.cfg.pii_data_key, &self.cfg.pii_index_key);
        Ok(vault.decrypt_str(
            &FieldRef {
                table,
                column,
                row_id,
            },
            stored,
        )?)
    }

    /// Blind index of an already normalised value.
    pub(crate) fn index(
        &self,
        table: &str,
        column: &str,
        value: &str,
    ) -> Result<String, IdentityError> {
        let ring = self.ring();
        let vault = Vault::new(&*ring, &self.cfg.pii_data_key, &self.cfg.pii_index_key);
        Ok(vault.blind_index(table, column, value)?.value)
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("backend", &self.store.backend())
            .field("login", &self.login.as_ref().map(|l| l.name().to_owned()))
            .finish_non_exhaustive()
    }
}
