//! The request's id and its access log, as one layer: every request gets an id before anything
//! can log, runs with that id as its logging context (so every line it causes carries it and
//! can be found by it), and ends with one line. Paths, queries and headers are masked here; the
//! log formatter masks every field again as it writes the line.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use http::HeaderValue;
use tongban_core::envelope::EnvelopeMeta;
use tongban_core::mask;
use tongban_core::net::{IpText, Peer};
use tower::{Layer, Service};

use crate::context;
use crate::request_id;

/// Assigns the request id and writes the access line.
#[derive(Clone, Copy, Debug)]
pub struct AccessLogLayer;

#[derive(Clone, Debug)]
pub struct AccessLog<S> {
    inner: S,
}

impl<S> Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessLog { inner }
    }
}

impl<S> Service<Request> for AccessLog<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        // The poll's reading (see `tongban_core::clock`); the end reads the clock.
        let started = tongban_core::clock::instant();
        // A caller's id is untrusted text, masked in logs like any; ours has nothing to mask.
        let (header, id) = match request_id::of_caller(&req) {
            Some((text, v)) => (Some(v.clone()), context::LogId::new(text)),
            None => {
                let id = request_id::generate();
                (id.header(), context::LogId::own(id.as_str()))
            }
        };
        if let Some(v) = &header {
            req.headers_mut().insert(request_id::HEADER, v.clone());
        }
        let peer = req
            .extensions()
            .get::<ConnectInfo<Peer>>()
            .map(|c| c.0.text);
        let line = Line::arriving(&req, peer);
        let scope = Arc::new(id);
        // Called here, on the service that was polled ready: the future owns what it needs,
        // so no clone is left in its place (one boxed gateway service cloned and dropped per
        // request).
        let inner = context::within(&scope, || self.inner.call(req));
        Logged {
            inner,
            scope,
            end: Some(End {
                header,
                line,
                started,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// A request's answer on its way: polled with the request's id as the logging context,
    /// and logged when it comes. A future of its own: an `async` block inside a scoping
    /// future would move the whole inner future into place several times.
    pub struct Logged<F> {
        #[pin]
        inner: F,
        scope: Arc<context::LogId>,
        end: Option<End>,
    }
}

/// What the answer's side of the line needs.
struct End {
    header: Option<HeaderValue>,
    line: Line,
    started: Instant,
}

impl<F> Future for Logged<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let Ok(mut resp) = ready!(context::within(this.scope, || inner.poll(cx)));
        let End {
            header,
            mut line,
            started,
        } = this.end.take().expect("polled after it answered");
        if let Some(v) = header {
            resp.headers_mut().insert(request_id::HEADER, v);
        }
        line.status = resp.status().as_u16();
        line.code = resp
            .extensions()
            .get::<EnvelopeMeta>()
            .map_or(-1, |m| i64::from(m.code.0));
        // Whole microseconds: a float's long fraction could read as a card number to
        // masking.
        line.latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        // The line's message is the value's own first member (see `Line::write_json`); it
        // carries the request's id like every line the request caused.
        context::within(this.scope, || {
            tracing::info!(access = &line as &(dyn std::error::Error + 'static));
        });
        Poll::Ready(Ok(resp))
    }
}

/// The access line's fields, masked as the request arrives. The line's event carries them as
/// one value, an `Error` (the one kind of field value a visitor can downcast), so the JSON
/// layer writes them as they are instead of masking each again by shape, field by field
/// through `tracing`'s visitor: that was half the cost of the line. Other layers (the text
/// format) print it through `Display`, masked again by their writer.
#[derive(Debug)]
pub(crate) struct Line {
    method: http::Method,
    /// Masked by [`mask::mask_path`].
    path: String,
    /// Masked by [`mask::mask_query`].
    query: String,
    /// Masked by [`mask::mask_untrusted`].
    user_agent: String,
    client_ip: Option<IpText>,
    status: u16,
    /// The envelope's code, -1 when the answer carried none.
    code: i64,
    latency_us: u64,
}

impl Line {
    /// What the request says of itself, masked; the answer's fields are filled in later.
    fn arriving(req: &Request, client_ip: Option<IpText>) -> Self {
        Line {
            method: req.method().clone(),
            path: mask::mask_path(req.uri().path()),
            query: req.uri().query().map(mask::mask_query).unwrap_or_default(),
            user_agent: req
                .headers()
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(mask::mask_untrusted)
                .unwrap_or_default(),
            client_ip,
            status: 0,
            code: -1,
            latency_us: 0,
        }
    }

    /// The line's message and fields as JSON members (`"message":"Request completed.",
    /// "method":"GET",…`), in the order the line always had.
    pub(crate) fn write_json(&self, out: &mut String) {
        let text = |out: &mut String, key: &str, v: &str| {
            out.push_str(key);
            crate::escape::push_str_json(out, v);
        };
        out.push_str("\"message\":\"Request completed.\",");
        // The standard methods are written as they are; any other is client text, masked.
        if is_standard(&self.method) {
            out.push_str("\"method\":\"");
            out.push_str(self.method.as_str());
            out.push('"');
        } else {
            text(
                out,
                "\"method\":",
                &mask::mask_untrusted_cow(self.method.as_str()),
            );
        }
        text(out, ",\"path\":", &self.path);
        text(out, ",\"query\":", &self.query);
        out.push_str(",\"status\":");
        out.push_str(itoa::Buffer::new().format(self.status));
        out.push_str(",\"code\":");
        out.push_str(itoa::Buffer::new().format(self.code));
        out.push_str(",\"latency_us\":");
        out.push_str(itoa::Buffer::new().format(self.latency_us));
        text(
            out,
            ",\"client_ip\":",
            self.client_ip.as_deref().unwrap_or_default(),
        );
        text(out, ",\"user_agent\":", &self.user_agent);
    }
}

/// RFC 9110's methods and PATCH: fixed ASCII tokens, nothing to mask or escape.
fn is_standard(m: &http::Method) -> bool {
    use http::Method as M;
    [
        M::GET,
        M::POST,
        M::PUT,
        M::DELETE,
        M::HEAD,
        M::OPTIONS,
        M::PATCH,
        M::TRACE,
        M::CONNECT,
    ]
    .contains(m)
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Request completed. method={} path={} query={} status={} code={} latency_us={} \
             client_ip={} user_agent={:?}",
            self.method,
            self.path,
            self.query,
            self.status,
            self.code,
            self.latency_us,
            self.client_ip.as_deref().unwrap_or_default(),
            self.user_agent
        )
    }
}

