//! Configuration: one TOML file plus `TONGBAN_*` environment overrides, with safe defaults so
//! that no file at all is a working embedded deployment. Validation names the key at fault.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mask;

/// Environment profile (clause 6.6 b): test and production are kept apart, and production
/// refuses what is only acceptable while testing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Profile {
    #[default]
    Test,
    Production,
}

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `test` or `production`.
    pub profile: Profile,
    /// Where the SQLite database, generated certificates and other state live.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub tls: TlsConfig,
    pub storage: StorageConfig,
    pub log: LogConfig,
    pub keys: KeysConfig,
    pub admin: AdminConfig,
    pub cluster: ClusterConfig,
    /// Identity: login adapter, face and real-name providers, token lifetimes, purposes. Its
    /// keys are checked by the binary against `tongban_identity::IdentityConfig`.
    pub identity: toml::Table,
}

/// The admin listener's API (routes, limits, breakers, registry, config centre).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// SM3 of the admin bearer token, 64 hex digits (`tongban admin-token` prints a token and
    /// its digest). Required in production; without it the test profile generates a token
    /// into `DATA_DIR/admin-token` (owner-readable only) and uses that.
    pub token_sm3: String,
}

/// Shared backends for running many instances. Empty: everything in process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT/DB`: shared rate limits and the nonce store of signed requests.
    pub redis_url: String,
    /// `nats://HOST:PORT`: registry and config centre in JetStream KV buckets.
    pub nats_url: String,
    /// Names the KV buckets (`PREFIX_config`, `PREFIX_registry`), so deployments (or test
    /// runs) can share one NATS without sharing state.
    pub nats_bucket_prefix: String,
    /// Front load balancers whose `X-Forwarded-For` is believed: addresses or ranges
    /// (`["10.0.0.2", "10.8.0.0/16"]`).
    pub trusted_proxies: Vec<crate::net::IpNet>,
}
/// The root key's components (clause 6.3.2.3 c): where each is kept. The root key is assembled
/// from them in memory at start-up and never stored whole.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// Component locations: `file:PATH`, `env:VARIABLE` or `db:NAME`; at least two, of at least
    /// two kinds. Empty in the test profile: `file:DATA_DIR/keys/root-component-1` and
    /// `db:root-component-2` (a development keyring, refused in production).
    pub components: Vec<String>,
}

/// Public-listener threads accepted in `server.workers`: more than any machine has CPUs.
const MAX_WORKERS: usize = 256;

/// Listeners and edge behaviour.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// The public listener (citizens, quick app, H5 pages, third-party callers).
    pub public_addr: SocketAddr,
    /// The administration listener; keep it on loopback or a management network.
    pub admin_addr: SocketAddr,
    /// Serve plain HTTP instead of HTTPS. Test profile and loopback addresses only.
    pub plain_http: bool,
    /// Answer HTTP 200 whatever the envelope code, for legacy clients.
    pub always_200: bool,
    /// Largest request body accepted, in bytes; larger bodies answer code 20000.
    pub max_body_bytes: usize,
    /// Seconds in-flight requests get to finish after SIGTERM before connections are closed.
    pub shutdown_grace_secs: u64,
    /// Seconds a client has to complete the TLS handshake (1 to 300).
    pub handshake_timeout_secs: u64,
    /// Threads serving the public listener, each with its own socket (`SO_REUSEPORT`) and
    /// event loop, so a request stays on one thread from accept to answer; 0: one per CPU.
    pub workers: usize,
    /// Seconds a client has to send a whole HTTP/1.1 request head, counted from the head's
    /// first byte (from the connection's start for its first request, which is also how long a
    /// new connection of either protocol may stay silent). Slow-loris: a head trickled a byte
    /// at a time holds a connection no longer than this. 1 to 300.
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may stay open with no request in progress: an HTTP/1.1 connection
    /// kept alive between two requests, or an HTTP/2 connection with no open stream (it then
    /// gets a GOAWAY and is closed). An idle connection costs the server memory and a file
    /// descriptor and gives nothing back. 1 to 3600.
    pub idle_timeout_secs: u64,
    /// Seconds a request body may pause between two reads, on either protocol; the request
    /// then fails (code 20000), and an HTTP/1.1 connection closes. Without it a client that
    /// never sends its body holds what the request holds (a stream, a route's concurrency slot)
    /// for as long as it likes. 1 to 300.
    pub body_read_timeout_secs: u64,
    /// HTTP/2 streams (requests) one connection may have open at once, advertised in the
    /// server's SETTINGS; more are refused by the protocol. 1 to 1000.
    pub h2_max_concurrent_streams: u32,
    /// Largest HTTP/2 request header list, in bytes as RFC 9113 counts them (each field's name
    /// and value plus 32), advertised in SETTINGS; a larger one is answered 431. The default
    /// matches HTTP/1.1's fixed 64 KiB request-head limit (which counts the request line and
    /// the raw header lines instead), so a request one protocol accepts the other does too.
    /// 1024 to 1048576.
    pub h2_max_header_list_bytes: u32,
    /// Seconds between the PINGs sent on an HTTP/2 connection to learn whether the client is
    /// still there (counted from the last frame received). 1 to 3600.
    pub h2_keepalive_interval_secs: u64,
    /// Seconds the client gets to answer a PING (a keep-alive one, or the one that goes with a
    /// closing connection's GOAWAY) before the connection is dropped: a dead peer does not hold
    /// its connection until TCP notices. 1 to 300.
    pub h2_keepalive_timeout_secs: u64,
}

