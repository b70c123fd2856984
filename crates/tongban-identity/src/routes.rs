//! The login and session endpoints, answering the envelope: external login, token renewal,
//! sign-out, real-name and face verification, consents, collected fields, export and deletion.
//!
//! The caller's token comes from `Authorization: Bearer …` (or a `token` header, as
//! Appendix A names it); the device id from `X-Device-Id`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use http::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use tongban_core::envelope::Ok as Done;
use tongban_core::extract::Path;
use tongban_core::extract::{Json, Query};
use tongban_core::routes::Routes;
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_crypto::encoding::b64_decode;

use crate::login::Callback;
use crate::service::Identity;
use crate::session::Caller;

type Res<T> = Result<Done<T>, ApiError>;

/// The identity routes, to be mounted at the root of the API listener.
pub fn router(identity: Arc<Identity>) -> Router {
    routes(identity).into()
}

/// The identity routes with their paths (the public listener dispatches on them).
pub fn routes(identity: Arc<Identity>) -> Routes {
    table().with_state(identity)
}

/// Paths follow the URL rules of 6.2.3: lowercase, hyphens, plural nouns (tested).
fn table() -> Routes<Arc<Identity>> {
    Routes::new()
        .route("/api/v1/login-requests", post(begin_login))
        .route("/api/v1/login-callbacks", get(finish_login))
        .route("/api/v1/token-renewals", post(renew))
        .route("/api/v1/sessions", delete(sign_out_everywhere))
        .route("/api/v1/sessions/current", get(current).delete(sign_out))
        .route("/api/v1/real-name-verifications", post(real_name))
        .route("/api/v1/face-verifications", post(face))
        .route("/api/v1/purposes", get(purposes))
        .route("/api/v1/consents", get(consents).post(grant))
        .route("/api/v1/consents/{purpose}", delete(withdraw))
        .route("/api/v1/personal-fields", post(collect))
        .route("/api/v1/phones/current", get(phone))
        .route("/api/v1/data-exports", post(export))
        .route("/api/v1/users/current", delete(delete_data))
        .route("/api/v1/bindings/current", delete(unbind))
}

const TOKEN: http::HeaderName = tongban_core::header::TOKEN;
const DEVICE_ID: http::HeaderName = tongban_core::header::X_DEVICE_ID;

