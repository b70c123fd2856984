//! The digital envelope on gateway routes (clause 6.3.2.2 d): on a route with `envelope`, a
//! request body sealed as `{kid, key, iv, data}` is opened here and forwarded in plaintext,
//! and the `data` of the upstream's answer is sealed back with the request's key (its `code`
//! and `msg` stay readable). Any failure to open answers 20004; the payload is never logged.
//! A route with `"envelope": "required"` refuses a plain body; `"optional"` takes both.

use std::convert::Infallible;
use std::fmt::Debug;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::{Body, HttpBody};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::Request;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use tongban_core::{ApiError, Code};
use tongban_crypto::envelope::{EnvelopeKeySet, EnvelopeSession, RequestEnvelope, open_request};
use tongban_crypto::sm2::Sm2CipherFormat;
use tower::{Layer, Service, ServiceExt};

use crate::BoxFuture;
use crate::routed::Routed;

/// Whether a route's request bodies travel sealed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeMode {
    /// Bodies are plain JSON (the default).
    #[default]
    Off,
    /// A sealed body is opened and its answer sealed; a plain one passes as it is.
    Optional,
    /// Every body must be sealed: a plain one is refused (20000).
    Required,
}

/// Where the gateway finds the envelope's key pairs (the key service, which rotates them).
pub trait EnvelopeKeySource: Send + Sync + Debug + 'static {
    fn envelope_keys(&self) -> Arc<EnvelopeKeySet>;
}

/// Has no key pair: sealed bodies are refused (20004) until keys are provided.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEnvelopeKeys;

impl EnvelopeKeySource for NoEnvelopeKeys {
    fn envelope_keys(&self) -> Arc<EnvelopeKeySet> {
        Arc::new(EnvelopeKeySet::new())
    }
}

/// Opens sealed bodies and seals answers on routes with `envelope`.
#[derive(Clone, Debug)]
pub struct EnvelopeLayer {
    keys: Arc<dyn EnvelopeKeySource>,
}

#[derive(Clone, Debug)]
pub struct EnvelopeService<S> {
    inner: S,
    keys: Arc<dyn EnvelopeKeySource>,
}

impl EnvelopeLayer {
    pub fn new(keys: Arc<dyn EnvelopeKeySource>) -> Self {
        Self { keys }
    }
}

impl<S> Layer<S> for EnvelopeLayer {
    type Service = EnvelopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        EnvelopeService {
            inner,
            keys: self.keys.clone(),
        }
    }
}

impl<S> Service<Request<Body>> for EnvelopeService<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible, Future = BoxFuture>
        + Clone
        + Send
        + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (mode, max) = Routed::of(&req).map_or((EnvelopeMode::Off, 0), |r| {
            (r.route.spec.envelope, r.route.spec.max_body_bytes)
        });
        // Off, or nothing to open (a GET): the request passes as it is.
        if mode == EnvelopeMode::Off || req.body().is_end_stream() {
            return self.inner.call(req);
        }
        let keys = self.keys.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let body = match crate::body::read(&parts.headers, body, max).await {
                Ok(b) => b,
                Err(refused) => return Ok(refused),
            };
            let sealed = serde_json::from_slice::<RequestEnvelope>(&body).ok();
            let Some(envelope) = sealed else {
                if mode == EnvelopeMode::Required {
                    return Ok(ApiError::new(Code::BAD_PARAMETER)
                        .with_msg("请求体须以数字信封加密")
                        .into_response());
                }
                return inner
                    .oneshot(Request::from_parts(parts, Body::from(body)))
                    .await;
            };
            let opened = open_request(
                &*keys.envelope_keys(),
                &envelope,
                Sm2CipherFormat::default(),
            );
            let (plaintext, session) = match opened {
                Ok(o) => o,
                Err(e) => {
                    tracing::info!(reason = ?e.reason(), "Envelope refused.");
                    return Ok(ApiError::new(Code::DECRYPT_FAILED).into_response());
                }
            };
            // The plaintext goes on as the body; its length is the proxy's to write.
            parts.headers.remove(CONTENT_LENGTH);
            let plain = Bytes::copy_from_slice(&plaintext);
            let resp = inner
                .oneshot(Request::from_parts(parts, Body::from(plain)))
                .await?;
            Ok(seal_answer(resp, &session).await)
        })
    }
}

/// The answer with its envelope's `data` sealed under the request's key; an answer that is
/// not the envelope or has no `data` (a refusal) goes back as it is.
async fn seal_answer(resp: Response, session: &EnvelopeSession) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(collected) = body.collect().await else {
        return ApiError::new(Code::THIRD_PARTY_BAD_DATA).into_response();
    };
    let bytes = collected.to_bytes();
    let Ok(mut env) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let Some(data) = env.get("data").filter(|d| !d.is_null()) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let sealed = serde_json::to_vec(data)
        .ok()
        .and_then(|json| session.seal_response(&json).ok())
        .and_then(|s| serde_json::to_value(s).ok());
    let Some(sealed) = sealed else {
        return ApiError::new(Code::BUSY).into_response();
    };
    env.insert("data".to_owned(), sealed);
    let Ok(out) = serde_json::to_vec(&env) else {
        return ApiError::new(Code::BUSY).into_response();
    };
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(out))
}
