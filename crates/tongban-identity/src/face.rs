//! Face verification providers: a trait (an HTTP adapter for a face-verification service and a
//! simulator); the check itself, with its lockout and audit, is `flows::face`.
//!
//! The image goes to the provider and nowhere else: it is neither stored nor logged.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tongban_core::AuthLevel;
use tongban_crypto::encoding::b64_encode;

use crate::error::IdentityError;
use crate::http_provider::JsonService;

/// What the provider compares: the live image against the person's record.
pub struct FaceRequest<'a> {
    pub name: &'a str,
    pub id_number: &'a str,
    pub image: &'a [u8],
}

/// A face-verification service.
#[async_trait]
pub trait FaceProvider: Send + Sync {
    fn name(&self) -> &str;
    /// `Ok(true)` when the face matches the person.
    async fn verify(&self, req: &FaceRequest<'_>) -> Result<bool, IdentityError>;
}

/// A face-verification service over HTTP: `POST url` with
/// `{"name", "id_number", "image": Base64}` and a bearer key; answers the envelope
/// `{"code": 0, "data": {"passed": bool}}`, any other code being a provider error.
#[derive(Debug)]
pub struct HttpFaceProvider {
    service: JsonService,
}

/// A local stand-in: an image equal to `live_image` passes, anything else fails.
#[derive(Debug)]
pub struct FaceSimulator {
    pub live_image: Vec<u8>,
}

/// The result of a passed check.
#[derive(Clone, Debug, Serialize)]
pub struct FacePassed {
    pub level: AuthLevel,
    pub face_verified_at: i64,
    pub max_age: u64,
}

#[derive(Deserialize)]
struct HttpVerdict {
    passed: bool,
}

impl std::fmt::Debug for FaceRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaceRequest")
            .field("image_len", &self.image.len())
            .finish_non_exhaustive()
    }
}

// === impl HttpFaceProvider ===

impl HttpFaceProvider {
    pub fn new(url: &str, api_key: &str, timeout: Duration) -> Result<Self, IdentityError> {
        Ok(Self {
            service: JsonService::new("face", url, api_key, timeout)?,
        })
    }
}

#[async_trait]
impl FaceProvider for HttpFaceProvider {
    fn name(&self) -> &str {
        "http"
    }

    async fn verify(&self, req: &FaceRequest<'_>) -> Result<bool, IdentityError> {
        let v: HttpVerdict = self
            .service
            .call(&json!({
                "name": req.name,
                "id_number": req.id_number,
                "image": b64_encode(req.image),
            }))
            .await?;
        Ok(v.passed)
    }
}

// === impl FaceSimulator ===

#[async_trait]
impl FaceProvider for FaceSimulator {
    fn name(&self) -> &str {
        "simulator"
    }

    async fn verify(&self, req: &FaceRequest<'_>) -> Result<bool, IdentityError> {
        Ok(tongban_crypto::sm3::ct_eq(req.image, &self.live_image))
    }
}