/// The bearer token of a request: `Authorization: Bearer …`, or the `token` header.
pub fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get(&TOKEN).and_then(|v| v.to_str().ok()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The device id of a request (`X-Device-Id`).
pub fn device_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(&DEVICE_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

async fn caller(id: &Identity, headers: &HeaderMap, level: AuthLevel) -> Result<Caller, ApiError> {
    let token = token_of(headers).ok_or_else(|| ApiError::new(Code::TOKEN_MISSING))?;
    id.resolve_at_least(token, device_of(headers), level).await
}

async fn begin_login(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
) -> Res<impl serde::Serialize> {
    Ok(Done(id.begin_login(device_of(&headers)).await?))
}

async fn finish_login(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Query(cb): Query<Callback>,
) -> Res<impl serde::Serialize> {
    Ok(Done(id.finish_login(&cb, device_of(&headers)).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    relogin_credential: String,
}

async fn renew(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Json(b): Json<RenewBody>,
) -> Res<impl serde::Serialize> {
    Ok(Done(
        id.relogin(&b.relogin_credential, device_of(&headers))
            .await?,
    ))
}

async fn current(State(id): State<Arc<Identity>>, headers: HeaderMap) -> Res<Caller> {
    Ok(Done(caller(&id, &headers, AuthLevel::Anonymous).await?))
}

async fn sign_out(State(id): State<Arc<Identity>>, headers: HeaderMap) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    id.sign_out(&c).await?;
    Ok(Done(json!({ "signed_out": 1 })))
}

async fn sign_out_everywhere(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    let n = id.sign_out_everywhere(&c).await?;
    Ok(Done(json!({ "signed_out": n })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RealNameBody {
    name: String,
    id_number: String,
}

async fn real_name(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (b, sealed): (RealNameBody, _) = open_body(&id, &headers, &body)?;
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    answer(
        sealed,
        &id.verify_real_name(&c, &b.name, &b.id_number).await?,
    )
}

/// A body that is plain JSON, or the digital envelope `{kid, key, iv, data}` sealing it
/// (clause 6.3.2.2 d): the parsed body, and the session that seals the answer when it was
/// sealed. An envelope that does not open answers 20004; nothing of its content is logged.
fn open_body<T: serde::de::DeserializeOwned>(
    id: &Identity,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(T, Option<tongban_crypto::envelope::EnvelopeSession>), ApiError> {
    let json = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json {
        return Err(ApiError::new(Code::BAD_PARAMETER)
            .with_msg("请求体须为 JSON（Content-Type: application/json）"));
    }
    let envelope = serde_json::from_slice::<tongban_crypto::envelope::RequestEnvelope>(body).ok();
    let Some(envelope) = envelope else {
        return Ok((tongban_core::extract::parse_json(body)?, None));
    };
    let keys = id
        .envelope_keys()
        .ok_or_else(|| ApiError::new(Code::DECRYPT_FAILED))?;
    let (plaintext, session) = tongban_crypto::envelope::open_request(
        &*keys,
        &envelope,
        tongban_crypto::sm2::Sm2CipherFormat::default(),
    )
    .map_err(|e| {
        tracing::info!(reason = ?e.reason(), "Envelope refused.");
        ApiError::new(Code::DECRYPT_FAILED)
    })?;
    Ok((
        tongban_core::extract::parse_json(&plaintext)?,
        Some(session),
    ))
}

/// `value` as the answer: sealed with the request's key when the request came sealed.
fn answer<T: serde::Serialize>(
    sealed: Option<tongban_crypto::envelope::EnvelopeSession>,
    value: &T,
) -> Result<Response, ApiError> {
    use axum::response::IntoResponse;
    let Some(session) = sealed else {
        return Ok(Done(value).into_response());
    };
    let json = serde_json::to_vec(value).map_err(|_| ApiError::new(Code::BUSY))?;
    let env = session
        .seal_response(&json)
        .map_err(|_| ApiError::new(Code::BUSY))?;
    Ok(Done(env).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaceBody {
    /// The live image, Base64.
    image: String,
}

async fn face(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Json(b): Json<FaceBody>,
) -> Res<impl serde::Serialize> {
    let c = caller(&id, &headers, AuthLevel::RealName).await?;
    let image = b64_decode(&b.image, "image")
        .map_err(|_| ApiError::new(Code::BAD_PARAMETER).with_msg("图像须为 Base64"))?;
    Ok(Done(id.verify_face(&c, &image).await?))
}

async fn purposes(State(id): State<Arc<Identity>>) -> Res<impl serde::Serialize> {
    Ok(Done(id.config().purposes.clone()))
}

async fn consents(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
) -> Res<impl serde::Serialize> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    Ok(Done(id.consents(&c).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    purpose: String,
    notice_version: String,
}

async fn grant(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Json(b): Json<GrantBody>,
) -> Res<impl serde::Serialize> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    Ok(Done(
        id.grant_consent(&c, &b.purpose, &b.notice_version).await?,
    ))
}

async fn withdraw(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    Path(purpose): Path<String>,
) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    let deleted = id.withdraw_consent(&c, &purpose).await?;
    Ok(Done(json!({ "fields_deleted": deleted })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectBody {
    purpose: String,
    values: BTreeMap<String, String>,
}

async fn collect(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let (b, sealed): (CollectBody, _) = open_body(&id, &headers, &body)?;
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    id.collect(&c, &b.purpose, &b.values).await?;
    answer(sealed, &json!({ "stored": b.values.len() }))
}

async fn phone(State(id): State<Arc<Identity>>, headers: HeaderMap) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    Ok(Done(json!({ "phone": id.phone(&c).await? })))
}

async fn export(State(id): State<Arc<Identity>>, headers: HeaderMap) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    Ok(Done(id.export(&c).await?))
}

async fn delete_data(
    State(id): State<Arc<Identity>>,
    headers: HeaderMap,
) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    id.delete_data(&c).await?;
    Ok(Done(json!({ "deleted": true })))
}

async fn unbind(State(id): State<Arc<Identity>>, headers: HeaderMap) -> Res<serde_json::Value> {
    let c = caller(&id, &headers, AuthLevel::Anonymous).await?;
    id.unbind(&c).await?;
    Ok(Done(json!({ "unbound": true })))
}

#[cfg(test)]
mod tests;
