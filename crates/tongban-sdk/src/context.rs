//! The caller context the gateway adds to every request it forwards (`docs/services.md`),
//! verified: a request without one answers 10006, one that does not verify 20001. Either way
//! the request did not come through the gateway, and the handler never runs.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use tongban_core::{ApiError, AuthLevel, Code};
pub use tongban_crypto::caller_context::Person;
use tongban_crypto::caller_context::{self, CallerContext, ContextError, ContextKey};

use crate::platform::PlatformClient;

/// Fetching the keys again (on a context naming an unknown version) at most this often, so
/// forged versions cannot make the service hammer the platform.
const REFETCH_EVERY: Duration = Duration::from_secs(5);

/// Verifies caller contexts for one service, with the keys the platform issued it.
#[derive(Debug)]
pub struct ContextVerifier {
    service: String,
    keys: RwLock<Vec<ContextKey>>,
    platform: Option<PlatformClient>,
    last_fetch: Mutex<Option<Instant>>,
}

impl ContextVerifier {
    /// A verifier that fetches `service`'s keys from the platform now, and again when a
    /// context names a version it does not hold (a rotation).
    pub async fn fetch(
        service: &str,
        platform: PlatformClient,
    ) -> Result<Self, crate::platform::PlatformError> {
        let keys = platform.caller_context_keys(service).await?;
        Ok(Self {
            service: service.to_owned(),
            keys: RwLock::new(keys),
            platform: Some(platform),
            last_fetch: Mutex::new(Some(Instant::now())),
        })
    }

