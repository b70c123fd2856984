//! External login: a state, nonce and PKCE verifier kept server-side for the login adapter's
//! round trip, then the person's session issued.

use tongban_core::Code;
use tongban_store::identity::LoginStateRow;
use zeroize::Zeroizing;

use crate::clock::secs_ms;
use crate::codes;
use crate::error::IdentityError;
use crate::login::{
    AuthorizeRequest, Callback, LoginAdapter, LoginStart, Pending, pkce_challenge, short,
};
use crate::service::Identity;
use crate::session::Issued;
use crate::token::{device_hash, new_token, state_hash};

/// The table of pending external logins (its name binds the sealed verifier to it).
const STATES: &str = "tb_id_login_states";

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
