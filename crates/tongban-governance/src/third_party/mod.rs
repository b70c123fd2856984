//! The one way a service calls a third-party JSON system over HTTP(S): connect, read and total
//! timeouts, retries within a budget, a breaker, a bearer key, and the answer read as the
//! envelope `{"code": 0, "msg"?, "data"?}`. Every failure is one code of the 30000 series
//! ([`Reason`]); the key, request and answer bodies never reach an error or a log line.
//!
//! Retries follow the gateway's rule: a connect failure is retried for every call (the system
//! never saw it), a read timeout, broken connection or 5xx only for idempotent calls (or with
//! `retry.non_idempotent`), and only while the budget has a token. The breaker counts every
//! attempt; while it is open, calls answer 30000 without touching the network.

mod answer;
mod config;
mod connect;
mod error;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tongban_core::clock::{Clock, SystemClock};
use tongban_core::mask::mask_path;

use self::connect::{ConnectWatch, Phase, WatchLayer};
use crate::breaker::{Breaker, Permit, State};
use crate::retry::{Budget, Reach, RetryRule, is_idempotent, may_retry};

pub use self::config::{BearerKey, ConfigError, ThirdPartyConfig};
pub use self::error::{Reason, ThirdPartyError};

/// A client for one third-party system; clones share connections, breaker and budget.
#[derive(Clone, Debug)]
pub struct ThirdPartyClient {
    inner: Arc<Inner>,
}

/// One call being prepared: [`send`](Call::send) makes it.
#[must_use = "a call does nothing until sent"]
pub struct Call<'a> {
    client: &'a ThirdPartyClient,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Option<Bytes>,
    idempotent: Option<bool>,
    invalid: Option<&'static str>,
}

struct Inner {
    part: Arc<str>,
    /// The base URL without its trailing slash.
    base: String,
    http: reqwest::Client,
    /// `Bearer …`, marked sensitive; made once, so the key is not formatted again per call.
    auth: Option<HeaderValue>,
    read_timeout: Duration,
    total_timeout: Duration,
    max_answer_bytes: usize,
    retry: RetryRule,
    budget: Budget,
    breaker: Mutex<Breaker>,
    clock: Arc<dyn Clock>,
}

/// Reports an attempt to the breaker even if the call is dropped midway, so an abandoned probe
/// cannot leave the breaker half-open for ever.
struct Trial<'a> {
    inner: &'a Inner,
    permit: Permit,
    start: Duration,
    reported: bool,
}

// === impl ThirdPartyClient ===

impl ThirdPartyClient {
    /// A client on the system clock.
    pub fn new(config: ThirdPartyConfig) -> Result<Self, ConfigError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A client whose breaker and budget read `clock` (tests move it by hand).
    pub fn with_clock(
        config: ThirdPartyConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let fail = |reason: &str| ConfigError {
            name: config.name.clone(),
            reason: reason.to_owned(),
        };
        let auth = match &config.bearer_key {
            Some(key) => {
                let value = zeroize::Zeroizing::new(format!("Bearer {}", key.expose()));
                let mut v = HeaderValue::from_str(&value)
                    .map_err(|_| fail("bearer_key has characters a header cannot carry"))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout())
            .connector_layer(WatchLayer)
            // An API answers where it is asked; a redirect is an answer (30013), not a detour.
            .redirect(reqwest::redirect::Policy::none())
            // Provincial systems are reached directly; a proxy from the environment would
            // silently reroute citizens' data.
            .no_proxy()
            .user_agent(concat!("tongban/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| fail("the HTTP client could not be built"))?;
        let now = clock.now();
        Ok(Self {
            inner: Arc::new(Inner {
                part: Arc::from(config.name.as_str()),
                base: config.base_url.trim_end_matches('/').to_owned(),
                http,
                auth,
                read_timeout: config.read_timeout(),
                total_timeout: config.total_timeout(),
                max_answer_bytes: config.max_answer_bytes,
                retry: config.retry,
                budget: Budget::new(&config.retry, now),
                breaker: Mutex::new(Breaker::new(config.breaker)),
                clock,
            }),
        })
    }

    /// The system's name, from the configuration.
    pub fn name(&self) -> &str {
        &self.inner.part
    }

    /// Where the breaker stands now.
    pub fn breaker_state(&self) -> State {
        let now = self.inner.clock.now();
        self.inner.lock_breaker().state(now)
    }

    /// A call of `method` on `path` (appended to the base URL: `""` or starting with `/`).
    pub fn request(&self, method: Method, path: &str) -> Call<'_> {
        let invalid = (!path.is_empty() && !path.starts_with('/')).then_some("path");
        Call {
            client: self,
            method,
            path: path.to_owned(),
            headers: HeaderMap::new(),
            body: None,
            idempotent: None,
            invalid,
        }
    }

    /// `GET path`: retried like any idempotent call.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ThirdPartyError> {
        self.request(Method::GET, path).send().await
    }

    /// `POST path` with a JSON body: retried only when it cannot have reached the system.
    pub async fn post<B, T>(&self, path: &str, body: &B) -> Result<T, ThirdPartyError>
    where
        B: Serialize + ?Sized,
        T: DeserializeOwned,
    {
        self.request(Method::POST, path).json(body).send().await
    }
}

// === impl Call ===

impl std::fmt::Debug for Call<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the path nor the body: either may carry personal data.
        f.debug_struct("Call")
            .field("part", &self.client.inner.part)
            .field("method", &self.method)
            .field("body_len", &self.body.as_ref().map(Bytes::len))
            .finish_non_exhaustive()
    }
}