    /// A verifier with fixed keys (tests, or keys delivered another way).
    pub fn with_keys(service: &str, keys: Vec<ContextKey>) -> Self {
        Self {
            service: service.to_owned(),
            keys: RwLock::new(keys),
            platform: None,
            last_fetch: Mutex::new(None),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    fn key(&self, version: u32) -> Option<ContextKey> {
        self.keys
            .read()
            .ok()?
            .iter()
            .find(|k| k.version == version)
            .cloned()
    }

    /// The caller of a request whose `X-Tb-Caller` is `header`.
    pub async fn verify(&self, header: Option<&str>) -> Result<Caller, ApiError> {
        let header = header.filter(|h| !h.is_empty()).ok_or_else(|| {
            ApiError::new(Code::TOKEN_MISSING).with_msg("请求未经网关：缺少调用方上下文")
        })?;
        let now = now_ms();
        let mut result = caller_context::verify(header, &self.service, |v| self.key(v), now);
        if let Err(ContextError::UnknownKey(_)) = result
            && self.refetch().await
        {
            result = caller_context::verify(header, &self.service, |v| self.key(v), now);
        }
        match result {
            Ok(ctx) => {
                let person = match &ctx.caller.person {
                    None => None,
                    Some(sealed) => Some(self.open_person(header, sealed)?),
                };
                let mut caller = Caller::from_context(ctx);
                caller.person = person;
                Ok(caller)
            }
            Err(error) => {
                tracing::warn!(%error, service = %self.service, "Caller context refused.");
                Err(ApiError::new(Code::REFUSED).with_msg("请求未经网关：调用方上下文无效"))
            }
        }
    }

    /// Opens the context's `person` with the key of the version the header names (the tags
    /// verified under it, so it is held).
    fn open_person(&self, header: &str, sealed: &str) -> Result<Person, ApiError> {
        let refused = || ApiError::new(Code::REFUSED).with_msg("请求未经网关：调用方上下文无效");
        let key = header
            .split('.')
            .nth(1)
            .and_then(|v| v.parse().ok())
            .and_then(|v| self.key(v))
            .ok_or_else(refused)?;
        caller_context::open_person(sealed, &key).map_err(|error| {
            tracing::warn!(%error, service = %self.service, "Caller person refused.");
            refused()
        })
    }

    /// Fetches the keys again unless that was done a moment ago; whether it was.
    async fn refetch(&self) -> bool {
        let Some(platform) = &self.platform else {
            return false;
        };
        {
            let Ok(mut last) = self.last_fetch.lock() else {
                return false;
            };
            if last.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match platform.caller_context_keys(&self.service).await {
            Ok(keys) => {
                if let Ok(mut held) = self.keys.write() {
                    *held = keys;
                }
                true
            }
            Err(error) => {
                tracing::warn!(%error, "Caller-context keys could not be fetched again.");
                false
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Who calls, as the gateway vouched for it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The account as this service's pseudonym; `None` for a caller without a session.
    pub subject: Option<String>,
    pub level: AuthLevel,
    /// When the session's last face check passed, Unix milliseconds.
    pub face_verified_at: Option<i64>,
    pub session: Option<String>,
    pub device: Option<String>,
    pub app: Option<String>,
    pub request_id: Option<String>,
    pub route: String,
    /// The real-name person, on routes that hand it to the service (`caller_person`).
    pub person: Option<Person>,
}

impl Caller {
    fn from_context(c: CallerContext) -> Self {
        let CallerContext { caller, request } = c;
        Self {
            subject: caller.sub,
            level: caller.lvl.parse().unwrap_or(AuthLevel::Anonymous),
            face_verified_at: caller.face_at,
            session: caller.sid,
            device: caller.dev,
            app: caller.app,
            request_id: request.rid,
            route: request.route,
            person: None,
        }
    }

    /// The account, for a handler that needs one: 10006 (sign in) without.
    pub fn subject(&self) -> Result<&str, ApiError> {
        self.subject
            .as_deref()
            .ok_or_else(|| ApiError::new(Code::TOKEN_MISSING))
    }

    /// Refuses a caller below `level`: 10006 without a session, 10003 when a face check is
    /// missing, 10008 when the real-name check is.
    pub fn require(&self, level: AuthLevel) -> Result<(), ApiError> {
        if self.level >= level {
            return Ok(());
        }
        if self.subject.is_none() {
            return Err(ApiError::new(Code::TOKEN_MISSING));
        }
        Err(match level {
            AuthLevel::FaceVerified => ApiError::new(Code::FACE_REQUIRED)
                .with_data(serde_json::json!({"required": "face_verified"})),
            _ => ApiError::new(Code::NOT_AUTHORIZED).with_msg("须先完成实名核验"),
        })
    }
}

impl<S> FromRequestParts<S> for Caller
where
    Arc<ContextVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<ContextVerifier>::from_ref(state);
        let header = parts
            .headers
            .get(caller_context::HEADER)
            .and_then(|v| v.to_str().ok());
        verifier.verify(header).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_crypto::caller_context::{CallerPart, RequestPart};

    fn key() -> ContextKey {
        ContextKey::from_bytes(1, &[5; 32])
    }

    fn sealed(svc: &str, lvl: &str, sub: Option<&str>, exp_in: i64) -> String {
        let now = now_ms();
        caller_context::seal(
            &CallerContext {
                caller: CallerPart {
                    svc: svc.into(),
                    sub: sub.map(str::to_owned),
                    lvl: lvl.into(),
                    face_at: None,
                    sid: sub.map(|_| "s".to_owned()),
                    dev: None,
                    app: None,
                    person: None,
                },
                request: RequestPart {
                    route: "r".into(),
                    rid: Some("rid".into()),
                    iat: now,
                    exp: now + exp_in,
                },
            },
            &key(),
        )
    }

    #[tokio::test]
    async fn missing_forged_and_expired_contexts_are_refused() {
        let v = ContextVerifier::with_keys("hall-booking", vec![key()]);
        assert_eq!(
            v.verify(None).await.expect_err("refused").code,
            Code::TOKEN_MISSING
        );
        assert_eq!(
            v.verify(Some("")).await.expect_err("refused").code,
            Code::TOKEN_MISSING
        );
        let good = sealed("hall-booking", "real_name", Some("p1"), 60_000);
        let caller = v.verify(Some(&good)).await.expect("verifies");
        assert_eq!(caller.level, AuthLevel::RealName);
        assert_eq!(caller.subject().expect("subject"), "p1");
        for bad in [
            sealed("social-insurance", "real_name", Some("p1"), 60_000),
            sealed("hall-booking", "real_name", Some("p1"), -1),
            good.replacen("v1.1.", "v1.2.", 1),
            format!("{good}x"),
            "v1.1.e30.e30.AAAA".to_owned(),
        ] {
            assert_eq!(
                v.verify(Some(&bad)).await.expect_err("refused").code,
                Code::REFUSED,
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn levels_are_enforced_with_the_codes_of_appendix_a() {
        let v = ContextVerifier::with_keys("hall-booking", vec![key()]);
        let anon = v
            .verify(Some(&sealed("hall-booking", "anonymous", None, 60_000)))
            .await
            .expect("verifies");
        assert!(anon.require(AuthLevel::Anonymous).is_ok());
        assert_eq!(
            anon.require(AuthLevel::RealName).expect_err("refused").code,
            Code::TOKEN_MISSING
        );
        let unchecked = v
            .verify(Some(&sealed(
                "hall-booking",
                "anonymous",
                Some("p"),
                60_000,
            )))
            .await
            .expect("verifies");
        assert_eq!(
            unchecked
                .require(AuthLevel::RealName)
                .expect_err("refused")
                .code,
            Code::NOT_AUTHORIZED
        );
        let named = v
            .verify(Some(&sealed(
                "hall-booking",
                "real_name",
                Some("p"),
                60_000,
            )))
            .await
            .expect("verifies");
        assert!(named.require(AuthLevel::RealName).is_ok());
        assert_eq!(
            named
                .require(AuthLevel::FaceVerified)
                .expect_err("refused")
                .code,
            Code::FACE_REQUIRED
        );
    }
}
