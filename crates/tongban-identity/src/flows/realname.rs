//! Real-name verification of a caller: the local checks, the provider, then the person bound
//! to the account, stored only through the vault and found again by blind index.

use tongban_core::AuthLevel;
use tongban_crypto::vault::normalize_for_index;
use tongban_store::identity::UserRow;
use tongban_store::persons::{COLUMNS, PersonRow, TABLE};

use crate::codes;
use crate::error::IdentityError;
use crate::realname::{RealNameResult, RealNameVerdict, check_id_number, check_name, civil_date};
use crate::service::Identity;
use crate::session::{Caller, conflict_is_bound};
use crate::token::new_id;

// === impl Identity ===

impl Identity {
    /// Verifies the caller's name and ID number and binds the person to the account: 10016
    /// when the local check or the provider fails, 10014 when they do not match, 10013 when
    /// the person is bound to another account or the account to another person.
    pub async fn verify_real_name(
        &self,
        caller: &Caller,
        name: &str,
        id_number: &str,
    ) -> Result<RealNameResult, IdentityError> {
        let _changing = self.sessions.changing_user(&caller.user_id);
        let name = name.trim();
        let id_number = normalize_for_index(id_number);
        if !check_name(name) {
            return Err(codes::ID_CHECK_FAILED.into());
        }
        if let Err(e) = check_id_number(&id_number, civil_date(self.now())) {
            tracing::info!(user_id = %caller.user_id, reason = %e, "Real-name check failed locally.");
            return Err(codes::ID_CHECK_FAILED.into());
        }
        match self.real_name.verify(name, &id_number).await? {
            RealNameVerdict::Match => {}
            RealNameVerdict::Mismatch => {
                tracing::info!(user_id = %caller.user_id, "Real-name check: name and ID number do not match.");
                return Err(codes::ID_NAME_MISMATCH.into());
            }
            RealNameVerdict::Failed => return Err(codes::ID_CHECK_FAILED.into()),
        }
        let ids = self.store.identity();
        let user = ids
            .user(&caller.user_id)
            .await?
            .ok_or(IdentityError::Store(tongban_store::StoreError::NotFound))?;
        let person_id = self.bind_person(&user, name, &id_number).await?;
        ids.update_user(
            &user.id,
            AuthLevel::RealName.as_str(),
            Some(&person_id),
            &user.status,
            self.now(),
        )
        .await
        .map_err(conflict_is_bound)?;
        tracing::info!(user_id = %user.id, "Real-name verification passed.");
        Ok(RealNameResult {
            level: AuthLevel::RealName,
            name: tongban_core::mask::mask_name(name),
            id_number: tongban_core::mask::keep_ends(&id_number, 1, 1),
        })
    }

    /// Finds the person by the ID number's blind index, or stores a new one through the vault;
    /// refuses (10013) a person bound to another account or an account bound to another person.
    pub(crate) async fn bind_person(
        &self,
        user: &UserRow,
        name: &str,
        id_number: &str,
    ) -> Result<String, IdentityError> {
        let id_number = normalize_for_index(id_number);
        let bidx = self.index(TABLE, "id_number", &id_number)?;
        let existing = self.store.persons().find_by_id_number(&bidx).await?;
        // An account bound to another person stays so; check before storing anything.
        if let Some(bound) = user.person_id.as_deref()
            && existing.as_ref().is_none_or(|p| p.id != bound)
        {
            return Err(codes::ALREADY_BOUND.into());
        }
        let person_id = match existing {
            Some(p) => {
                let stored = self.open(TABLE, COLUMNS[0], &p.id, &p.name_enc)?;
                if stored.as_str() != name {
                    return Err(codes::ID_NAME_MISMATCH.into());
                }
                p.id
            }
            None => {
                let id = new_id("p")?;
                self.store
                    .persons()
                    .insert(&PersonRow {
                        name_enc: self.seal(TABLE, COLUMNS[0], &id, name)?,
                        id_number_enc: self.seal(TABLE, COLUMNS[1], &id, &id_number)?,
                        id_number_bidx: bidx,
                        phone_enc: None,
                        phone_bidx: None,
                        id: id.clone(),
                    })
                    .await
                    .map_err(conflict_is_bound)?;
                id
            }
        };
        if let Some(other) = self.store.identity().user_by_person(&person_id).await?
            && other.id != user.id
        {
            return Err(codes::ALREADY_BOUND.into());
        }
        Ok(person_id)
    }
}