impl Call<'_> {
    /// The JSON body.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => self.body = Some(Bytes::from(b)),
            Err(_) => self.invalid = Some("body"),
        }
        self
    }

    /// Declares whether repeating the call is harmless, whatever its method says: a `POST`
    /// that only queries may be retried like a `GET`.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// A header to send (a request id, say); never logged.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.insert(name, value);
        self
    }

    /// Makes the call: attempts until one succeeds or may not be repeated, then reads `data`.
    pub async fn send<T: DeserializeOwned>(self) -> Result<T, ThirdPartyError> {
        let inner = &*self.client.inner;
        let result = match self.invalid {
            Some(what) => Err(Reason::Invalid(what)),
            None => self.attempts().await,
        };
        result.map_err(|reason| {
            if reason == Reason::BreakerOpen {
                // The breaker's opening was logged once; every refusal would flood the log.
                tracing::debug!(part = %inner.part, "Third-party call refused: breaker open.");
            } else {
                tracing::warn!(
                    part = %inner.part,
                    method = %self.method,
                    path = %mask_path(&self.path),
                    code = reason.code().0,
                    reason = %reason,
                    "Third-party call failed."
                );
            }
            ThirdPartyError::new(inner.part.clone(), reason)
        })
    }

    async fn attempts<T: DeserializeOwned>(&self) -> Result<T, Reason> {
        let inner = &*self.client.inner;
        let deadline = Instant::now() + inner.total_timeout;
        let idempotent = self
            .idempotent
            .unwrap_or_else(|| is_idempotent(&self.method));
        // Built before the breaker is asked: a request that cannot be made says nothing of
        // the system and must not decide a probe.
        let template = self.build()?;
        let mut retries = 0;
        loop {
            let req = template.try_clone().ok_or(Reason::Invalid("body"))?;
            let Some(mut trial) = Trial::start(inner) else {
                return Err(Reason::BreakerOpen);
            };
            if retries == 0 {
                // Calls the breaker refused never reach the system, so they earn no retries.
                inner.budget.deposit(inner.clock.now());
            }
            let result = match tokio::time::timeout_at(deadline, self.once(req, deadline)).await {
                Ok(r) => r.and_then(|(status, body)| answer::read(status, &body)),
                Err(_) => Err(Reason::TotalTimeout),
            };
            trial.report(result.as_ref().err().is_some_and(Reason::is_unhealthy));
            let reason = match result {
                Ok(data) => return Ok(data),
                Err(r) => r,
            };
            let reach = match &reason {
                Reason::Connect | Reason::ConnectTimeout => Reach::NotConnected,
                Reason::Broken | Reason::ReadTimeout => Reach::MaybeSeen,
                Reason::Status(s) if *s >= 500 => Reach::MaybeSeen,
                Reason::TotalTimeout => Reach::OutOfTime,
                // A deliberate answer would only be repeated.
                _ => return Err(reason),
            };
            if retries < inner.retry.max_retries
                && may_retry(idempotent, reach, &inner.retry)
                && inner.budget.withdraw(inner.clock.now())
            {
                retries += 1;
                tracing::debug!(part = %inner.part, reason = %reason, retries, "Retrying a third-party call.");
                continue;
            }
            return Err(reason);
        }
    }

    /// One attempt: the status and the whole body, each read within the read timeout.
    async fn once(
        &self,
        req: reqwest::Request,
        deadline: Instant,
    ) -> Result<(u16, Vec<u8>), Reason> {
        let inner = &*self.client.inner;
        let read = inner.read_timeout;
        // A silence that lasts past the call's deadline is the total timeout's, not a read
        // timeout (the outer timer would say so a moment later).
        let silent = || {
            if Instant::now() >= deadline {
                Reason::TotalTimeout
            } else {
                Reason::ReadTimeout
            }
        };
        let watch = ConnectWatch::new();
        let mut phase = watch.subscribe();
        let started = Instant::now();
        let send = watch.scope(inner.http.execute(req));
        tokio::pin!(send);
        let mut resp = loop {
            let current = *phase.borrow_and_update();
            let silent_since = match current {
                Phase::Idle => Some(started),
                Phase::Connecting => None,
                Phase::Connected(at) => Some(at),
            };
            tokio::select! {
                biased;
                r = &mut send => break r.map_err(|e| classify(&e))?,
                changed = phase.changed() => {
                    if changed.is_err() {
                        // The watch lives as long as this attempt; cannot happen.
                        return Err(Reason::Broken);
                    }
                }
                () = sleep_until_opt(silent_since.map(|t| t + read)) => return Err(silent()),
            }
        };
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        loop {
            match tokio::time::timeout(read, resp.chunk()).await {
                Err(_) => return Err(silent()),
                Ok(Err(e)) => return Err(classify(&e)),
                Ok(Ok(None)) => return Ok((status, body)),
                Ok(Ok(Some(chunk))) => {
                    if body.len() + chunk.len() > inner.max_answer_bytes {
                        return Err(Reason::BadData("answer too large"));
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
    }

    fn build(&self) -> Result<reqwest::Request, Reason> {
        let inner = &*self.client.inner;
        let url = reqwest::Url::parse(&format!("{}{}", inner.base, self.path))
            .map_err(|_| Reason::Invalid("path"))?;
        let mut req = reqwest::Request::new(self.method.clone(), url);
        let h = req.headers_mut();
        h.clone_from(&self.headers);
        h.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(auth) = &inner.auth {
            h.insert(AUTHORIZATION, auth.clone());
        }
        if let Some(body) = &self.body {
            h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            *req.body_mut() = Some(reqwest::Body::from(body.clone()));
        }
        Ok(req)
    }
}

/// Sleeps until `at`, or for ever without one.
async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// What a transport error of reqwest means. No reqwest timeout is set but the connect's, so a
/// timeout is a connect timeout.
fn classify(e: &reqwest::Error) -> Reason {
    if e.is_connect() {
        if e.is_timeout() {
            Reason::ConnectTimeout
        } else {
            Reason::Connect
        }
    } else if e.is_timeout() {
        Reason::ReadTimeout
    } else if e.is_builder() {
        Reason::Invalid("request")
    } else {
        // The request went out (or may have): the connection closed, reset or sent garbage
        // before a whole answer.
        Reason::Broken
    }
}

// === impl Inner ===

impl Inner {
    fn lock_breaker(&self) -> std::sync::MutexGuard<'_, Breaker> {
        self.breaker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThirdPartyClient")
            .field("part", &self.part)
            .field("base", &self.base)
            .field("read_timeout", &self.read_timeout)
            .field("total_timeout", &self.total_timeout)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

// === impl Trial ===

impl<'a> Trial<'a> {
    /// Asks the breaker; `None` while it is open.
    fn start(inner: &'a Inner) -> Option<Self> {
        let now = inner.clock.now();
        let permit = inner.lock_breaker().try_acquire(now)?;
        Some(Self {
            inner,
            permit,
            start: now,
            reported: false,
        })
    }

    fn report(&mut self, unhealthy: bool) {
        if self.reported {
            return;
        }
        self.reported = true;
        let now = self.inner.clock.now();
        let (before, after) = {
            let mut b = self.inner.lock_breaker();
            let before = b.state(now);
            // A wall clock stepped back reads as no time at all, not as a slow call.
            let rt = now.saturating_sub(self.start);
            (before, b.on_complete(self.permit, now, rt, unhealthy))
        };
        if before != after {
            tracing::warn!(part = %self.inner.part, state = ?after, "Breaker changed state.");
        }
    }
}

impl Drop for Trial<'_> {
    fn drop(&mut self) {
        if !self.reported && self.permit == Permit::Probe {
            self.report(true);
        }
    }
}
