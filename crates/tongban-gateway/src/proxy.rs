//! The innermost service: picks an instance, forwards with per-try and total timeouts, retries
//! what may safely be retried within the budget, feeds outlier detection, and normalizes the
//! answer into the envelope.

use std::borrow::Cow;
use std::convert::Infallible;
use std::io::Read;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode};
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::net::IpText;
use tongban_core::{ApiError, Code};
use tower::Service;

use crate::BoxFuture;
use crate::balance::{Endpoint, Strategy};
use crate::context::Contexts;
use crate::normalize::{self, Failure, Verdict};
use crate::respond;
use crate::retry::{self, Attempt};
use crate::route;
use crate::route::active::ActiveRoute;
use crate::routed::Routed;
use crate::upstream::{Answer, Outgoing};

/// Largest upstream answer accepted, in bytes.
const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;

use tongban_core::header::{TOKEN, X_DEVICE_ID, X_FORWARDED_FOR, X_REQUEST_ID, X_TB_CALLER};

/// Forwards to the route's upstream.
#[derive(Clone, Debug)]
pub(crate) struct Proxy {
    pub(crate) contexts: Contexts,
}

impl Service<Request<Body>> for Proxy {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // The forwarding future itself is boxed (about 2 KB: the exchange's state is in it);
        // wrapped in another future, it was moved into place twice.
        Box::pin(forward(req, self.contexts.clone()))
    }
}

async fn forward(req: Request<Body>, contexts: Contexts) -> Result<Response, Infallible> {
    let (mut parts, body) = req.into_parts();
    // Taken out of the request, not cloned: the route's count is shared by every worker
    // thread.
    let Some(Routed {
        route,
        client,
        caller,
    }) = parts.extensions.remove::<Routed>()
    else {
        return Ok(ApiError::new(Code::NOT_FOUND).into_response());
    };
    // Made before the credentials it vouches for (the device id) are stripped.
    let context = contexts
        .header(&route, caller.as_ref(), &parts.headers)
        .await;
    // Only consistent hashing needs the key: the user, or else the client's address. The
    // strategy is the route's own (the balancer's lock is not needed to read it).
    let hash_key = (route.spec.upstream.balance == Strategy::ConsistentHash)
        .then(|| {
            caller
                .and_then(|c| c.user)
                .or_else(|| client.map(|c| c.text.to_string()))
        })
        .flatten();
    // The request's extension map (allocated for the route and the client's address), emptied,
    // carries the answer's meta: a new map for the answer was two allocations more.
    let mut extensions = std::mem::take(&mut parts.extensions);
    extensions.clear();
    let body = match crate::body::read(&parts.headers, body, route.spec.max_body_bytes).await {
        Ok(b) => b,
        Err(refused) => return Ok(refused),
    };
    let mut headers = std::mem::take(&mut parts.headers);
    strip(
        &mut headers,
        Strip::Request {
            underscores: route.spec.underscores_in_headers,
            credentials: route.spec.forward_credentials,
        },
    );
    // Whatever the client sent under the context's name is replaced, or removed.
    match context {
        Some(v) => headers.insert(X_TB_CALLER, v),
        None => headers.remove(X_TB_CALLER),
    };
    if let Some(c) = client {
        // Behind a trusted proxy the chain is extended; otherwise a client's own header is
        // replaced, so upstreams never see a forged chain.
        let peer = if c.via_trusted_proxy {
            IpText::new(c.peer)
        } else {
            c.text
        };
        // The client's own chain is looked up only when it is to be kept.
        let prev = c
            .via_trusted_proxy
            .then(|| headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()))
            .flatten();
        let value = match prev {
            Some(prev) => HeaderValue::from_str(&format!("{prev}, {peer}")),
            None => HeaderValue::from_str(&peer),
        };
        if let Ok(v) = value {
            headers.insert(X_FORWARDED_FOR, v);
        }
    }
    if !route.spec.raw {
        // The answer must be read to be judged: ask for it uncompressed (gzip is still decoded
        // if an upstream ignores this).
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    // The client's own target when the route keeps its prefix (no copy).
    let path_and_query: Cow<'_, str> = match (route.spec.upstream.strip_prefix, parts.uri.query()) {
        (false, _) => Cow::Borrowed(parts.uri.path_and_query().map_or("/", |pq| pq.as_str())),
        (true, None) => Cow::Owned(route::strip(parts.uri.path(), route.matcher.depth())),
        (true, Some(q)) => Cow::Owned(format!(
            "{}?{q}",
            route::strip(parts.uri.path(), route.matcher.depth())
        )),
    };
    // HEAD on an envelope route goes upstream as GET: the envelope is judged on the body a GET
    // has (a HEAD answer has none), and the server leaves that body out of the answer.
    if parts.method == Method::HEAD && !route.spec.raw {
        parts.method = Method::GET;
    }
    let call = Call {
        route: &route,
        method: &parts.method,
        headers: &headers,
        path_and_query: &path_and_query,
        body,
        hash_key: hash_key.as_deref(),
        started: tokio::time::Instant::from_std(tongban_core::clock::instant()),
    };
    let (mut resp, meta) = call.run().await;
    if let Some(meta) = meta {
        extensions.insert(meta);
        *resp.extensions_mut() = extensions;
    }
    Ok(resp)
}

