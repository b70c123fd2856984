//! Consent and minimal collection (clause 6.3.2.1): the purposes a user agreed to, when, under
//! which notice version; a purpose names the fields it may collect and nothing else is stored;
//! a user can export and delete their data.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_store::StoreError;
use tongban_store::identity::{ConsentRow, UserFieldRow};
use tongban_store::persons::{COLUMNS, TABLE};

use crate::codes;
use crate::error::IdentityError;
use crate::service::Identity;
use crate::session::Caller;
use crate::token::new_id;

/// A consent as the user sees it.
#[derive(Clone, Debug, Serialize)]
pub struct Consent {
    pub purpose: String,
    pub fields: Vec<String>,
    pub notice_version: String,
    pub granted_at: i64,
    pub withdrawn_at: Option<i64>,
}

const FIELDS: &str = "tb_id_user_fields";

impl From<ConsentRow> for Consent {
    fn from(r: ConsentRow) -> Self {
        Self {
            purpose: r.purpose,
            fields: split_fields(&r.fields),
            notice_version: r.notice_version,
            granted_at: r.granted_at,
            withdrawn_at: r.withdrawn_at,
        }
    }
}

fn split_fields(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect()
}

fn bad(msg: &str) -> IdentityError {
    ApiError::new(Code::BAD_PARAMETER).with_msg(msg).into()
}

// === impl Identity ===

impl Identity {
    /// Records the caller's consent to a purpose under the notice version they were shown;
    /// an unknown purpose or an outdated notice is refused (20000).
    pub async fn grant_consent(
        &self,
        caller: &Caller,
        purpose: &str,
        notice_version: &str,
    ) -> Result<Consent, IdentityError> {
        let p = self.cfg.purpose(purpose).ok_or_else(|| bad("未知的用途"))?;
        if p.notice_version != notice_version {
            return Err(bad("告知书版本已更新，请重新阅读"));
        }
        let ids = self.store.identity();
        let now = self.now();
        // A new grant replaces a live one, so the record shows the latest notice agreed to.
        ids.withdraw_consent(&caller.user_id, purpose, now).await?;
        let row = ConsentRow {
            id: new_id("c")?,
            user_id: caller.user_id.clone(),
            purpose: p.id.clone(),
            fields: p.fields.join(","),
            notice_version: p.notice_version.clone(),
            granted_at: now,
            withdrawn_at: None,
        };
        ids.insert_consent(&row).await?;
        tracing::info!(user_id = %caller.user_id, purpose = %p.id, "Consent granted.");
        Ok(row.into())
    }

    /// Withdraws consent to a purpose and deletes what was collected under it.
    pub async fn withdraw_consent(
        &self,
        caller: &Caller,
        purpose: &str,
    ) -> Result<u64, IdentityError> {
        let ids = self.store.identity();
        let n = ids
            .withdraw_consent(&caller.user_id, purpose, self.now())
            .await?;
        if n == 0 {
            return Err(codes::NO_DATA.into());
        }
        let deleted = ids.delete_fields(&caller.user_id, Some(purpose)).await?;
        tracing::info!(user_id = %caller.user_id, purpose = %short(purpose), deleted, "Consent withdrawn.");
        Ok(deleted)
    }

    pub async fn consents(&self, caller: &Caller) -> Result<Vec<Consent>, IdentityError> {
        Ok(self
            .store
            .identity()
            .consents_of(&caller.user_id)
            .await?
            .into_iter()
            .map(Consent::from)
            .collect())
    }

    /// Stores fields under a purpose: each must be one the purpose names, and the caller must
    /// have a live consent to it (10008 otherwise). Values go through the vault.
    pub async fn collect(
        &self,
        caller: &Caller,
        purpose: &str,
        values: &BTreeMap<String, String>,
    ) -> Result<(), IdentityError> {
        let p = self.cfg.purpose(purpose).ok_or_else(|| bad("未知的用途"))?;
        if let Some(extra) = values.keys().find(|k| !p.fields.contains(k)) {
            tracing::info!(purpose = %p.id, field = %short(extra), "Refused a field the purpose does not name.");
            return Err(bad("该用途不收集此字段"));
        }
        let ids = self.store.identity();
        if !self.has_consent(&caller.user_id, purpose).await? {
            return Err(Code::NOT_AUTHORIZED.into());
        }
        let now = self.now();
        for (field, value) in values {
            ids.put_field(&UserFieldRow {
                user_id: caller.user_id.clone(),
                field: field.clone(),
                purpose: p.id.clone(),
                value_enc: self.seal(FIELDS, field, &caller.user_id, value)?,
                collected_at: now,
            })
            .await?;
        }
        Ok(())
    }

    async fn has_consent(&self, user_id: &str, purpose: &str) -> Result<bool, IdentityError> {
        Ok(self
            .store
            .identity()
            .consents_of(user_id)
            .await?
            .iter()
            .any(|c| c.purpose == purpose && c.withdrawn_at.is_none()))
    }