/// Server certificate. With neither set, the test profile generates a self-signed pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: Option<PathBuf>,
    /// PEM certificates of the authorities the chain must lead to (a government private CA,
    /// say); empty: the system's store, `/etc/ssl/certs/ca-certificates.crt`. Checked in the
    /// production profile.
    pub ca_bundle: Option<PathBuf>,
    /// The host names clients reach the platform by; in the production profile the
    /// certificate must be valid for each, and at least one is required.
    pub server_names: Vec<String>,
}

/// Persistent storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// `sqlite://PATH` or `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`. Empty: SQLite in data_dir.
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: u32,
}

/// Logging.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A `tracing` filter, for example `info` or `info,tongban_store=debug`.
    pub level: String,
    /// `json` (default, for log centres) or `text` (for a terminal). Both are masked.
    pub format: LogFormat,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Json,
    Text,
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("invalid environment override {var}: {message}")]
    Env { var: String, message: String },
    #[error("invalid setting `{key}`{}: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        key: String,
        line: Option<usize>,
        message: String,
    },
}

// === defaults ===

impl Default for Config {
    fn default() -> Self {
        Self {
            profile: Profile::Test,
            data_dir: PathBuf::from("data"),
            server: ServerConfig::default(),
            tls: TlsConfig::default(),
            storage: StorageConfig::default(),
            log: LogConfig::default(),
            keys: KeysConfig::default(),
            admin: AdminConfig::default(),
            cluster: ClusterConfig::default(),
            identity: toml::Table::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([0, 0, 0, 0], 8443)),
            admin_addr: SocketAddr::from(([127, 0, 0, 1], 9443)),
            plain_http: false,
            always_200: false,
            max_body_bytes: 1024 * 1024,
            shutdown_grace_secs: 30,
            handshake_timeout_secs: 10,
            workers: 0,
            header_read_timeout_secs: 30,
            idle_timeout_secs: 30,
            body_read_timeout_secs: 30,
            h2_max_concurrent_streams: 100,
            h2_max_header_list_bytes: 64 * 1024,
            h2_keepalive_interval_secs: 60,
            h2_keepalive_timeout_secs: 20,
        }
    }
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            nats_url: String::new(),
            nats_bucket_prefix: "tongban".to_owned(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Json,
        }
    }
}

// === impl Config ===

/// Prefix of environment overrides: `TONGBAN_PROFILE`, `TONGBAN_SERVER__PUBLIC_ADDR` (a double
/// underscore separates a section from its key).
pub const ENV_PREFIX: &str = "TONGBAN_";

