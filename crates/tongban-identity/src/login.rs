//! External login: the adapter trait (OIDC relying party, platform ticket), and the pending
//! login each redirect leaves behind (state, nonce, PKCE verifier), used once.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tongban_core::Code;
use tongban_crypto::encoding::b64url_encode;
use tongban_store::identity::LoginStateRow;
use zeroize::Zeroizing;

use crate::clock::secs_ms;
use crate::codes;
use crate::error::IdentityError;
use crate::service::Identity;
use crate::session::Issued;
use crate::token::{device_hash, new_token, state_hash};

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

const STATES: &str = "tb_id_login_states";

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

// === impl Identity ===

impl Identity {
    /// Starts an external login: a fresh state, nonce and PKCE verifier, kept server-side
    /// (the verifier vault-encrypted) and bound to the device that started it.
    pub async fn begin_login(&self, device_id: Option<&str>) -> Result<LoginStart, IdentityError> {
        let adapter = self.adapter()?;
        let now = self.now();
        let state = new_token()?;
        let nonce = new_token()?;
        let verifier = Zeroizing::new(new_token()?);
        let challenge = pkce_challenge(&verifier);
        let sh = state_hash(&state);
        let expires_at = now.saturating_add(secs_ms(self.cfg.login_state_ttl_secs));
        self.store
            .identity()
            .insert_login_state(&LoginStateRow {
                verifier_enc: self.seal(STATES, "verifier", &sh, &verifier)?,
                state_hash: sh,
                provider: adapter.name().to_owned(),
                nonce: nonce.clone(),
                device_hash: device_id.map(device_hash),
                created_at: now,
                expires_at,
            })
            .await?;
        let authorize_url = adapter
            .authorize_url(&AuthorizeRequest {
                state: &state,
                nonce: &nonce,
                code_challenge: &challenge,
            })
            .await?;
        Ok(LoginStart {
            authorize_url,
            state,
            expires_at,
        })
    }

    /// Finishes an external login from the provider's redirect; a state is good once, for the
    /// device that started it, within its lifetime.
    pub async fn finish_login(
        &self,
        callback: &Callback,
        device_id: Option<&str>,
    ) -> Result<Issued, IdentityError> {
        let adapter = self.adapter()?;
        let state = callback
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| IdentityError::code(Code::PARAMETER_MISSING))?;
        let ids = self.store.identity();
        let now = self.now();
        ids.purge_login_states(now).await?;
        let sh = state_hash(state);
        let Some(row) = ids.take_login_state(&sh).await? else {
            // Unknown, used or expired state: the authorization is void.
            return Err(codes::AUTH_CODE_INVALID.into());
        };
        if now >= row.expires_at || row.provider != adapter.name() {
            return Err(codes::AUTH_CODE_INVALID.into());
        }
        if row.device_hash.is_some() && row.device_hash != device_id.map(device_hash) {
            return Err(codes::DEVICE_MISMATCH.into());
        }
        if let Some(err) = &callback.error {
            tracing::info!(error = %short(err), "External login refused by the provider.");
            return Err(Code::NOT_AUTHORIZED.into());
        }
        let pending = Pending {
            code_verifier: self.open(STATES, "verifier", &sh, &row.verifier_enc)?,
            nonce: row.nonce,
        };
        let ext = adapter.complete(callback, &pending).await?;
        self.login_external(&ext, device_id).await
    }

    fn adapter(&self) -> Result<&dyn LoginAdapter, IdentityError> {
        self.login
            .as_deref()
            .ok_or_else(|| IdentityError::code(Code::REFUSED).with_msg("未配置统一身份认证"))
    }
}

// === impl IdentityError ===

impl IdentityError {
    fn with_msg(self, msg: &str) -> Self {
        match self {
            Self::Api(e) => Self::Api(e.with_msg(msg)),
            other => other,
        }
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
