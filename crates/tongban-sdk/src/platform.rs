//! The platform's admin API as a service uses it: registry and caller-context keys. It
//! answers on the admin listener, behind the admin token (`docs/gateway.md`, "Admin API").

use std::net::SocketAddr;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use tongban_crypto::caller_context::ContextKey;
use tongban_crypto::encoding::hex_decode;
use tongban_governance::registry::{Instance, Registration};
use zeroize::Zeroizing;

/// Where the platform's admin API is and how to reach it.
#[derive(Clone)]
pub struct PlatformConfig {
    /// `https://host:port` of the admin listener.
    pub admin_url: String,
    /// The admin token (`Authorization: Bearer`).
    pub admin_token: Zeroizing<String>,
    /// PEM certificates to trust besides the system's (a test profile's self-signed one, or a
    /// government private CA).
    pub ca_pem: Option<Vec<u8>>,
    /// Connect to this address for the URL's host name (the host name is still what the
    /// certificate is checked against).
    pub resolve: Option<SocketAddr>,
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("admin_url", &self.admin_url)
            .field("admin_token", &"***")
            .field("resolve", &self.resolve)
            .finish_non_exhaustive()
    }
}

/// Why a call to the platform failed. Names the operation, never the token.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("the platform's admin API is unreachable ({op}): {reason}")]
    Unreachable { op: &'static str, reason: String },
    #[error("the platform refused {op}: code {code} {msg}")]
    Refused {
        op: &'static str,
        code: u32,
        msg: String,
    },
    #[error("the platform's answer to {op} is not what was expected")]
    BadAnswer { op: &'static str },
    #[error("the admin client cannot be built: {0}")]
    Setup(String),
}

impl PlatformError {
    /// The envelope code of a refusal (20404: the instance is not registered).
    pub fn code(&self) -> Option<u32> {
        match self {
            PlatformError::Refused { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// A client of the admin API.
#[derive(Clone, Debug)]
pub struct PlatformClient {
    base: String,
    token: Zeroizing<String>,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer<T> {
    code: u32,
    #[serde(default)]
    msg: Option<String>,
    data: Option<T>,
}

#[derive(Deserialize)]
struct IssuedKeys {
    keys: Vec<IssuedKey>,
}

#[derive(Deserialize)]
struct IssuedKey {
    version: u32,
    key: String,
}

impl PlatformClient {
    pub fn new(cfg: &PlatformConfig) -> Result<Self, PlatformError> {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(std::time::Duration::from_secs(10))
            .connect_timeout(std::time::Duration::from_secs(3));
        if let Some(pem) = &cfg.ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| PlatformError::Setup(e.to_string()))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        if let Some(addr) = cfg.resolve {
            let host = reqwest::Url::parse(&cfg.admin_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .ok_or_else(|| PlatformError::Setup("admin_url has no host".to_owned()))?;
            b = b.resolve(&host, addr);
        }
        Ok(Self {
            base: cfg.admin_url.trim_end_matches('/').to_owned(),
            token: cfg.admin_token.clone(),
            http: b.build().map_err(|e| PlatformError::Setup(e.to_string()))?,
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        op: &'static str,
        req: reqwest::RequestBuilder,
    ) -> Result<T, PlatformError> {
        let unreachable = |e: reqwest::Error| PlatformError::Unreachable {
            op,
            reason: e.without_url().to_string(),
        };
        let resp = req
            .bearer_auth(self.token.as_str())
            .send()
            .await
            .map_err(unreachable)?;
        let answer: Answer<T> = resp
            .json()
            .await
            .map_err(|_| PlatformError::BadAnswer { op })?;
        if answer.code != 0 {
            return Err(PlatformError::Refused {
                op,
                code: answer.code,
                msg: answer.msg.unwrap_or_default(),
            });
        }
        answer.data.ok_or(PlatformError::BadAnswer { op })
    }

    /// Registers an instance; the answer carries its id.
    pub async fn register(&self, r: &Registration) -> Result<Instance, PlatformError> {
        let url = format!("{}/api/v1/instances", self.base);
        self.call("register", self.http.post(url).json(r)).await
    }

    /// One heartbeat; a `Refused` with code 20404 means the registry forgot the instance.
    pub async fn heartbeat(&self, instance_id: &str) -> Result<(), PlatformError> {
        let url = format!("{}/api/v1/instances/{instance_id}/heartbeats", self.base);
        self.call::<serde_json::Value>("heartbeat", self.http.post(url))
            .await
            .map(drop)
    }

    pub async fn deregister(&self, instance_id: &str) -> Result<(), PlatformError> {
        let url = format!("{}/api/v1/instances/{instance_id}", self.base);
        self.call::<serde_json::Value>("deregister", self.http.delete(url))
            .await
            .map(drop)
    }

    /// Stores and applies a gateway route (`docs/gateway.md`, "A route"); the platform
    /// validates it and names what is wrong.
    pub async fn put_route(&self, spec: &serde_json::Value) -> Result<(), PlatformError> {
        let op = "route";
        let id = spec["id"]
            .as_str()
            .ok_or_else(|| PlatformError::Setup("a route needs an id".to_owned()))?;
        let url = format!("{}/api/v1/routes/{id}", self.base);
        self.call::<serde_json::Value>(op, self.http.put(url).json(spec))
            .await
            .map(drop)
    }

    /// The keys `service` verifies caller contexts with, every version still accepted.
    pub async fn caller_context_keys(
        &self,
        service: &str,
    ) -> Result<Vec<ContextKey>, PlatformError> {
        let op = "caller-context keys";
        let url = format!(
            "{}/api/v1/microservices/{service}/caller-context-keys",
            self.base
        );
        let issued: IssuedKeys = self.call(op, self.http.get(url)).await?;
        issued
            .keys
            .iter()
            .map(|k| {
                let bytes =
                    hex_decode(&k.key, "key").map_err(|_| PlatformError::BadAnswer { op })?;
                if bytes.len() != 32 {
                    return Err(PlatformError::BadAnswer { op });
                }
                Ok(ContextKey::from_bytes(k.version, &bytes))
            })
            .collect()
    }
}