impl Config {
    /// Loads the file (if any), applies environment overrides, and validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let (text, mut table) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                // Deserialising the text itself first gives errors with line and column.
                toml::from_str::<Config>(&text).map_err(|e| ConfigError::File {
                    path: p.to_owned(),
                    message: e.to_string().trim_end().to_owned(),
                })?;
                let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::File {
                    path: p.to_owned(),
                    message: e.to_string(),
                })?;
                (Some(text), table)
            }
            None => (None, toml::Table::new()),
        };
        let mut vars: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        vars.sort();
        for (var, value) in &vars {
            apply_env(&mut table, var, value)?;
            // Check each override alone so the error names the variable.
            Config::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
                ConfigError::Env {
                    var: var.clone(),
                    message: e.message().to_owned(),
                }
            })?;
        }
        let cfg = Config::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Env {
            var: "TONGBAN_*".to_owned(),
            message: e.message().to_owned(),
        })?;
        cfg.validate().map_err(|mut e| {
            if let (ConfigError::Invalid { key, line, .. }, Some(text)) = (&mut e, &text) {
                *line = line_of_key(text, key);
            }
            e
        })?;
        Ok(cfg)
    }

    /// Checks the rules that types alone cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: &str| ConfigError::Invalid {
            key: key.to_owned(),
            line: None,
            message: message.to_owned(),
        };
        if self.server.plain_http {
            if self.profile == Profile::Production {
                return Err(invalid(
                    "server.plain_http",
                    "plain HTTP is refused in the production profile (clause 6.3.2.2 a: HTTPS only)",
                ));
            }
            for (key, addr) in [
                ("server.public_addr", self.server.public_addr),
                ("server.admin_addr", self.server.admin_addr),
            ] {
                if !addr.ip().is_loopback() {
                    return Err(invalid(
                        key,
                        "plain HTTP may only listen on a loopback address",
                    ));
                }
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid(
                "tls.cert",
                "tls.cert and tls.key must be set together",
            ));
        }
        if self.server.workers > MAX_WORKERS {
            return Err(invalid(
                "server.workers",
                &format!("at most {MAX_WORKERS} threads (0: one per CPU)"),
            ));
        }
        if self.profile == Profile::Production
            && self.tls.cert.is_some()
            && self.tls.server_names.is_empty()
        {
            return Err(invalid(
                "tls.server_names",
                "the production profile needs the host names the certificate must cover",
            ));
        }
        if self.profile == Profile::Production && self.tls.cert.is_none() {
            return Err(invalid(
                "tls.cert",
                "the production profile needs a CA-issued certificate (tls.cert and tls.key)",
            ));
        }
        if self.server.public_addr == self.server.admin_addr {
            return Err(invalid(
                "server.admin_addr",
                "the admin listener must not share the public listener's address",
            ));
        }
        let s = &self.server;
        // Zero would refuse every client at once; the upper bounds catch a value meant in
        // other units (milliseconds, KiB) and limits that would undo what the setting is for.
        let bounded = |key: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                let message = format!("{value} is out of range: {min} to {max}");
                Err(invalid(&format!("server.{key}"), &message))
            }
        };
        bounded("handshake_timeout_secs", s.handshake_timeout_secs, 1, 300)?;
        bounded(
            "header_read_timeout_secs",
            s.header_read_timeout_secs,
            1,
            300,
        )?;
        bounded("idle_timeout_secs", s.idle_timeout_secs, 1, 3600)?;
        bounded("body_read_timeout_secs", s.body_read_timeout_secs, 1, 300)?;
        bounded(
            "h2_max_concurrent_streams",
            s.h2_max_concurrent_streams.into(),
            1,
            1000,
        )?;
        bounded(
            "h2_max_header_list_bytes",
            s.h2_max_header_list_bytes.into(),
            1024,
            1 << 20,
        )?;
        bounded(
            "h2_keepalive_interval_secs",
            s.h2_keepalive_interval_secs,
            1,
            3600,
        )?;
        bounded(
            "h2_keepalive_timeout_secs",
            s.h2_keepalive_timeout_secs,
            1,
            300,
        )?;
        if self.server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be greater than 0"));
        }
        if self.storage.max_connections == 0 {
            return Err(invalid("storage.max_connections", "must be greater than 0"));
        }
        if self.profile == Profile::Production && self.keys.components.is_empty() {
            return Err(invalid(
                "keys.components",
                "the production profile needs the root key's component locations (file:, env:, db:)",
            ));
        }
        for c in &self.keys.components {
            let ok = ["file:", "env:", "db:"]
                .iter()
                .any(|p| c.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
            if !ok {
                return Err(invalid(
                    "keys.components",
                    &format!("{c:?} is not file:PATH, env:VARIABLE or db:NAME"),
                ));
            }
        }
        if !self.keys.components.is_empty() {
            let kinds: std::collections::BTreeSet<&str> = self
                .keys
                .components
                .iter()
                .filter_map(|c| c.split(':').next())
                .collect();
            if self.keys.components.len() < 2 || kinds.len() < 2 {
                return Err(invalid(
                    "keys.components",
                    "keep at least two components in at least two kinds of place",
                ));
            }
        }
        let t = &self.admin.token_sm3;
        if !t.is_empty() && (t.len() != 64 || !t.bytes().all(|c| c.is_ascii_hexdigit())) {
            return Err(invalid(
                "admin.token_sm3",
                "expected 64 hex digits (an SM3 digest)",
            ));
        }
        if self.profile == Profile::Production && t.is_empty() {
            return Err(invalid(
                "admin.token_sm3",
                "the production profile needs an admin token (tongban admin-token makes one)",
            ));
        }
        if !self.cluster.redis_url.is_empty() && !self.cluster.redis_url.starts_with("redis://") {
            return Err(invalid(
                "cluster.redis_url",
                "expected redis://HOST:PORT[/DB]",
            ));
        }
        if !self.cluster.nats_url.is_empty() && !self.cluster.nats_url.starts_with("nats://") {
            return Err(invalid("cluster.nats_url", "expected nats://HOST:PORT"));
        }
        let p = &self.cluster.nats_bucket_prefix;
        if p.is_empty()
            || !p
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return Err(invalid(
                "cluster.nats_bucket_prefix",
                "letters, digits, '_' and '-' only",
            ));
        }
        let url = self.storage.url.as_str();
        if !url.is_empty()
            && !url.starts_with("sqlite:")
            && !url.starts_with("postgres://")
            && !url.starts_with("postgresql://")
        {
            return Err(invalid(
                "storage.url",
                "expected sqlite:PATH or postgres://USER@HOST/DB",
            ));
        }
        Ok(())
    }

    /// The storage URL in force: the configured one, or SQLite in the data directory.
    pub fn storage_url(&self) -> String {
        if self.storage.url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("tongban.db").display())
        } else {
            self.storage.url.clone()
        }
    }

    /// The effective configuration as TOML with secrets masked, for `tongban config check`.
    pub fn to_masked_toml(&self) -> String {
        let mut shown = self.clone();
        shown.storage.url = mask::mask_url(&self.storage_url());
        shown.cluster.redis_url = mask::mask_url(&self.cluster.redis_url);
        shown.cluster.nats_url = mask::mask_url(&self.cluster.nats_url);
        let text =
            toml::to_string_pretty(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        // Secrets anywhere else (identity's client_secret, api_key, …) by their key names.
        mask::mask_text(&text).into_owned()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Profile::Test => "test",
            Profile::Production => "production",
        })
    }
}

