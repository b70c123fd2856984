//! How a service reaches one third-party system: where it is, how long each phase of a call
//! may take, retries, the breaker and the key. Every field but the name and the address has a
//! default.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use zeroize::Zeroizing;

use crate::breaker::{BreakerRule, Trip};
use crate::retry::RetryRule;

/// One third-party system (for example `[province_social_insurance]` in a service's TOML).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThirdPartyConfig {
    /// Names the system in errors and logs (`province-social-insurance`).
    pub name: String,
    /// Where the system is, `http(s)://host[:port][/prefix]`; a call's path is appended to it.
    pub base_url: String,
    /// Most time to open the connection (TCP and TLS), milliseconds (default 1,000; 30002).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Most time the system may stay silent once connected: until the first byte of its answer
    /// and between reads of the answer, milliseconds (default 5,000; 30003).
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Most time for the whole call, retries included, milliseconds (default 10,000; 30001).
    #[serde(default = "default_total_timeout_ms")]
    pub total_timeout_ms: u64,
    /// Retries and their budget (default: at most 2 retries, 20 % of calls plus 10 a second).
    #[serde(default)]
    pub retry: RetryRule,
    /// When to stop calling a failing system for a while (default: more than half of at least
    /// 10 attempts in 10 s failed; open for 5 s).
    #[serde(default = "default_breaker")]
    pub breaker: BreakerRule,
    /// Largest answer accepted, bytes (default 4 MiB); a larger one is 30011.
    #[serde(default = "default_max_answer_bytes")]
    pub max_answer_bytes: usize,
    /// Sent as `Authorization: Bearer …` when set; wiped from memory when dropped, never logged.
    #[serde(default)]
    pub bearer_key: Option<BearerKey>,
}

/// A secret key: its `Debug` hides it and its memory is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerKey(Zeroizing<String>);

/// Why a configuration cannot be used; names the field, never the key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("third party {name}: {reason}")]
pub struct ConfigError {
    pub name: String,
    pub reason: String,
}

fn default_connect_timeout_ms() -> u64 {
    1_000
}
fn default_read_timeout_ms() -> u64 {
    5_000
}
fn default_total_timeout_ms() -> u64 {
    10_000
}
fn default_max_answer_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_breaker() -> BreakerRule {
    BreakerRule {
        trip: Trip::ErrorRatio,
        threshold: 0.5,
        slow_ms: 1_000,
        min_requests: 10,
        stat_interval_ms: 10_000,
        open_ms: 5_000,
    }
}

// === impl ThirdPartyConfig ===

impl ThirdPartyConfig {
    /// The system `name` at `base_url`, with every default.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            base_url: base_url.into(),
            connect_timeout_ms: default_connect_timeout_ms(),
            read_timeout_ms: default_read_timeout_ms(),
            total_timeout_ms: default_total_timeout_ms(),
            retry: RetryRule::default(),
            breaker: default_breaker(),
            max_answer_bytes: default_max_answer_bytes(),
            bearer_key: None,
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    pub fn total_timeout(&self) -> Duration {
        Duration::from_millis(self.total_timeout_ms)
    }

    /// Checks what the client relies on; the base URL is parsed, and must be HTTP(S) without a
    /// query or fragment, since paths are appended to it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |reason: &str| {
            Err(ConfigError {
                name: self.name.clone(),
                reason: reason.to_owned(),
            })
        };
        if self.name.is_empty() {
            return fail("name is empty");
        }
        match reqwest::Url::parse(&self.base_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.has_host() => {
                if u.query().is_some() || u.fragment().is_some() {
                    return fail("base_url must not have a query or fragment");
                }
            }
            _ => return fail("base_url must be an http or https URL"),
        }
        if self.connect_timeout_ms == 0 || self.read_timeout_ms == 0 || self.total_timeout_ms == 0 {
            return fail("timeouts must be above 0");
        }
        if self.max_answer_bytes == 0 {
            return fail("max_answer_bytes must be above 0");
        }
        self.retry.validate().or_else(|e| fail(&e))?;
        self.breaker.validate().or_else(|e| fail(&e))?;
        Ok(())
    }
}

// === impl BearerKey ===

impl BearerKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    /// The key itself, for the one place that puts it in a header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerKey(***)")
    }
}

impl<'de> Deserialize<'de> for BearerKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_every_field_but_name_and_address() {
        let c: ThirdPartyConfig = toml::from_str(
            r#"
            name = "province"
            base_url = "https://si.example.gov.cn/gateway"
            "#,
        )
        .expect("parse");
        assert_eq!(
            c,
            ThirdPartyConfig::new("province", "https://si.example.gov.cn/gateway")
        );
        assert_eq!(c.retry, RetryRule::default());
        assert!(c.validate().is_ok());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        let unknown = toml::from_str::<ThirdPartyConfig>(
            "name = \"p\"\nbase_url = \"http://h\"\ntimeout_ms = 5",
        );
        assert!(
            unknown.is_err(),
            "a misspelt field is an error, not a default"
        );
        let mut c = ThirdPartyConfig::new("p", "ftp://h/");
        assert!(c.validate().is_err());
        c.base_url = "http://h/?a=1".to_owned();
        assert!(c.validate().is_err());
        c.base_url = "http://h/api".to_owned();
        assert!(c.validate().is_ok());
        c.read_timeout_ms = 0;
        assert!(c.validate().is_err());
        c.read_timeout_ms = 1;
        c.retry.max_retries = 9;
        assert!(c.validate().is_err());
        c.retry.max_retries = 1;
        c.breaker.threshold = 2.0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_key_is_read_but_never_shown() {
        let c: ThirdPartyConfig =
            toml::from_str("name = \"p\"\nbase_url = \"http://h\"\nbearer_key = \"s3cr3t-key\"")
                .expect("parse");
        assert_eq!(
            c.bearer_key.as_ref().map(BearerKey::expose),
            Some("s3cr3t-key")
        );
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("BearerKey(***)"));
    }
}
