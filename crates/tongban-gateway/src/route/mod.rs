//! Route rules: what a route matches (path prefix, host, methods), what it requires (auth
//! level) and the policies it carries; validation on registration; matching, free of I/O.

pub mod active;
pub mod layer;
pub mod url_rules;

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};
use tongban_core::AuthLevel;

use crate::balance::Strategy;
use crate::breaker::BreakerRule;
use crate::limit::LimitRule;

pub use tongban_governance::retry::RetryRule;
pub use url_rules::{UrlRule, UrlRuleViolation};

/// A route as operators write it (stored in the config centre, namespace `gateway-routes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Lowercase words with hyphens; the key in the config centre.
    pub id: String,
    /// Path prefix, matched segment by segment; `{name}` matches any one segment.
    pub prefix: String,
    /// Host to match (without port); any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Methods to match; any when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Required auth level: a route without one is refused.
    #[serde(default)]
    pub auth: Option<AuthLevel>,
    /// For `face_verified` routes: how old a face check may be, in seconds.
    #[serde(default = "default_face_max_age")]
    pub face_max_age_secs: u64,
    /// Where requests go.
    pub upstream: UpstreamSpec,
    /// Connect, per-try and total timeouts.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// When to try another instance, within a budget.
    #[serde(default)]
    pub retry: RetryRule,
    /// Rate limits, every one of which must admit the request.
    #[serde(default)]
    pub limits: Vec<LimitRule>,
    /// Most requests in flight at once on this route.
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Fail fast while the upstream is unwell (none: no breaker).
    #[serde(default)]
    pub breaker: Option<BreakerRule>,
    /// What to answer when the breaker is open.
    #[serde(default)]
    pub fallback: Fallback,
    /// Requests must carry a valid signature (see `docs/signing.md`); answers are signed.
    #[serde(default)]
    pub signed: bool,
    /// Pass upstream answers through untouched (static files, pages) instead of requiring the
    /// envelope.
    #[serde(default)]
    pub raw: bool,
    /// Largest request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// The digital envelope: `off` (the default), `optional` (sealed bodies are opened and
    /// their answers' `data` sealed; plain ones pass) or `required` (plain bodies refused).
    #[serde(default)]
    pub envelope: crate::envelope::EnvelopeMode,
    /// Forward request headers whose names contain `_` (dropped by default, as nginx does:
    /// some upstreams read `_` as `-`, so `Transfer_Encoding` could frame a body anew).
    #[serde(default)]
    pub underscores_in_headers: bool,
    /// Forward the citizen's own credentials (`Authorization`, `token`, `X-Device-Id`,
    /// `Cookie`) to the upstream. Off by default: the upstream learns the caller from the
    /// signed caller context, and never holds a token it could replay.
    #[serde(default)]
    pub forward_credentials: bool,
    /// Put the caller's real-name person (name and ID number), sealed for the service, in
    /// the caller context: for services whose business needs the citizen's identity (a
    /// social-insurance query). Off by default: a service learns no more than it needs.
    #[serde(default)]
    pub caller_person: bool,
}

/// Upstream instances: from the registry by service name, or listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// Registry service name.
    #[serde(default)]
    pub service: Option<String>,
    /// Static instances, used when no service is named.
    #[serde(default)]
    pub instances: Vec<StaticInstance>,
    /// `round_robin` (smooth weighted, the default), `least_request` (power of two choices) or
    /// `consistent_hash` (by user id, else client IP).
    #[serde(default)]
    pub balance: Strategy,
    /// Remove the route prefix before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticInstance {
    /// `host:port`.
    pub address: String,
    /// Share of the traffic against the route's other instances (default 100).
    #[serde(default = "default_weight")]
    pub weight: u32,
}

/// Timeouts, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timeouts {
    /// TCP connect to an instance (answers 30002 when exceeded).
    pub connect_ms: u64,
    /// One attempt, headers and body (30003).
    pub per_try_ms: u64,
    /// The whole request, retries included (30001).
    pub total_ms: u64,
}

/// What the breaker answers while open.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Fallback {
    /// 10019, 503.
    #[default]
    Busy,
    /// A fixed envelope.
    Static {
        code: u32,
        #[serde(default)]
        msg: Option<String>,
        #[serde(default)]
        data: Option<serde_json::Value>,
    },
    /// For GET: the last good answer to the same path and query; otherwise 10019.
    LastGood,
}

/// Why a route was refused.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RouteError {
    #[error(transparent)]
    Url(#[from] UrlRuleViolation),
    #[error("路由 {0} 未声明访问级别（auth: anonymous、real_name 或 face_verified）")]
    MissingAuth(String),
    #[error("{0}")]
    Invalid(String),
}

/// How a request fared against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a, T> {
    Found(&'a T),
    /// A route has the path but not the method (20002).
    WrongMethod,
    /// No route has the path (20404).
    None,
}

/// Validated routes, longest prefix first.
#[derive(Debug)]
pub struct Table<T> {
    entries: Vec<(Matcher, T)>,
}

/// The matching part of a route, compiled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    segments: Vec<Segment>,
    host: Option<String>,
    methods: Vec<Method>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param,
}

