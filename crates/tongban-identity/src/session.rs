//! Sessions and tokens with Appendix A's meanings: a 25-minute access token (then 10002 and a
//! silent re-login), a 30-day session (then 10017), device binding (10012), step-up to a face
//! check (10003), sign-out and sign-out everywhere.
//!
//! Every login makes a new session id and new tokens, so nothing a client held before login
//! (a fixed session id) survives it. The re-login credential is SM4-GCM-encrypted under the
//! credential key with the device id in the AAD: it opens only for the device it was issued to,
//! and it works once (each use rotates it).

use serde::Serialize;
use serde_json::json;
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_crypto::vault::{FieldRef, Vault};
use tongban_store::StoreError;
use tongban_store::identity::{SessionRow, UserRow};

use crate::clock::secs_ms;
use crate::codes;
use crate::error::IdentityError;
use crate::login::ExternalIdentity;
use crate::service::Identity;
use crate::token::{access_hash, device_hash, new_id, new_token, relogin_hash};

/// Who is calling: what the gateway's auth-level check needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Caller {
    pub user_id: String,
    pub session_id: String,
    /// `face_verified` while a face check is younger than the configured maximum age.
    pub level: AuthLevel,
    /// When the last face check of this session passed, Unix milliseconds.
    pub face_verified_at: Option<i64>,
    /// How long ago that was, as of this resolution (for the gateway's own age check).
    #[serde(skip)]
    pub face_age: Option<std::time::Duration>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
}

/// What the gateway asks of a caller on every request: a [`Caller`] without what only the
/// identity routes read (acr, amr), so a cached session answers without copying them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing {
    pub user_id: String,
    /// For the caller context the gateway hands services.
    pub session_id: String,
    pub level: AuthLevel,
    /// How long ago the session's last face check passed.
    pub face_age: Option<std::time::Duration>,
    /// When it passed, Unix milliseconds.
    pub face_verified_at: Option<i64>,
}

impl From<Caller> for Standing {
    fn from(c: Caller) -> Self {
        Standing {
            user_id: c.user_id,
            session_id: c.session_id,
            level: c.level,
            face_age: c.face_age,
            face_verified_at: c.face_verified_at,
        }
    }
}

/// What a login or re-login hands the client.
#[derive(Clone, Serialize)]
pub struct Issued {
    pub session_id: String,
    pub access_token: String,
    pub access_expires_at: i64,
    pub session_expires_at: i64,
    /// Opaque to the client; present it with the same device id to renew the access token.
    pub relogin_credential: String,
    pub level: AuthLevel,
    /// Key id and hex key for signing requests to routes marked `signed` (docs/signing.md);
    /// absent when the keyring has no `session-sign` key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("session_id", &self.session_id)
            .field("level", &self.level)
            .finish_non_exhaustive()
    }
}

const SESSIONS: &str = "tb_id_sessions";
const CREDENTIAL_COLUMN: &str = "relogin_credential";
pub(crate) const USERS: &str = "tb_id_users";

pub(crate) const STATUS_ACTIVE: &str = "active";
pub(crate) const STATUS_UNBOUND: &str = "unbound";
const REASON_UNBOUND: &str = "unbound";

/// A token or credential as presented: trimmed, and 10006 when nothing is left.
fn presented(token: &str) -> Result<&str, IdentityError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(Code::TOKEN_MISSING.into());
    }
    Ok(token)
}

// === impl Identity ===

