//! External login: the adapter trait (OIDC relying party, platform ticket), and the pending
//! login each redirect leaves behind (state, nonce, PKCE verifier), used once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tongban_crypto::encoding::b64url_encode;

use zeroize::Zeroizing;

use crate::error::IdentityError;

/// Who the external provider says signed in.
#[derive(Clone)]
pub struct ExternalIdentity {
    /// The adapter's name (`oidc`, `ticket`): part of the account key.
    pub provider: String,
    /// The provider's stable user id (OIDC `sub`, platform user id).
    pub subject: String,
    /// Whether the provider reports a real-name level that maps to `real_name`.
    pub real_name: bool,
    /// The person the provider reported, if it did; stored only through the vault.
    pub person: Option<ReportedPerson>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
}

/// A name and ID number reported by a platform.
#[derive(Clone)]
pub struct ReportedPerson {
    pub name: Zeroizing<String>,
    pub id_number: Zeroizing<String>,
}

/// What an adapter gets to build the redirect to the provider.
#[derive(Clone, Debug)]
pub struct AuthorizeRequest<'a> {
    pub state: &'a str,
    pub nonce: &'a str,
    /// PKCE `code_challenge` (S256) of the verifier kept server-side.
    pub code_challenge: &'a str,
}

/// The parameters the provider's redirect brought back.
#[derive(Clone, Default, Deserialize)]
pub struct Callback {
    pub state: Option<String>,
    /// OIDC authorization code.
    pub code: Option<String>,
    /// Platform ticket.
    pub ticket: Option<String>,
    /// OIDC error (`access_denied`, …).
    pub error: Option<String>,
}

/// The secrets of a pending login, as the adapter needs them to finish.
#[derive(Clone)]
pub struct Pending {
    pub nonce: String,
    pub code_verifier: Zeroizing<String>,
}

/// Where to send the user to sign in.
#[derive(Clone, Debug, Serialize)]
pub struct LoginStart {
    pub authorize_url: String,
    pub state: String,
    pub expires_at: i64,
}

/// An external login protocol.
#[async_trait]
pub trait LoginAdapter: Send + Sync {
    /// `oidc`, `ticket`, …: stored with the account.
    fn name(&self) -> &str;

    /// The provider URL the user's browser goes to.
    async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, IdentityError>;

    /// Turns the callback into an identity (code → tokens → ID token, or ticket → token →
    /// user info).
    async fn complete(
        &self,
        callback: &Callback,
        pending: &Pending,
    ) -> Result<ExternalIdentity, IdentityError>;
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callback")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ExternalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalIdentity")
            .field("provider", &self.provider)
            .field("real_name", &self.real_name)
            .field("acr", &self.acr)
            .field("amr", &self.amr)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ReportedPerson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportedPerson([REDACTED])")
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pending([REDACTED])")
    }
}

/// PKCE S256: Base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    b64url_encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()).as_ref())
}

/// A provider's error word, cut short and to safe characters for the log.
pub(crate) fn short(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(40)
        .collect()
}