struct Call<'a> {
    route: &'a ActiveRoute,
    method: &'a http::Method,
    headers: &'a HeaderMap,
    path_and_query: &'a str,
    body: Bytes,
    hash_key: Option<&'a str>,
    /// When forwarding started: the request's total time and its first try are counted from
    /// it (one clock read for both).
    started: tokio::time::Instant,
}

impl Call<'_> {
    /// The answer, and the meta of an upstream envelope passed on (answers made here carry
    /// their own).
    async fn run(&self) -> (Response, Option<EnvelopeMeta>) {
        let route = self.route;
        let spec = &route.spec;
        let mut now = route.clock.now();
        route.budget.deposit(now);
        let balancer = route.balancer();
        // End of the request's total time: each try ends at it or at its own limit, whichever
        // is first (one timer per try instead of two).
        let deadline = self.started + spec.timeouts.total();
        // Instances tried so far; a route makes at most 6 tries (max_retries is at most 5).
        let mut tried = [0usize; 6];
        let mut n_tried = 0;
        let mut attempt = 0;
        loop {
            if attempt > 0 {
                now = route.clock.now();
            }
            let Some(idx) = balancer.pick(now, self.hash_key, &tried[..n_tried]) else {
                tracing::warn!(route = %spec.id, "No upstream instance to send to.");
                return (
                    respond::upstream(Code::THIRD_PARTY_FAILED, self.request_id()),
                    None,
                );
            };
            if let Some(slot) = tried.get_mut(n_tried) {
                *slot = idx;
                n_tried += 1;
            }
            // Borrowed from the balancer held for the call (its count is shared by every
            // worker thread).
            let ep = &balancer.endpoints()[idx];
            let try_from = if attempt == 0 {
                self.started
            } else {
                tokio::time::Instant::now()
            };
            let try_until = (try_from + spec.timeouts.per_try()).min(deadline);
            let result = {
                let _in_flight = ep.start();
                self.try_once(ep, try_from, try_until).await
            };
            if matches!(result, Err(Failure::ReadTimeout)) && try_until == deadline {
                tracing::warn!(route = %spec.id, "Upstream did not answer within the total timeout.");
                let resp = respond::upstream(Failure::TotalTimeout.code(), self.request_id());
                return (resp, None);
            }
            let can_retry = |a: Attempt| {
                attempt < spec.retry.max_retries
                    && retry::may_retry(self.method, a, &spec.retry)
                    && route.budget.withdraw(route.clock.now())
            };
            match result {
                Ok(answer) => {
                    let (resp, code, meta) = self.respond(answer);
                    let failed = normalize::is_upstream_failure(resp.status(), code);
                    self.report(ep, !failed);
                    if failed && can_retry(Attempt::ServerError) {
                        attempt += 1;
                        continue;
                    }
                    return (resp, meta);
                }
                Err(f) => {
                    self.report(ep, false);
                    tracing::debug!(route = %spec.id, instance = %ep.address, failure = ?f, "Upstream attempt failed.");
                    if can_retry(Attempt::Failed(f)) {
                        attempt += 1;
                        continue;
                    }
                    return (respond::upstream(f.code(), self.request_id()), None);
                }
            }
        }
    }

    /// The request's id, for error envelopes (set by the access log layer before routing).
    fn request_id(&self) -> Option<&str> {
        self.headers
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
    }

    fn report(&self, ep: &Endpoint, ok: bool) {
        let r = self.route;
        if ep.report(ok, r.clock.now(), &r.outlier) {
            tracing::warn!(route = %r.spec.id, instance = %ep.address, "Instance ejected after consecutive failures.");
        }
        r.metrics.upstream(&r.spec.id, &ep.address, ok);
    }

    /// One try on `ep` from `from`, given up at `until` ([`Failure::ReadTimeout`]).
    async fn try_once(
        &self,
        ep: &Endpoint,
        from: tokio::time::Instant,
        until: tokio::time::Instant,
    ) -> Result<Answer, Failure> {
        let req = Outgoing {
            method: self.method,
            target: self.path_and_query,
            headers: self.headers,
            body: &self.body,
        };
        let mut answer = self
            .route
            .upstream
            .send(&ep.address, &req, MAX_ANSWER_BYTES, from, until)
            .await?;
        answer.body = decode(&mut answer.headers, answer.body).ok_or(Failure::Broken)?;
        Ok(answer)
    }

    /// The client's answer for an upstream answer, the code it carries, and the meta to put
    /// on it when the envelope is passed on (a replaced answer carries its own).
    fn respond(&self, a: Answer) -> (Response, Code, Option<EnvelopeMeta>) {
        let code = if self.route.spec.raw {
            normalize::envelope_code(&a.body).unwrap_or(Code::OK)
        } else {
            match normalize::judge(a.status, &a.body) {
                Verdict::Envelope(code) => code,
                Verdict::Replace(code) => {
                    tracing::warn!(route = %self.route.spec.id, status = a.status.as_u16(), "Upstream answer was not the envelope; replaced.");
                    let mut resp = respond::upstream(code, self.request_id());
                    if a.status.is_server_error() {
                        // Keep the 5xx visible to breakers and retries.
                        *resp.status_mut() = StatusCode::BAD_GATEWAY;
                    }
                    return (resp, code, None);
                }
            }
        };
        // Content-Length and Transfer-Encoding are not among them (see `tongban_http1::client::parse_head`).
        let mut headers = a.headers;
        strip(&mut headers, Strip::Answer);
        let mut resp = Response::new(Body::from(a.body));
        *resp.status_mut() = a.status;
        *resp.headers_mut() = headers;
        let meta = (!self.route.spec.raw).then_some(EnvelopeMeta {
            code,
            status: a.status,
        });
        (resp, code, meta)
    }
}