impl Identity {
    /// Signs in an identity an adapter has established: finds or creates the account, binds
    /// the person the platform reported, and opens a new session.
    pub async fn login_external(
        &self,
        ext: &ExternalIdentity,
        device_id: Option<&str>,
    ) -> Result<Issued, IdentityError> {
        // Of every account until the account is known (a failed upsert changes nothing
        // cached; the cost of the doubt is one emptied cache).
        let mut changing = self.sessions.changing();
        let now = self.now();
        let subject = self.index(
            USERS,
            "subject",
            &format!("{}\u{1f}{}", ext.provider, ext.subject),
        )?;
        let mut user = self
            .store
            .identity()
            .upsert_user(&UserRow {
                id: new_id("u")?,
                subject_hash: subject,
                provider: ext.provider.clone(),
                level: AuthLevel::Anonymous.as_str().to_owned(),
                person_id: None,
                status: STATUS_ACTIVE.to_owned(),
                created_at: now,
                updated_at: now,
            })
            .await?;
        changing.of_user(&user.id);
        let mut person_id = user.person_id.clone();
        if let Some(p) = &ext.person {
            let pid = self.bind_person(&user, &p.name, &p.id_number).await?;
            person_id = Some(pid);
        }
        let level = if ext.real_name || person_id.is_some() {
            AuthLevel::RealName
        } else {
            AuthLevel::Anonymous
        };
        // A login after an unbind binds again.
        self.store
            .identity()
            .update_user(
                &user.id,
                level.as_str(),
                person_id.as_deref(),
                STATUS_ACTIVE,
                now,
            )
            .await
            .map_err(conflict_is_bound)?;
        user.level = level.as_str().to_owned();
        let amr = (!ext.amr.is_empty()).then(|| ext.amr.join(" "));
        tracing::info!(user_id = %user.id, provider = %ext.provider, "User signed in.");
        self.open_session(&user.id, level, device_id, ext.acr.clone(), amr)
            .await
    }

    /// Opens a new session for an account: always a new session id and new tokens.
    pub(crate) async fn open_session(
        &self,
        user_id: &str,
        level: AuthLevel,
        device_id: Option<&str>,
        acr: Option<String>,
        amr: Option<String>,
    ) -> Result<Issued, IdentityError> {
        let now = self.now();
        let session_id = new_id("s")?;
        let access = new_token()?;
        let secret = new_token()?;
        let row = SessionRow {
            id: session_id.clone(),
            user_id: user_id.to_owned(),
            device_hash: device_id.map(device_hash),
            acr,
            amr,
            access_hash: access_hash(&access),
            access_expires_at: now.saturating_add(secs_ms(self.cfg.access_ttl_secs)),
            relogin_hash: relogin_hash(&secret),
            face_verified_at: None,
            created_at: now,
            expires_at: now.saturating_add(secs_ms(self.cfg.session_ttl_secs)),
            revoked_at: None,
            revoked_reason: None,
        };
        self.store.identity().insert_session(&row).await?;
        let signing = crate::signing::issue(&self.ring(), &session_id);
        Ok(Issued {
            relogin_credential: self.seal_credential(&session_id, &secret, device_id)?,
            signing_key_id: signing.as_ref().map(|s| s.0.clone()),
            signing_key: signing.map(|s| s.1),
            session_id,
            access_token: access,
            access_expires_at: row.access_expires_at,
            session_expires_at: row.expires_at,
            level,
        })
    }

    /// Resolves a token to its caller, or the Appendix A code that says why not: 10006 no
    /// token, 10012 another device, 10017 session over (or signed out), 10023 unbound, 10002
    /// access token expired (renew silently with the re-login credential).
    pub async fn resolve(&self, token: &str, device_id: Option<&str>) -> Result<Caller, ApiError> {
        self.caller(token, device_id).await.map_err(ApiError::from)
    }

    /// [`Identity::resolve`], then [`Identity::require`].
    pub async fn resolve_at_least(
        &self,
        token: &str,
        device_id: Option<&str>,
        required: AuthLevel,
    ) -> Result<Caller, ApiError> {
        let caller = self.resolve(token, device_id).await?;
        self.require(&caller, required)?;
        Ok(caller)
    }