impl std::error::Error for Line {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_is_masked_as_the_request_arrives_and_writes_valid_json() {
        let req = Request::builder()
            .method("GET")
            .uri(
                "/api/v1/citizens/11010519491231002X?xm=%E5%BC%A0%E4%B8%89&tel=13812345678&q=a%22b",
            )
            .header("user-agent", "app \"13812345678\"")
            .body(axum::body::Body::empty())
            .expect("request");
        let mut line = Line::arriving(&req, Some(IpText::new([10, 0, 0, 7].into())));
        line.status = 200;
        line.code = 0;
        line.latency_us = 42;
        let mut members = String::new();
        line.write_json(&mut members);
        let v: serde_json::Value =
            serde_json::from_str(&format!("{{{members}}}")).expect("JSON members");
        assert!(
            members.starts_with("\"message\":\"Request completed.\","),
            "{members}"
        );
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/api/v1/citizens/110***********002X");
        assert_eq!(v["query"], "xm=张*&tel=138****5678&q=a\"b");
        assert_eq!(v["status"], 200);
        assert_eq!(v["code"], 0);
        assert_eq!(v["latency_us"], 42);
        assert_eq!(v["client_ip"], "10.0.0.7");
        assert_eq!(v["user_agent"], "app \"138****5678\"");
        let text = line.to_string();
        assert!(
            !text.contains("13812345678") && !text.contains("张三"),
            "{text}"
        );
        // A method outside the standard ones is the client's text: masked too.
        let req = Request::builder()
            .method("X13812345678")
            .uri("/")
            .body(axum::body::Body::empty())
            .expect("request");
        let mut members = String::new();
        Line::arriving(&req, None).write_json(&mut members);
        let v: serde_json::Value =
            serde_json::from_str(&format!("{{{members}}}")).expect("JSON members");
        assert_eq!(v["method"], "X138****5678");
    }
}
