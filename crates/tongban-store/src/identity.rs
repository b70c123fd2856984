//! Identity records as `tongban-identity` leaves them: accounts, sessions, face attempts,
//! consents, collected fields and pending logins. This module never sees a token, device id or
//! personal value in the clear: callers hash or vault-encrypt before a row reaches it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::{Store, StoreError};

/// An account: one per external subject (OIDC `iss`+`sub`, platform user id), hashed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRow {
    pub id: String,
    pub subject_hash: String,
    pub provider: String,
    /// `anonymous`, `real_name` (the auth level reached by real-name checks).
    pub level: String,
    /// The `tb_persons` row holding the vault-encrypted name and ID number, once real-named.
    pub person_id: Option<String>,
    /// `active` or `unbound`.
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A session: the access token and re-login secret only as hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub device_hash: Option<String>,
    pub acr: Option<String>,
    pub amr: Option<String>,
    pub access_hash: String,
    pub access_expires_at: i64,
    pub relogin_hash: String,
    pub face_verified_at: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// One face-verification attempt (the audit record; no biometric data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaceAttemptRow {
    pub id: String,
    pub user_id: String,
    pub session_id: String,
    pub provider: String,
    /// `pass`, `fail`, `locked` or `error`.
    pub outcome: String,
    pub at: i64,
}

/// A consent: a purpose, the fields it may collect, the notice version the user saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRow {
    pub id: String,
    pub user_id: String,
    pub purpose: String,
    /// Field names, comma-separated.
    pub fields: String,
    pub notice_version: String,
    pub granted_at: i64,
    pub withdrawn_at: Option<i64>,
}

/// A personal field collected under a purpose, vault-encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFieldRow {
    pub user_id: String,
    pub field: String,
    pub purpose: String,
    pub value_enc: String,
    pub collected_at: i64,
}

/// A pending external login, used once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginStateRow {
    pub state_hash: String,
    pub provider: String,
    pub nonce: String,
    pub verifier_enc: String,
    pub device_hash: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The identity repository of a [`Store`].
#[derive(Clone, Copy, Debug)]
pub struct Identity<'a> {
    store: &'a Store,
}

impl Store {
    pub fn identity(&self) -> Identity<'_> {
        Identity { store: self }
    }
}

const USER_COLS: &str =
    "id, subject_hash, provider, level, person_id, status, created_at, updated_at";
const SESSION_COLS: &str = "id, user_id, device_hash, acr, amr, access_hash, access_expires_at, \
     relogin_hash, face_verified_at, created_at, expires_at, revoked_at, revoked_reason";

// === impl Identity ===