/// Decodes a gzip answer in place; `None` if it cannot be decoded.
fn decode(headers: &mut HeaderMap, body: Bytes) -> Option<Bytes> {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"));
    if !gzip {
        return Some(body);
    }
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_ANSWER_BYTES).unwrap_or(u64::MAX);
    flate2::read::GzDecoder::new(&body[..])
        .take(limit + 1)
        .read_to_end(&mut out)
        .ok()?;
    if out.len() > MAX_ANSWER_BYTES {
        return None;
    }
    headers.remove(header::CONTENT_ENCODING);
    Some(Bytes::from(out))
}

/// Which headers [`strip`] removes besides the hop-by-hop ones.
#[derive(Clone, Copy, Debug)]
enum Strip {
    /// A request going upstream: names with `_` too, unless the route keeps them (nginx drops
    /// them: some upstreams read `_` as `-`, so `Transfer_Encoding` could frame a body anew);
    /// the citizen's credentials, unless the route forwards them.
    Request {
        underscores: bool,
        credentials: bool,
    },
    /// An answer going to the client: what names the upstream's software too.
    Answer,
}

fn strip(h: &mut HeaderMap, what: Strip) {
    // One pass over the names finds what to remove; most messages carry none, and removing
    // absent names one by one would hash each of them.
    let mut remove: Vec<HeaderName> = Vec::new();
    let mut named_by_connection = false;
    for name in h.keys() {
        let drop = if is_hop_by_hop(name) {
            named_by_connection |= *name == header::CONNECTION;
            true
        } else {
            match what {
                Strip::Request {
                    underscores,
                    credentials,
                } => {
                    (!underscores && name.as_str().contains('_'))
                        || (!credentials && is_credential(name))
                }
                Strip::Answer => is_software(name),
            }
        };
        if drop {
            remove.push(name.clone());
        }
    }
    if remove.is_empty() {
        return;
    }
    // Headers named by Connection are hop-by-hop too (RFC 9110 §7.6.1).
    if named_by_connection {
        remove.extend(
            h.get_all(header::CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok()),
        );
    }
    for n in remove {
        h.remove(n);
    }
}