    /// Whether a caller may use a route that needs `required`: a real-named caller short of a
    /// recent face check gets 10003 with how to step up (RFC 9470's idea: the level required
    /// and its maximum age); a caller not real-named gets 10008.
    pub fn require(&self, caller: &Caller, required: AuthLevel) -> Result<(), ApiError> {
        if caller.level.satisfies(required) {
            return Ok(());
        }
        if required == AuthLevel::FaceVerified && caller.level == AuthLevel::RealName {
            return Err(ApiError::new(Code::FACE_REQUIRED).with_data(json!({
                "required": AuthLevel::FaceVerified.as_str(),
                "max_age": self.cfg.face_max_age_secs,
                "step_up": "/api/v1/face-verifications",
            })));
        }
        Err(ApiError::new(Code::NOT_AUTHORIZED).with_data(json!({
            "required": required.as_str(),
            "step_up": "/api/v1/real-name-verifications",
        })))
    }

    /// [`Identity::resolve`], as its [`Standing`], when the session cache can answer (no
    /// storage read, so no waiting); `None` when the rows must be read.
    pub fn resolve_cached(
        &self,
        token: &str,
        device_id: Option<&str>,
    ) -> Option<Result<Standing, ApiError>> {
        self.cached(token, device_id, Self::standing_of)
            .map(|r| r.map_err(ApiError::from))
    }

    fn cached<T>(
        &self,
        token: &str,
        device_id: Option<&str>,
        out: impl FnOnce(&Self, &SessionRow, &UserRow, i64) -> T,
    ) -> Option<Result<T, IdentityError>> {
        let token = match presented(token) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let hit = self.sessions.get(token, device_id)?;
        Some(self.judge(token, &hit.rows, device_id, hit.device_checked, None, out))
    }

    /// [`Identity::resolve`] reading the store, for a caller that asked
    /// [`Identity::resolve_cached`] first and got `None`: asking the cache again would find the
    /// entry it was told to refresh and leave it to expire.
    pub async fn resolve_stored(
        &self,
        token: &str,
        device_id: Option<&str>,
    ) -> Result<Caller, ApiError> {
        let token = presented(token)?;
        self.stored(token, device_id).await.map_err(ApiError::from)
    }

    pub(crate) async fn caller(
        &self,
        token: &str,
        device_id: Option<&str>,
    ) -> Result<Caller, IdentityError> {
        if let Some(cached) = self.cached(token, device_id, Self::caller_of) {
            return cached;
        }
        self.stored(token.trim(), device_id).await
    }

    /// The caller of `token` (trimmed, not empty) as the store has it; the rows are cached.
    async fn stored(&self, token: &str, device_id: Option<&str>) -> Result<Caller, IdentityError> {
        let turn = self.sessions.read_turn(token).await;
        if turn.waited
            && let Some(cached) = self.cached(token, device_id, Self::caller_of)
        {
            return cached;
        }
        let generation = self.sessions.generation();
        let ids = self.store.identity();
        let Some(s) = ids.session_by_access(&access_hash(token)).await? else {
            return Err(Code::TOKEN_MISSING.into());
        };
        let user = ids
            .user(&s.user_id)
            .await?
            .ok_or(IdentityError::Store(StoreError::NotFound))?;
        let rows = std::sync::Arc::new((s, user));
        self.judge(
            token,
            &rows,
            device_id,
            false,
            Some(generation),
            Self::caller_of,
        )
    }

    /// The caller of a session's rows (as `out` makes it of them), checked as on every
    /// request; rows just `read` (at that cache generation) are remembered for the next
    /// requests.
    fn judge<T>(
        &self,
        token: &str,
        rows: &std::sync::Arc<(SessionRow, UserRow)>,
        device_id: Option<&str>,
        device_checked: bool,
        read: Option<u64>,
        out: impl FnOnce(&Self, &SessionRow, &UserRow, i64) -> T,
    ) -> Result<T, IdentityError> {
        let (s, user) = (&rows.0, &rows.1);
        // Every check below is made on each request, cached rows or not (a device already
        // matched against the binding is compared by its id instead of hashed again).
        let now = self.now();
        let live = self.check_live(s, device_id, now, device_checked);
        if let Some(generation) = read {
            let matched = (live.is_ok() && s.device_hash.is_some())
                .then_some(device_id)
                .flatten();
            self.sessions.put(generation, token, rows.clone(), matched);
        }
        live?;
        if now >= s.access_expires_at {
            return Err(Code::LOGIN_EXPIRED.into());
        }
        if user.status == STATUS_UNBOUND {
            return Err(unbound());
        }
        Ok(out(self, s, user, now))
    }

