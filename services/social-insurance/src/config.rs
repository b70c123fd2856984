//! What the service needs to run: where it listens, its database, the provincial system, the
//! key of its audit log's blind index, and how it learns its caller-context keys. Secrets are
//! held zeroizing and never shown by `Debug`.

use std::fmt;
use std::net::SocketAddr;

use tongban_crypto::Sm4Key;
use tongban_crypto::caller_context::ContextKey;
use tongban_crypto::encoding::hex_decode;
use tongban_sdk::platform::PlatformConfig;
use tongban_sdk::third_party::ThirdPartyConfig;
use zeroize::Zeroizing;

/// The registry name the gateway routes to (`routes()`), unless told another.
pub const DEFAULT_SERVICE_NAME: &str = "social-insurance";

/// Largest request body by default: a query is a few hundred bytes.
const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// How the service runs; [`Config::new`] fills every field that has a default.
#[derive(Debug)]
pub struct Config {
    /// The registry name, and the service caller contexts must be sealed for.
    pub service_name: String,
    /// Where to listen; port 0 picks a free one (`RunningService::addr` tells which).
    pub addr: SocketAddr,
    /// `host:port` registered for the gateway to connect to; the bound address when `None`
    /// (set it when listening on `0.0.0.0`).
    pub advertise: Option<String>,
    /// `sqlite:…` or `postgres://…`; the service's own tables are migrated at start.
    pub database_url: String,
    /// The provincial system: address, timeouts (by default connect 1 s, read 3 s, total 5 s,
    /// see [`province_config`]), retries, breaker and key.
    pub province: ThirdPartyConfig,
    /// The key of the query log's blind index of ID numbers.
    pub index_key: IndexKey,
    /// Where the caller-context keys come from, and whether the instance registers.
    pub platform: Platform,
    /// Largest request body accepted, bytes (default 64 KiB); a larger one answers 20000.
    pub max_body_bytes: usize,
}

/// Where the service's caller-context keys come from.
#[derive(Debug)]
pub enum Platform {
    /// The platform's admin API: the keys are fetched from it (and again after a rotation),
    /// and the instance is registered, beating, until shutdown.
    Admin(PlatformConfig),
    /// Fixed keys and no registration: tests, or keys delivered another way to an instance
    /// the gateway reaches through a route's static `instances`.
    Keys(Vec<ContextKey>),
}

/// The blind-index key of the query log: 16 bytes, with the version stored beside every
/// index it made so that a new key can be introduced while old rows are still searchable.
#[derive(Clone)]
pub struct IndexKey {
    pub(crate) version: u32,
    pub(crate) key: Sm4Key,
}

/// Why a configuration value cannot be used; names the value, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the index key must be 32 hexadecimal digits (16 bytes)")]
    IndexKey,
    #[error("the index key version must be above 0")]
    IndexKeyVersion,
}

// === impl Config ===

impl Config {
    /// A configuration with every default: listening on `127.0.0.1:0`, the service named
    /// [`DEFAULT_SERVICE_NAME`], the province at `province_url` with [`province_config`].
    pub fn new(
        database_url: impl Into<String>,
        province_url: impl Into<String>,
        index_key: IndexKey,
        platform: Platform,
    ) -> Self {
        Self {
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: None,
            database_url: database_url.into(),
            province: province_config(province_url),
            index_key,
            platform,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// The provincial system at `base_url` with this service's timeouts: connect 1 s, read 3 s,
/// total 5 s. A citizen waits on the answer, so a silent province fails in seconds, not the
/// client's default ten; the gateway route's own timeouts leave room for this one.
pub fn province_config(base_url: impl Into<String>) -> ThirdPartyConfig {
    let mut c = ThirdPartyConfig::new("province-social-insurance", base_url);
    c.connect_timeout_ms = 1_000;
    c.read_timeout_ms = 3_000;
    c.total_timeout_ms = 5_000;
    c
}

// === impl IndexKey ===

impl IndexKey {
    pub fn new(version: u32, key: Sm4Key) -> Result<Self, ConfigError> {
        if version == 0 {
            return Err(ConfigError::IndexKeyVersion);
        }
        Ok(Self { version, key })
    }

    /// A key written as 32 hexadecimal digits (surrounding whitespace ignored, as in a file).
    pub fn from_hex(version: u32, hex: &str) -> Result<Self, ConfigError> {
        let bytes =
            Zeroizing::new(hex_decode(hex.trim(), "index key").map_err(|_| ConfigError::IndexKey)?);
        let key = Sm4Key::from_slice(&bytes).map_err(|_| ConfigError::IndexKey)?;
        Self::new(version, key)
    }

    pub fn version(&self) -> u32 {
        self.version
    }
}

impl fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IndexKey(v{}, ***)", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_key_is_checked_and_never_shown() {
        let k = IndexKey::from_hex(3, " 000102030405060708090a0b0c0d0e0f\n").expect("valid");
        assert_eq!(k.version(), 3);
        assert_eq!(format!("{k:?}"), "IndexKey(v3, ***)");
        assert!(IndexKey::from_hex(1, "0001").is_err());
        assert!(IndexKey::from_hex(1, "zz0102030405060708090a0b0c0d0e0f").is_err());
        assert!(IndexKey::from_hex(0, "000102030405060708090a0b0c0d0e0f").is_err());
    }

    #[test]
    fn the_province_fails_within_seconds() {
        let c = province_config("http://127.0.0.1:18080");
        assert_eq!(
            (c.connect_timeout_ms, c.read_timeout_ms, c.total_timeout_ms),
            (1_000, 3_000, 5_000)
        );
        assert!(c.validate().is_ok());
    }
}
