//! Enforces signatures on routes marked `signed`: refuses (20001 with a `reason`) before the
//! request goes further, and signs the answer. The nonce is spent only after the signature
//! verifies, so forged requests cannot burn a client's nonces.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Limited};
use tongban_core::{ApiError, Code};
use tower::{Layer, Service, ServiceExt};

use super::canonical::{self, Signed, Verdict, WINDOW_SECS};
use super::{KEY_ID, NONCE, NonceStore, SIGNATURE, SigningKeys, TIMESTAMP};
use crate::BoxFuture;
use crate::routed::Routed;
use tongban_core::clock::Clock;

/// Largest answer signed; a larger one is refused rather than sent unsigned.
const MAX_SIGNED_ANSWER: usize = 8 * 1024 * 1024;

/// Signature checks of the request's route.
#[derive(Clone, Debug)]
pub struct SignatureLayer {
    keys: Arc<dyn SigningKeys>,
    nonces: Arc<dyn NonceStore>,
    clock: Arc<dyn Clock>,
}

#[derive(Clone, Debug)]
pub struct SignatureService<S> {
    inner: S,
    layer: SignatureLayer,
}

impl SignatureLayer {
    pub fn new(
        keys: Arc<dyn SigningKeys>,
        nonces: Arc<dyn NonceStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            keys,
            nonces,
            clock,
        }
    }
}

impl<S> Layer<S> for SignatureLayer {
    type Service = SignatureService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SignatureService {
            inner,
            layer: self.clone(),
        }
    }
}

fn refuse(v: Verdict) -> Response {
    ApiError::new(Code::REFUSED)
        .with_msg(v.message())
        .with_data(serde_json::json!({ "reason": v.reason() }))
        .into_response()
}

impl<S> Service<Request<Body>> for SignatureService<S>
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
        // Cloned only for a signed route (a count shared by every worker thread).
        let route = Routed::of(&req)
            .filter(|r| r.route.spec.signed)
            .map(|r| r.route.clone());
        let Some(route) = route else {
            return self.inner.call(req);
        };
        // Verification reads the body first: the inner service is called later, by a clone.
        let mut inner = self.inner.clone();
        let l = self.layer.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let header = |n: http::HeaderName| {
                parts
                    .headers
                    .get(n)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let (Some(key_id), Some(timestamp), Some(nonce), Some(signature)) = (
                header(KEY_ID),
                header(TIMESTAMP),
                header(NONCE),
                header(SIGNATURE),
            ) else {
                return Ok(refuse(Verdict::Missing));
            };
            let signed = Signed {
                key_id: &key_id,
                timestamp: &timestamp,
                nonce: &nonce,
                signature: &signature,
            };
            let now = l.clock.now();
            let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
            if let Err(v) = canonical::check_form(&signed, now_secs) {
                return Ok(refuse(v));
            }
            let key = match l.keys.key(&parts, &key_id).await {
                Ok(Some(k)) => k,
                Ok(None) => return Ok(refuse(Verdict::UnknownKey)),
                Err(e) => return Ok(e.into_response()),
            };
            let body =
                match crate::body::read(&parts.headers, body, route.spec.max_body_bytes).await {
                    Ok(b) => b,
                    Err(refused) => return Ok(refused),
                };
            let text = canonical::request_string(
                parts.method.as_str(),
                parts.uri.path(),
                parts.uri.query(),
                &body,
                &signed,
            );
            if let Err(v) = canonical::verify(&key, &text, &signature) {
                return Ok(refuse(v));
            }
            let ttl = Duration::from_secs(2 * WINDOW_SECS.unsigned_abs());
            match l
                .nonces
                .first_use(&format!("{key_id}:{nonce}"), ttl, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => return Ok(refuse(Verdict::Replayed)),
                Err(error) => {
                    // Fail closed: without the store a replay cannot be told apart.
                    tracing::error!(%error, "Nonce store unavailable; signed request refused.");
                    return Ok(ApiError::new(Code::BUSY_RETRY_LATER).into_response());
                }
            }
            let resp = inner
                .ready()
                .await?
                .call(Request::from_parts(parts, Body::from(body)))
                .await?;
            let (mut rparts, rbody) = resp.into_parts();
            let bytes = match Limited::new(rbody, MAX_SIGNED_ANSWER).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Ok(ApiError::new(Code::THIRD_PARTY_BAD_DATA).into_response()),
            };
            let ts = i64::try_from(l.clock.now().as_secs()).unwrap_or(i64::MAX);
            let sig = canonical::sign(
                &key,
                &canonical::response_string(rparts.status.as_u16(), &bytes, ts, &nonce, &key_id),
            );
            if let (Ok(t), Ok(s)) = (
                HeaderValue::from_str(&ts.to_string()),
                HeaderValue::from_str(&sig),
            ) {
                rparts.headers.insert(TIMESTAMP, t);
                rparts.headers.insert(SIGNATURE, s);
            }
            Ok(Response::from_parts(rparts, Body::from(bytes)))
        })
    }
}
