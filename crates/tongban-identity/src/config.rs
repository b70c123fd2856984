//! Configuration of the identity service: lifetimes, face-check policy, consent purposes, the
//! login adapter and the key ids used. Every field has a safe default.

use serde::{Deserialize, Serialize};

use crate::oidc::OidcConfig;
use crate::ticket::TicketConfig;

/// The `[identity]` section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Lifetime of an access token, seconds; after it a call answers 10002 (Appendix A: 25 min).
    pub access_ttl_secs: u64,
    /// Lifetime of a session, seconds; after it a call answers 10017 (30 days).
    pub session_ttl_secs: u64,
    /// How long a pending external login (state, nonce, PKCE verifier) stays usable, seconds.
    pub login_state_ttl_secs: u64,
    /// How long a passed face check counts, seconds; after it a `face_verified` route answers
    /// 10003 again.
    pub face_max_age_secs: u64,
    /// How long this instance may answer a token from the session rows it last read,
    /// milliseconds (0: read the store on every request). Its own sign-outs and checks take
    /// effect at once; in cluster mode another instance's reach it as a notice (NATS) within
    /// milliseconds, and within this time at the latest if the notice is lost.
    pub session_cache_ms: u64,
    /// Failed face checks allowed within `face_window_secs` before 10027.
    pub face_max_failures: u32,
    /// The window in which failed face checks are counted, seconds.
    pub face_window_secs: u64,
    /// Vault data key for personal fields (names, ID numbers, collected fields).
    pub pii_data_key: String,
    /// Vault blind-index key.
    pub pii_index_key: String,
    /// Key that encrypts the silent re-login credential the client keeps (SM4-GCM).
    pub credential_key: String,
    /// The purposes a user may consent to, each with the fields it may collect.
    pub purposes: Vec<PurposeConfig>,
    /// The external login: an OpenID Connect provider or a platform's ticket protocol.
    pub login: Option<LoginConfig>,
    /// The face-verification service.
    pub face: FaceConfig,
    /// The real-name verification service.
    pub real_name: RealNameConfig,
}

/// Which external login the deployment uses (`[identity.login.oidc]` or
/// `[identity.login.ticket]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum LoginConfig {
    Oidc(OidcConfig),
    Ticket(TicketConfig),
}

/// Which face-verification service (`[identity.face.http]` or `[identity.face.simulator]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum FaceConfig {
    /// Development only: an image equal to `live_image` (UTF-8 bytes) passes.
    Simulator { live_image: String },
    /// A face-verification service speaking the format of [`crate::face::HttpFaceProvider`].
    Http(HttpServiceConfig),
}

/// Which real-name verification service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RealNameConfig {
    /// Development only: every well-formed name and ID number passes when `accept_unknown`.
    Simulator { accept_unknown: bool },
    /// A verification service speaking the format of [`crate::realname::HttpRealNameProvider`].
    Http(HttpServiceConfig),
}

/// A third-party HTTP service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServiceConfig {
    pub url: String,
    /// Sent as `Authorization: Bearer`.
    pub api_key: String,
    /// Timeout of each call, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_timeout() -> u64 {
    10
}

/// One purpose of collection (clause 6.3.2.1: consent and minimal collection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeConfig {
    /// Identifier, for example `contact`.
    pub id: String,
    /// What the user is told, in their language.
    pub description: String,
    /// The only fields collected under this purpose.
    pub fields: Vec<String>,
    /// Version of the notice the user must have seen to consent.
    pub notice_version: String,
}

// === impl IdentityConfig ===

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            access_ttl_secs: 25 * 60,
            session_ttl_secs: 30 * 24 * 3600,
            login_state_ttl_secs: 600,
            face_max_age_secs: 600,
            session_cache_ms: 1000,
            face_max_failures: 5,
            face_window_secs: 600,
            pii_data_key: "pii-data".to_owned(),
            pii_index_key: "pii-index".to_owned(),
            credential_key: "pii-data".to_owned(),
            purposes: vec![
                PurposeConfig {
                    id: "contact".to_owned(),
                    description: "办件进度短信通知".to_owned(),
                    fields: vec!["phone".to_owned()],
                    notice_version: "1".to_owned(),
                },
                PurposeConfig {
                    id: "delivery".to_owned(),
                    description: "证照邮寄".to_owned(),
                    fields: vec!["address".to_owned(), "phone".to_owned()],
                    notice_version: "1".to_owned(),
                },
            ],
            login: None,
            face: FaceConfig::Simulator {
                live_image: "simulated-live-face".to_owned(),
            },
            real_name: RealNameConfig::Simulator {
                accept_unknown: true,
            },
        }
    }
}

impl IdentityConfig {
    pub fn purpose(&self, id: &str) -> Option<&PurposeConfig> {
        self.purposes.iter().find(|p| p.id == id)
    }

    /// The simulators this configuration uses: a production profile must refuse to start
    /// with any.
    pub fn simulators_in_use(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if matches!(self.face, FaceConfig::Simulator { .. }) {
            v.push("face");
        }
        if matches!(self.real_name, RealNameConfig::Simulator { .. }) {
            v.push("real_name");
        }
        v
    }
}

#[cfg(test)]
mod tests;