    fn standing_of(&self, s: &SessionRow, user: &UserRow, now: i64) -> Standing {
        let base: AuthLevel = user.level.parse().unwrap_or(AuthLevel::Anonymous);
        let face_valid = s
            .face_verified_at
            .is_some_and(|at| at <= now && now - at < secs_ms(self.cfg.face_max_age_secs));
        let level = if base == AuthLevel::RealName && face_valid {
            AuthLevel::FaceVerified
        } else {
            base
        };
        Standing {
            user_id: s.user_id.clone(),
            session_id: s.id.clone(),
            level,
            face_age: s.face_verified_at.and_then(|at| {
                u64::try_from(now - at)
                    .ok()
                    .map(std::time::Duration::from_millis)
            }),
            face_verified_at: s.face_verified_at,
        }
    }

    fn caller_of(&self, s: &SessionRow, user: &UserRow, now: i64) -> Caller {
        let Standing {
            user_id,
            level,
            face_age,
            ..
        } = self.standing_of(s, user, now);
        Caller {
            user_id,
            session_id: s.id.clone(),
            level,
            face_verified_at: s.face_verified_at,
            face_age,
            acr: s.acr.clone(),
            amr: s
                .amr
                .as_deref()
                .map(|a| a.split(' ').map(str::to_owned).collect())
                .unwrap_or_default(),
        }
    }

    /// Revoked, expired and other-device sessions, in the order a client should learn them.
    fn check_live(
        &self,
        s: &SessionRow,
        device_id: Option<&str>,
        now: i64,
        device_checked: bool,
    ) -> Result<(), IdentityError> {
        if s.revoked_at.is_some() {
            return Err(if s.revoked_reason.as_deref() == Some(REASON_UNBOUND) {
                unbound()
            } else {
                Code::SESSION_EXPIRED.into()
            });
        }
        // A session bound to a device answers only that device; a missing id does not match.
        if let Some(bound) = &s.device_hash
            && !device_checked
            && device_id.map(device_hash).as_ref() != Some(bound)
        {
            return Err(ApiError::new(codes::DEVICE_MISMATCH).into());
        }
        if now >= s.expires_at {
            return Err(Code::SESSION_EXPIRED.into());
        }
        Ok(())
    }

    /// Silent re-login: a new access token (and a new credential) from the credential the
    /// client kept, on the same device. A credential used twice revokes its session: one of
    /// the two users was not the owner.
    pub async fn relogin(
        &self,
        credential: &str,
        device_id: Option<&str>,
    ) -> Result<Issued, IdentityError> {
        let credential = presented(credential)?;
        let (session_id, secret) = self.open_credential(credential, device_id)?;
        let ids = self.store.identity();
        let Some(s) = ids.session(&session_id).await? else {
            return Err(Code::SESSION_EXPIRED.into());
        };
        // Taken before the first write: a refused credential changes nothing.
        let _changing = self.sessions.changing_user(&s.user_id);
        let now = self.now();
        self.check_live(&s, device_id, now, false)?;
        let user = ids
            .user(&s.user_id)
            .await?
            .ok_or(IdentityError::Store(StoreError::NotFound))?;
        if user.status == STATUS_UNBOUND {
            return Err(unbound());
        }
        let access = new_token()?;
        let next = new_token()?;
        let access_expires_at = now.saturating_add(secs_ms(self.cfg.access_ttl_secs));
        let rotated = ids
            .rotate_access(
                &s.id,
                &relogin_hash(&secret),
                &access_hash(&access),
                access_expires_at,
                &relogin_hash(&next),
            )
            .await?;
        if !rotated {
            ids.revoke_session(&s.id, now, "credential_reuse").await?;
            tracing::warn!(session_id = %s.id, "Re-login credential used twice; session revoked.");
            return Err(Code::SESSION_EXPIRED.into());
        }
        let level = self.standing_of(&s, &user, now).level;
        let signing = crate::signing::issue(&self.ring(), &s.id);
        Ok(Issued {
            relogin_credential: self.seal_credential(&s.id, &next, device_id)?,
            signing_key_id: signing.as_ref().map(|s| s.0.clone()),
            signing_key: signing.map(|s| s.1),
            session_id: s.id,
            access_token: access,
            access_expires_at,
            session_expires_at: s.expires_at,
            level,
        })
    }