/// `TONGBAN_SERVER__PUBLIC_ADDR=...` sets `server.public_addr`.
fn apply_env(table: &mut toml::Table, var: &str, value: &str) -> Result<(), ConfigError> {
    let path: Vec<String> = var[ENV_PREFIX.len()..]
        .split("__")
        .map(str::to_ascii_lowercase)
        .collect();
    if path.iter().any(String::is_empty) || path.len() > 2 {
        return Err(ConfigError::Env {
            var: var.to_owned(),
            message: "expected TONGBAN_KEY or TONGBAN_SECTION__KEY".to_owned(),
        });
    }
    // Typed as TOML when it parses as a scalar (numbers, booleans), else taken as a string.
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .filter(|v| !v.is_table() && !v.is_array())
        .unwrap_or_else(|| toml::Value::String(value.to_owned()));
    let mut cur = table;
    for section in &path[..path.len() - 1] {
        let entry = cur
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry.as_table_mut().ok_or_else(|| ConfigError::Env {
            var: var.to_owned(),
            message: format!("`{section}` is not a section"),
        })?;
    }
    if let Some(last) = path.last() {
        cur.insert(last.clone(), parsed);
    }
    Ok(())
}

/// The line on which `section.key` (or a top-level key) is set in `text`, for error messages.
fn line_of_key(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            current = s.trim().to_owned();
            continue;
        }
        let set_here = l.split_once('=').is_some_and(|(k, _)| k.trim() == key);
        if set_here && current == section {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests;