impl Identity<'_> {
    /// Inserts the account unless its subject exists; returns the stored account either way.
    pub async fn upsert_user(&self, u: &UserRow) -> Result<UserRow, StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tb_id_users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (subject_hash) DO NOTHING"
        )))
        .bind(&u.id)
        .bind(&u.subject_hash)
        .bind(&u.provider)
        .bind(&u.level)
        .bind(&u.person_id)
        .bind(&u.status)
        .bind(u.created_at)
        .bind(u.updated_at)
        .execute(self.store.pool())
        .await?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM tb_id_users WHERE subject_hash = $1"
        )))
        .bind(&u.subject_hash)
        .fetch_one(self.store.pool())
        .await?;
        user(&row)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM tb_id_users WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(user).transpose()
    }

    /// The account bound to a person, if any.
    pub async fn user_by_person(&self, person_id: &str) -> Result<Option<UserRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLS} FROM tb_id_users WHERE person_id = $1"
        )))
        .bind(person_id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(user).transpose()
    }

    /// Sets level, person and status; a person already bound to another account is a conflict.
    pub async fn update_user(
        &self,
        id: &str,
        level: &str,
        person_id: Option<&str>,
        status: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE tb_id_users SET level = $1, person_id = $2, status = $3, updated_at = $4 \
             WHERE id = $5",
        )
        .bind(level)
        .bind(person_id)
        .bind(status)
        .bind(at)
        .bind(id)
        .execute(self.store.pool())
        .await
        .map_err(unique_to_conflict)?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    /// Deletes a `tb_persons` row (the user's own data, on request).
    pub async fn delete_person(&self, person_id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tb_persons WHERE id = $1")
            .bind(person_id)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn insert_session(&self, s: &SessionRow) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO tb_id_sessions ({SESSION_COLS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(&s.id)
        .bind(&s.user_id)
        .bind(&s.device_hash)
        .bind(&s.acr)
        .bind(&s.amr)
        .bind(&s.access_hash)
        .bind(s.access_expires_at)
        .bind(&s.relogin_hash)
        .bind(s.face_verified_at)
        .bind(s.created_at)
        .bind(s.expires_at)
        .bind(s.revoked_at)
        .bind(&s.revoked_reason)
        .execute(self.store.pool())
        .await
        .map_err(unique_to_conflict)?;
        Ok(())
    }

    pub async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("id", id).await
    }

    pub async fn session_by_access(
        &self,
        access_hash: &str,
    ) -> Result<Option<SessionRow>, StoreError> {
        self.session_where("access_hash", access_hash).await
    }

    async fn session_where(
        &self,
        column: &'static str,
        value: &str,
    ) -> Result<Option<SessionRow>, StoreError> {
        // `column` is one of two fixed names above, never input.
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLS} FROM tb_id_sessions WHERE {column} = $1"
        )))
        .bind(value)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(session).transpose()
    }

    /// Sessions of an account, newest first.
    pub async fn sessions_of(&self, user_id: &str) -> Result<Vec<SessionRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {SESSION_COLS} FROM tb_id_sessions WHERE user_id = $1 \
             ORDER BY created_at DESC, id"
        )))
        .bind(user_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter().map(session).collect()
    }

    /// Replaces the access token and re-login secret of a live session, only if the re-login
    /// secret is still `old_relogin_hash` (each credential works once). Returns whether it did.
    pub async fn rotate_access(
        &self,
        session_id: &str,
        old_relogin_hash: &str,
        access_hash: &str,
        access_expires_at: i64,
        relogin_hash: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tb_id_sessions SET access_hash = $1, access_expires_at = $2, relogin_hash = $3 \
             WHERE id = $4 AND relogin_hash = $5 AND revoked_at IS NULL",
        )
        .bind(access_hash)
        .bind(access_expires_at)
        .bind(relogin_hash)
        .bind(session_id)
        .bind(old_relogin_hash)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn set_face_verified(&self, session_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE tb_id_sessions SET face_verified_at = $1 WHERE id = $2")
            .bind(at)
            .bind(session_id)
            .execute(self.store.pool())
            .await?;
        Ok(())
    }

    /// Revokes one live session; returns whether it was live.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        at: i64,
        reason: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE tb_id_sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(session_id)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Revokes every live session of an account (sign-out everywhere); returns how many.
    pub async fn revoke_sessions_of(
        &self,
        user_id: &str,
        at: i64,
        reason: &str,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE tb_id_sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(reason)
        .bind(user_id)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_face_attempt(&self, a: &FaceAttemptRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tb_id_face_attempts (id, user_id, session_id, provider, outcome, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.id)
        .bind(&a.user_id)
        .bind(&a.session_id)
        .bind(&a.provider)
        .bind(&a.outcome)
        .bind(a.at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Failed attempts of an account at or after `since`.
    pub async fn face_failures_since(&self, user_id: &str, since: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query(
            "SELECT COUNT(*) FROM tb_id_face_attempts \
             WHERE user_id = $1 AND outcome = 'fail' AND at >= $2",
        )
        .bind(user_id)
        .bind(since)
        .fetch_one(self.store.pool())
        .await?
        .try_get(0)?)
    }

    /// Every attempt of an account, oldest first.
    pub async fn face_attempts_of(&self, user_id: &str) -> Result<Vec<FaceAttemptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, session_id, provider, outcome, at FROM tb_id_face_attempts \
             WHERE user_id = $1 ORDER BY at, id",
        )
        .bind(user_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FaceAttemptRow {
                    id: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    session_id: r.try_get(2)?,
                    provider: r.try_get(3)?,
                    outcome: r.try_get(4)?,
                    at: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub async fn insert_consent(&self, c: &ConsentRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tb_id_consents (id, user_id, purpose, fields, notice_version, granted_at, withdrawn_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.id)
        .bind(&c.user_id)
        .bind(&c.purpose)
        .bind(&c.fields)
        .bind(&c.notice_version)
        .bind(c.granted_at)
        .bind(c.withdrawn_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Every consent of an account, withdrawn ones included, oldest first.
    pub async fn consents_of(&self, user_id: &str) -> Result<Vec<ConsentRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, purpose, fields, notice_version, granted_at, withdrawn_at \
             FROM tb_id_consents WHERE user_id = $1 ORDER BY granted_at, id",
        )
        .bind(user_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ConsentRow {
                    id: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    purpose: r.try_get(2)?,
                    fields: r.try_get(3)?,
                    notice_version: r.try_get(4)?,
                    granted_at: r.try_get(5)?,
                    withdrawn_at: r.try_get(6)?,
                })
            })
            .collect()
    }

    /// Withdraws the live consents of an account for a purpose; returns how many.
    pub async fn withdraw_consent(
        &self,
        user_id: &str,
        purpose: &str,
        at: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE tb_id_consents SET withdrawn_at = $1 \
             WHERE user_id = $2 AND purpose = $3 AND withdrawn_at IS NULL",
        )
        .bind(at)
        .bind(user_id)
        .bind(purpose)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores or replaces one collected field.
    pub async fn put_field(&self, f: &UserFieldRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tb_id_user_fields (user_id, field, purpose, value_enc, collected_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id, field) DO UPDATE SET purpose = excluded.purpose, \
             value_enc = excluded.value_enc, collected_at = excluded.collected_at",
        )
        .bind(&f.user_id)
        .bind(&f.field)
        .bind(&f.purpose)
        .bind(&f.value_enc)
        .bind(f.collected_at)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    pub async fn fields_of(&self, user_id: &str) -> Result<Vec<UserFieldRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT user_id, field, purpose, value_enc, collected_at FROM tb_id_user_fields \
             WHERE user_id = $1 ORDER BY field",
        )
        .bind(user_id)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(UserFieldRow {
                    user_id: r.try_get(0)?,
                    field: r.try_get(1)?,
                    purpose: r.try_get(2)?,
                    value_enc: r.try_get(3)?,
                    collected_at: r.try_get(4)?,
                })
            })
            .collect()
    }

    /// Deletes collected fields of an account, all or those of one purpose; returns how many.
    pub async fn delete_fields(
        &self,
        user_id: &str,
        purpose: Option<&str>,
    ) -> Result<u64, StoreError> {
        let done = match purpose {
            Some(p) => {
                sqlx::query("DELETE FROM tb_id_user_fields WHERE user_id = $1 AND purpose = $2")
                    .bind(user_id)
                    .bind(p)
                    .execute(self.store.pool())
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM tb_id_user_fields WHERE user_id = $1")
                    .bind(user_id)
                    .execute(self.store.pool())
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    /// Deletes the consent records of an account; returns how many.
    pub async fn delete_consents(&self, user_id: &str) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tb_id_consents WHERE user_id = $1")
            .bind(user_id)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn insert_login_state(&self, s: &LoginStateRow) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tb_id_login_states (state_hash, provider, nonce, verifier_enc, device_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.state_hash)
        .bind(&s.provider)
        .bind(&s.nonce)
        .bind(&s.verifier_enc)
        .bind(&s.device_hash)
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(self.store.pool())
        .await
        .map_err(unique_to_conflict)?;
        Ok(())
    }

    /// Removes and returns a pending login: a state works once, even under concurrent callbacks.
    pub async fn take_login_state(
        &self,
        state_hash: &str,
    ) -> Result<Option<LoginStateRow>, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(
            "SELECT state_hash, provider, nonce, verifier_enc, device_hash, created_at, expires_at \
             FROM tb_id_login_states WHERE state_hash = $1",
        )
        .bind(state_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(r) = row else {
            return Ok(None);
        };
        let done = sqlx::query("DELETE FROM tb_id_login_states WHERE state_hash = $1")
            .bind(state_hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await?;
        Ok(Some(LoginStateRow {
            state_hash: r.try_get(0)?,
            provider: r.try_get(1)?,
            nonce: r.try_get(2)?,
            verifier_enc: r.try_get(3)?,
            device_hash: r.try_get(4)?,
            created_at: r.try_get(5)?,
            expires_at: r.try_get(6)?,
        }))
    }

    /// Deletes pending logins that expired before `now`; returns how many.
    pub async fn purge_login_states(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM tb_id_login_states WHERE expires_at < $1")
            .bind(now)
            .execute(self.store.pool())
            .await?;
        Ok(done.rows_affected())
    }
}

fn unique_to_conflict(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => StoreError::Conflict {
            expected: "a unique value".to_owned(),
            actual: "the value is taken".to_owned(),
        },
        _ => StoreError::Db(e),
    }
}

fn user(r: &AnyRow) -> Result<UserRow, StoreError> {
    Ok(UserRow {
        id: r.try_get(0)?,
        subject_hash: r.try_get(1)?,
        provider: r.try_get(2)?,
        level: r.try_get(3)?,
        person_id: r.try_get(4)?,
        status: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
    })
}

fn session(r: &AnyRow) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        device_hash: r.try_get(2)?,
        acr: r.try_get(3)?,
        amr: r.try_get(4)?,
        access_hash: r.try_get(5)?,
        access_expires_at: r.try_get(6)?,
        relogin_hash: r.try_get(7)?,
        face_verified_at: r.try_get(8)?,
        created_at: r.try_get(9)?,
        expires_at: r.try_get(10)?,
        revoked_at: r.try_get(11)?,
        revoked_reason: r.try_get(12)?,
    })
}