    /// Signs out the caller's session.
    pub async fn sign_out(&self, caller: &Caller) -> Result<(), IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        self.store
            .identity()
            .revoke_session(&caller.session_id, self.now(), "logout")
            .await?;
        tracing::info!(session_id = %caller.session_id, "Session signed out.");
        Ok(())
    }

    /// Signs out every session of the caller's account; returns how many were live.
    pub async fn sign_out_everywhere(&self, caller: &Caller) -> Result<u64, IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        let n = self
            .store
            .identity()
            .revoke_sessions_of(&caller.user_id, self.now(), "logout_all")
            .await?;
        tracing::info!(user_id = %caller.user_id, sessions = n, "Signed out everywhere.");
        Ok(n)
    }

    /// Unbinds the account from the digital-government platform: every session ends and
    /// answers 10023 until the user signs in through the platform again.
    pub async fn unbind(&self, caller: &Caller) -> Result<(), IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        let ids = self.store.identity();
        let user = ids
            .user(&caller.user_id)
            .await?
            .ok_or(IdentityError::Store(StoreError::NotFound))?;
        if user.status == STATUS_UNBOUND {
            return Err(unbound());
        }
        let now = self.now();
        ids.update_user(
            &user.id,
            &user.level,
            user.person_id.as_deref(),
            STATUS_UNBOUND,
            now,
        )
        .await?;
        ids.revoke_sessions_of(&user.id, now, REASON_UNBOUND)
            .await?;
        tracing::info!(user_id = %user.id, "Account unbound from the platform.");
        Ok(())
    }

    fn credential_field(device_id: Option<&str>) -> FieldRef<'_> {
        FieldRef {
            table: SESSIONS,
            column: CREDENTIAL_COLUMN,
            row_id: device_id.unwrap_or(""),
        }
    }

    fn seal_credential(
        &self,
        session_id: &str,
        secret: &str,
        device_id: Option<&str>,
    ) -> Result<String, IdentityError> {
        let ring = self.ring();
        let vault = Vault::new(&*ring, &self.cfg.credential_key, &self.cfg.pii_index_key);
        let payload = zeroize::Zeroizing::new(format!("{session_id}.{secret}"));
        Ok(vault.encrypt_str(&Self::credential_field(device_id), &payload)?)
    }

    fn open_credential(
        &self,
        credential: &str,
        device_id: Option<&str>,
    ) -> Result<(String, String), IdentityError> {
        let ring = self.ring();
        let vault = Vault::new(&*ring, &self.cfg.credential_key, &self.cfg.pii_index_key);
        // Another device id in the AAD fails authentication; so does a forged credential.
        let text = vault
            .decrypt_str(&Self::credential_field(device_id), credential)
            .map_err(|_| IdentityError::code(codes::DEVICE_MISMATCH))?;
        let (sid, secret) = text
            .split_once('.')
            .ok_or_else(|| IdentityError::code(codes::DEVICE_MISMATCH))?;
        Ok((sid.to_owned(), secret.to_owned()))
    }
}

pub(crate) fn unbound() -> IdentityError {
    IdentityError::code(codes::UNBOUND)
}

/// A person already bound to another account: 10013.
pub(crate) fn conflict_is_bound(e: StoreError) -> IdentityError {
    match e {
        StoreError::Conflict { .. } => IdentityError::code(codes::ALREADY_BOUND),
        other => IdentityError::Store(other),
    }
}
