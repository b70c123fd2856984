//! The digital envelope over HTTP (clause 6.3.2.2 d): the public-key endpoint, an extractor that
//! opens enveloped request bodies, and a response type that seals answers with the request's key.
//! Any failure to open answers 20004, and nothing of the payload is logged.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tongban_core::Code;
use tongban_core::envelope::{self, ApiError};
use tongban_crypto::envelope::{EnvelopeFailure, EnvelopeSession, open_request_json};
use tongban_crypto::sm2::Sm2CipherFormat;

use crate::KeyService;

/// `GET /api/v1/envelope-keys` (anonymous): the server's SM2 public keys and the format.
pub async fn envelope_keys(State(keys): State<Arc<KeyService>>) -> impl IntoResponse {
    let set = keys.envelope_keys();
    envelope::Ok(serde_json::json!({
        "keys": set.published(),
        "sm2_cipher_order": "C1C3C2",
        "sm2_point_prefix": "04",
        "cipher": "SM4-GCM",
        "request_fields": ["kid", "key", "iv", "data"],
    }))
}

/// A request body sealed in the envelope `{kid, key, iv, data}`, opened and parsed as `T`; the
/// session seals the response with the same SM4 key.
#[derive(Debug)]
pub struct Enveloped<T> {
    pub value: T,
    pub session: EnvelopeSession,
}

impl<S, T> FromRequest<S> for Enveloped<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
    Arc<KeyService>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let keys = Arc::<KeyService>::from_ref(state);
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|_| ApiError::new(Code::BAD_PARAMETER).with_msg("请求体无法读取"))?;
        let format = Sm2CipherFormat::default();
        let mut opened = open_request_json(&*keys.envelope_keys(), &body, format);
        // A key pair added by another instance since our last reload: reload once.
        if matches!(&opened, Err(e) if e.reason() == EnvelopeFailure::UnknownKid) {
            if let Err(error) = keys.reload().await {
                tracing::warn!(%error, "Key reload failed.");
            }
            opened = open_request_json(&*keys.envelope_keys(), &body, format);
        }
        let (plaintext, session) = opened.map_err(|e| {
            tracing::info!(reason = ?e.reason(), "Envelope refused.");
            ApiError::new(Code::DECRYPT_FAILED)
        })?;
        // The sealed content is the request body: a bad field is named as in any other body.
        let value = tongban_core::extract::parse_json(&plaintext)?;
        Ok(Enveloped { value, session })
    }
}

/// An answer sealed with the request's envelope key: `{"code":0,"data":{"iv","data"}}`.
#[derive(Debug)]
pub struct Sealed<T>(pub EnvelopeSession, pub T);

impl<T: Serialize> IntoResponse for Sealed<T> {
    fn into_response(self) -> Response {
        let sealed = serde_json::to_vec(&self.1)
            .ok()
            .and_then(|json| self.0.seal_response(&json).ok());
        match sealed {
            Some(env) => envelope::Ok(env).into_response(),
            None => ApiError::new(Code::BUSY).into_response(),
        }
    }
}
