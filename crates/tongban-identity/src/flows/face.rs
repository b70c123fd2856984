//! Face verification: a pass sets `face_verified` for a configurable maximum age; failures are
//! counted with a lockout (10025 each, 10027 past the limit); every attempt is audited.
//!
//! The image goes to the provider and nowhere else: it is neither stored nor logged.

use serde_json::json;
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_store::identity::FaceAttemptRow;
use tongban_store::persons::{COLUMNS, TABLE};

use crate::clock::secs_ms;
use crate::codes;
use crate::error::IdentityError;
use crate::face::{FacePassed, FaceRequest};
use crate::service::Identity;
use crate::session::Caller;
use crate::token::new_id;

const OUTCOME_PASS: &str = "pass";
const OUTCOME_FAIL: &str = "fail";
const OUTCOME_LOCKED: &str = "locked";
const OUTCOME_ERROR: &str = "error";

// === impl Identity ===

impl Identity {
    /// Checks the caller's face against their real-name record. A pass marks the session
    /// `face_verified` for `face_max_age_secs`; a failure answers 10025; once
    /// `face_max_failures` failures fall inside `face_window_secs`, 10027 until the oldest
    /// leaves the window. Every attempt is recorded.
    pub async fn verify_face(
        &self,
        caller: &Caller,
        image: &[u8],
    ) -> Result<FacePassed, IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        let ids = self.store.identity();
        let now = self.now();
        let user = ids
            .user(&caller.user_id)
            .await?
            .ok_or(IdentityError::Store(tongban_store::StoreError::NotFound))?;
        let Some(person_id) = user.person_id.as_deref() else {
            return Err(ApiError::new(Code::NOT_AUTHORIZED)
                .with_data(json!({
                    "required": AuthLevel::RealName.as_str(),
                    "step_up": "/api/v1/real-name-verifications",
                }))
                .into());
        };
        let window = secs_ms(self.cfg.face_window_secs);
        let failures = ids
            .face_failures_since(&user.id, now.saturating_sub(window))
            .await?;
        if failures >= i64::from(self.cfg.face_max_failures) {
            self.audit_face(caller, OUTCOME_LOCKED, now).await?;
            tracing::warn!(user_id = %user.id, failures, "Face verification locked out.");
            return Err(ApiError::new(codes::TOO_MANY_FAILURES)
                .with_data(json!({ "retry_after": self.cfg.face_window_secs }))
                .into());
        }
        let person = self
            .store
            .persons()
            .get(person_id)
            .await?
            .ok_or(IdentityError::Store(tongban_store::StoreError::NotFound))?;
        let name = self.open(TABLE, COLUMNS[0], &person.id, &person.name_enc)?;
        let id_number = self.open(TABLE, COLUMNS[1], &person.id, &person.id_number_enc)?;
        let verdict = self
            .face
            .verify(&FaceRequest {
                name: &name,
                id_number: &id_number,
                image,
            })
            .await;
        match verdict {
            Ok(true) => {
                ids.set_face_verified(&caller.session_id, now).await?;
                self.audit_face(caller, OUTCOME_PASS, now).await?;
                tracing::info!(user_id = %user.id, session_id = %caller.session_id, "Face verification passed.");
                Ok(FacePassed {
                    level: AuthLevel::FaceVerified,
                    face_verified_at: now,
                    max_age: self.cfg.face_max_age_secs,
                })
            }
            Ok(false) => {
                self.audit_face(caller, OUTCOME_FAIL, now).await?;
                let left = i64::from(self.cfg.face_max_failures) - failures - 1;
                tracing::info!(user_id = %user.id, attempts_left = left, "Face verification failed.");
                Err(ApiError::new(codes::FACE_FAILED)
                    .with_data(json!({ "attempts_left": left.max(0) }))
                    .into())
            }
            Err(e) => {
                self.audit_face(caller, OUTCOME_ERROR, now).await?;
                Err(e)
            }
        }
    }

    async fn audit_face(
        &self,
        caller: &Caller,
        outcome: &str,
        at: i64,
    ) -> Result<(), IdentityError> {
        self.store
            .identity()
            .insert_face_attempt(&FaceAttemptRow {
                id: new_id("f")?,
                user_id: caller.user_id.clone(),
                session_id: caller.session_id.clone(),
                provider: self.face.name().to_owned(),
                outcome: outcome.to_owned(),
                at,
            })
            .await?;
        Ok(())
    }
}