fn default_face_max_age() -> u64 {
    300
}

fn default_max_body() -> usize {
    1024 * 1024
}

fn default_weight() -> u32 {
    100
}

// === impl Timeouts ===

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 1_000,
            per_try_ms: 5_000,
            total_ms: 15_000,
        }
    }
}

impl Timeouts {
    pub fn connect(&self) -> Duration {
        Duration::from_millis(self.connect_ms)
    }
    pub fn per_try(&self) -> Duration {
        Duration::from_millis(self.per_try_ms)
    }
    pub fn total(&self) -> Duration {
        Duration::from_millis(self.total_ms)
    }
}

// === impl RouteSpec ===

impl RouteSpec {
    /// Checks everything a route must satisfy before it is stored; returns its matcher.
    pub fn validate(&self) -> Result<Matcher, RouteError> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !id_ok {
            return Err(RouteError::Invalid(
                "路由 id 须为 1 至 64 个小写字母、数字或连字符".to_owned(),
            ));
        }
        url_rules::check(&self.prefix)?;
        if self.auth.is_none() {
            return Err(RouteError::MissingAuth(self.id.clone()));
        }
        let u = &self.upstream;
        if u.service.is_none() && u.instances.is_empty() {
            return Err(RouteError::Invalid(
                "upstream 须指定 service 或 instances".to_owned(),
            ));
        }
        for i in &u.instances {
            if i.address
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
                || !(1..=10_000).contains(&i.weight)
            {
                return Err(RouteError::Invalid(format!(
                    "实例地址须为 host:port，权重 1 至 10000：{}",
                    i.address
                )));
            }
        }
        let t = &self.timeouts;
        if t.connect_ms == 0 || t.per_try_ms == 0 || t.total_ms < t.per_try_ms {
            return Err(RouteError::Invalid(
                "超时须大于 0，且总超时不小于单次超时".to_owned(),
            ));
        }
        self.retry.validate().map_err(RouteError::Invalid)?;
        for l in &self.limits {
            l.validate().map_err(RouteError::Invalid)?;
        }
        if let Some(b) = &self.breaker {
            b.validate().map_err(RouteError::Invalid)?;
        }
        if self.max_concurrency == Some(0) {
            return Err(RouteError::Invalid("并发上限须大于 0".to_owned()));
        }
        let mut methods = Vec::new();
        for m in &self.methods {
            let m = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| RouteError::Invalid(format!("未知的 HTTP 方法：{m}")))?;
            methods.push(m);
        }
        Ok(Matcher::new(&self.prefix, self.host.clone(), methods))
    }
}

// === impl Matcher ===

impl Matcher {
    pub fn new(prefix: &str, host: Option<String>, methods: Vec<Method>) -> Self {
        let segments = prefix
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        Self {
            segments,
            host: host.map(|h| h.to_ascii_lowercase()),
            methods,
        }
    }

    /// Whether the path (and host) match, ignoring the method.
    fn matches_path(&self, host: Option<&str>, path: &str) -> bool {
        if let Some(want) = &self.host {
            let have = host.map(|h| h.rsplit_once(':').map_or(h, |(h, _)| h));
            if !have.is_some_and(|h| h.eq_ignore_ascii_case(want)) {
                return false;
            }
        }
        // Segment by segment over the bytes, empty segments skipped (`//a/` is `/a`); this runs
        // for every route tried on every request, and `split` + `filter` cost four times more.
        let mut rest = path.as_bytes();
        for seg in &self.segments {
            while let [b'/', tail @ ..] = rest {
                rest = tail;
            }
            if rest.is_empty() {
                return false;
            }
            let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
            if let Segment::Literal(l) = seg
                && l.as_bytes() != &rest[..end]
            {
                return false;
            }
            rest = &rest[end..];
        }
        true
    }

    fn allows(&self, method: &Method) -> bool {
        self.methods.is_empty()
            || self.methods.contains(method)
            || (method == Method::HEAD && self.methods.contains(&Method::GET))
    }

    /// How many path segments the prefix covers (for stripping).
    pub fn depth(&self) -> usize {
        self.segments.len()
    }

    fn specificity(&self) -> (usize, bool) {
        (self.segments.len(), self.host.is_some())
    }
}

// === impl Table ===

impl<T> Table<T> {
    pub fn new(mut entries: Vec<(Matcher, T)>) -> Self {
        // Longest prefix first; a host-bound route before a host-free one of equal length.
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.specificity()));
        Self { entries }
    }

    pub fn find(&self, host: Option<&str>, method: &Method, path: &str) -> Match<'_, T> {
        let mut path_seen = false;
        for (m, t) in &self.entries {
            if m.matches_path(host, path) {
                if m.allows(method) {
                    return Match::Found(t);
                }
                path_seen = true;
            }
        }
        if path_seen {
            Match::WrongMethod
        } else {
            Match::None
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|(_, t)| t)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The path to forward: the request path without the route's first `depth` segments.
pub fn strip(path: &str, depth: usize) -> String {
    let rest: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .skip(depth)
        .collect();
    let mut out = format!("/{}", rest.join("/"));
    if path.ends_with('/') && !rest.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests;