    /// The caller's phone: 10024 when no live consent covers the phone, 10015 when none was
    /// given.
    pub async fn phone(&self, caller: &Caller) -> Result<String, IdentityError> {
        let ids = self.store.identity();
        let covered = ids.consents_of(&caller.user_id).await?.iter().any(|c| {
            c.withdrawn_at.is_none() && split_fields(&c.fields).iter().any(|f| f == "phone")
        });
        if !covered {
            return Err(codes::PHONE_NOT_AUTHORIZED.into());
        }
        let fields = ids.fields_of(&caller.user_id).await?;
        let Some(f) = fields.iter().find(|f| f.field == "phone") else {
            return Err(codes::PHONE_NOT_BOUND.into());
        };
        let phone = self.open(FIELDS, &f.field, &caller.user_id, &f.value_enc)?;
        Ok(phone.as_str().to_owned())
    }

    /// The real-name person bound to `user_id`, decrypted (name, ID number); `None` without a
    /// binding. For the caller context of routes that hand a service the citizen's identity.
    pub async fn person_of(
        &self,
        user_id: &str,
    ) -> Result<Option<(zeroize::Zeroizing<String>, zeroize::Zeroizing<String>)>, IdentityError>
    {
        let Some(user) = self.store.identity().user(user_id).await? else {
            return Ok(None);
        };
        let Some(pid) = &user.person_id else {
            return Ok(None);
        };
        let Some(p) = self.store.persons().get(pid).await? else {
            return Ok(None);
        };
        Ok(Some((
            self.open(TABLE, COLUMNS[0], &p.id, &p.name_enc)?,
            self.open(TABLE, COLUMNS[1], &p.id, &p.id_number_enc)?,
        )))
    }

    /// Everything stored about the caller, decrypted: their account, person, consents,
    /// collected fields, sessions and face-check record.
    pub async fn export(&self, caller: &Caller) -> Result<Value, IdentityError> {
        let ids = self.store.identity();
        let user = ids
            .user(&caller.user_id)
            .await?
            .ok_or(IdentityError::Store(StoreError::NotFound))?;
        let person = match &user.person_id {
            Some(pid) => match self.store.persons().get(pid).await? {
                Some(p) => json!({
                    "name": self.open(TABLE, COLUMNS[0], &p.id, &p.name_enc)?.as_str(),
                    "id_number": self.open(TABLE, COLUMNS[1], &p.id, &p.id_number_enc)?.as_str(),
                }),
                None => Value::Null,
            },
            None => Value::Null,
        };
        let mut fields = serde_json::Map::new();
        for f in ids.fields_of(&user.id).await? {
            let v = self.open(FIELDS, &f.field, &user.id, &f.value_enc)?;
            fields.insert(
                f.field.clone(),
                json!({ "value": v.as_str(), "purpose": f.purpose, "collected_at": f.collected_at }),
            );
        }
        let sessions: Vec<Value> = ids
            .sessions_of(&user.id)
            .await?
            .into_iter()
            .map(|s| {
                json!({
                    "session_id": s.id, "created_at": s.created_at, "expires_at": s.expires_at,
                    "revoked_at": s.revoked_at, "acr": s.acr, "amr": s.amr,
                })
            })
            .collect();
        let faces: Vec<Value> = ids
            .face_attempts_of(&user.id)
            .await?
            .into_iter()
            .map(|a| json!({ "at": a.at, "outcome": a.outcome, "provider": a.provider }))
            .collect();
        Ok(json!({
            "user": {
                "user_id": user.id, "provider": user.provider, "level": user.level,
                "status": user.status, "created_at": user.created_at,
            },
            "person": person,
            "consents": self.consents(caller).await?,
            "fields": fields,
            "sessions": sessions,
            "face_verifications": faces,
        }))
    }

    /// Deletes the caller's personal data: collected fields, consents, the person record (the
    /// account falls back to `anonymous`), and signs out everywhere. The face-check audit
    /// (times and outcomes, no personal data) is kept.
    pub async fn delete_data(&self, caller: &Caller) -> Result<(), IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        let ids = self.store.identity();
        let user = ids
            .user(&caller.user_id)
            .await?
            .ok_or(IdentityError::Store(StoreError::NotFound))?;
        let now = self.now();
        ids.delete_fields(&user.id, None).await?;
        ids.delete_consents(&user.id).await?;
        ids.update_user(
            &user.id,
            AuthLevel::Anonymous.as_str(),
            None,
            &user.status,
            now,
        )
        .await?;
        if let Some(pid) = &user.person_id {
            ids.delete_person(pid).await?;
        }
        ids.revoke_sessions_of(&user.id, now, "data_deleted")
            .await?;
        tracing::info!(user_id = %user.id, "Personal data deleted at the user's request.");
        Ok(())
    }
}

fn short(s: &str) -> String {
    crate::login::short(s)
}