/// The citizen's own credentials: a service holding them could act as the citizen.
fn is_credential(n: &HeaderName) -> bool {
    *n == header::AUTHORIZATION || *n == header::COOKIE || *n == TOKEN || *n == X_DEVICE_ID
}

/// Headers that tell a client which software and version serves the upstream: an attacker's
/// first question, and nothing a citizen's client needs.
fn is_software(n: &HeaderName) -> bool {
    *n == header::SERVER
        || matches!(
            n.as_str(),
            "x-powered-by" | "x-aspnet-version" | "x-aspnetmvc-version" | "x-generator"
        )
}

fn is_hop_by_hop(n: &HeaderName) -> bool {
    *n == header::CONNECTION
        || *n == header::PROXY_AUTHENTICATE
        || *n == header::PROXY_AUTHORIZATION
        || *n == header::TE
        || *n == header::TRAILER
        || *n == header::TRANSFER_ENCODING
        || *n == header::UPGRADE
        || n.as_str() == "keep-alive"
        || n.as_str() == "proxy-connection"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_stripped() {
        let mut h = map(&[
            ("host", "a"),
            ("connection", "close, X-Secret"),
            ("connection", "x-other"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("x-kept", "3"),
        ]);
        strip(
            &mut h,
            Strip::Request {
                underscores: false,
                credentials: false,
            },
        );
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "x-kept"]);
    }

    #[test]
    fn end_to_end_headers_are_left_alone() {
        let before = map(&[("host", "a"), ("x-secret", "1"), ("accept", "*/*")]);
        let mut h = before.clone();
        strip(
            &mut h,
            Strip::Request {
                underscores: false,
                credentials: false,
            },
        );
        assert_eq!(h, before);
        let mut h = before.clone();
        strip(&mut h, Strip::Answer);
        assert_eq!(h, before);
    }

    #[test]
    fn underscored_names_are_dropped_unless_the_route_keeps_them() {
        let before = map(&[
            ("transfer_encoding", "chunked"),
            ("content-length", "5"),
            ("x_user", "admin"),
            ("x-kept", "1"),
        ]);
        let mut h = before.clone();
        strip(
            &mut h,
            Strip::Request {
                underscores: false,
                credentials: false,
            },
        );
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-length", "x-kept"]);
        let mut h = before.clone();
        strip(
            &mut h,
            Strip::Request {
                underscores: true,
                credentials: false,
            },
        );
        assert_eq!(h, before);
    }

    #[test]
    fn credentials_are_dropped_unless_the_route_forwards_them() {
        let before = map(&[
            ("authorization", "Bearer t"),
            ("token", "t"),
            ("x-device-id", "d"),
            ("cookie", "s=1"),
            ("x-kept", "1"),
        ]);
        let mut h = before.clone();
        strip(
            &mut h,
            Strip::Request {
                underscores: false,
                credentials: false,
            },
        );
        let left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept"]);
        let mut h = before.clone();
        strip(
            &mut h,
            Strip::Request {
                underscores: false,
                credentials: true,
            },
        );
        assert_eq!(h, before);
    }

    #[test]
    fn answers_lose_the_names_of_the_upstream_software() {
        let mut h = map(&[
            ("server", "Apache-Coyote/1.1"),
            ("X-Powered-By", "Servlet/3.0"),
            ("x-aspnet-version", "4.0"),
            ("content-type", "application/json"),
            ("x_kept_in_answers", "1"),
        ]);
        strip(&mut h, Strip::Answer);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["content-type", "x_kept_in_answers"]);
    }
}
