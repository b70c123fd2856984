//! The simulated system's HTTP interface: its API under `/api/v1/`, answered in the envelope
//! with the system's own codes; the control endpoints under `/sim/`; and, in front of the API,
//! the fault layer that counts requests and misbehaves when told to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tongban_core::clock::Clock;
use tongban_core::envelope::{Envelope, Ok as Answer};
use tongban_core::extract::parse_json;
use tongban_core::mask::{Kind, mask_as, mask_path};
use tongban_core::{ApiError, Code};

use crate::fault::{FAULT_HEADER, Fault, FaultQueue, FaultSpec, Pending};
use crate::population::{self, Person};
use crate::records::{Career, InsuranceType, Month, Record};

/// The system's own codes, answered with HTTP 200 in its envelope unless noted.
pub mod codes {
    /// 成功.
    pub const OK: u32 = 0;
    /// 参数错误: the body is not JSON, a field is missing or of the wrong type, a month is
    /// not `YYYY-MM`.
    pub const BAD_PARAMETER: u32 = 40_001;
    /// 身份证号码校验失败: not 18 characters with a valid GB 11643 check character.
    pub const BAD_ID_NUMBER: u32 = 40_002;
    /// 查询区间无效: `from` after `to`, or more than [`super::MAX_MONTHS`] months.
    pub const BAD_RANGE: u32 = 40_003;
    /// 未授权 (HTTP 401): the bearer key is missing or wrong.
    pub const UNAUTHORIZED: u32 = 40_100;
    /// 接口不存在 (HTTP 404).
    pub const NO_SUCH_API: u32 = 40_400;
    /// 查无此人: a valid ID number the system has no record of.
    pub const NO_SUCH_PERSON: u32 = 40_401;
    /// 姓名与身份证号码不一致.
    pub const NAME_MISMATCH: u32 = 40_402;
    /// 请求方法不支持 (HTTP 405).
    pub const WRONG_METHOD: u32 = 40_500;
    /// 系统繁忙: what an `error_code` fault answers unless told another code.
    pub const BUSY: u32 = 50_001;
}

/// Most months one query may cover.
pub const MAX_MONTHS: u32 = 120;

/// The simulator's state, shared by every connection.
#[derive(Debug)]
pub(crate) struct Sim {
    faults: Mutex<FaultQueue>,
    stats: Mutex<Stats>,
    api_key: Option<String>,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
}

/// What the simulator has seen, for tests that must prove a client stopped calling.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests to the API (everything outside `/sim/`), those given a fault included.
    pub requests: u64,
    /// Contribution-record queries that reached their handler.
    pub contribution_record_queries: u64,
    /// Faults shown, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Requests the queued faults still cover.
    pub pending_faults: u64,
}

/// Set by a `reset` fault: the connection serving the request ends with a TCP reset.
#[derive(Debug, Default)]
pub(crate) struct ConnCtl {
    reset: AtomicBool,
}

#[derive(Deserialize)]
struct QueryBody {
    id_number: String,
    #[serde(default)]
    name: Option<String>,
    from: String,
    to: String,
}

#[derive(Serialize)]
struct Contributions<'a> {
    person: PersonView<'a>,
    records: Vec<Record>,
}

#[derive(Serialize)]
struct PersonView<'a> {
    name: &'a str,
    id_number: &'a str,
    insured_since: Option<Month>,
    insurance_types: Vec<InsuranceType>,
}

/// The whole interface.
pub(crate) fn router(sim: Arc<Sim>) -> Router {
    Router::new()
        .route(
            "/api/v1/contribution-record-queries",
            post(contribution_records),
        )
        .route("/sim/stats", get(stats))
        .route(
            "/sim/faults",
            get(list_faults).post(add_fault).delete(clear_faults),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(sim.clone(), front))
        .with_state(sim)
}

// === impl Sim ===

impl Sim {
    pub(crate) fn new(
        api_key: Option<String>,
        clock: Arc<dyn Clock>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            faults: Mutex::default(),
            stats: Mutex::default(),
            api_key,
            clock,
            shutdown,
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = lock(&self.stats).clone();
        s.pending_faults = lock(&self.faults).remaining();
        s
    }

    pub(crate) fn inject(&self, fault: Fault, count: u32) {
        lock(&self.faults).push(fault, count);
    }

    pub(crate) fn clear_faults(&self) -> u64 {
        lock(&self.faults).clear()
    }

    /// The last month with records: the one before the current month in China.
    fn last_month(&self) -> Month {
        let days = (self.clock.now_ms() + 8 * 3_600_000).div_euclid(86_400_000);
        let (y, m, _) = tongban_core::date::civil_from_days(days);
        Month::new(u32::try_from(y).unwrap_or(2024), m).prev()
    }

    /// Resolves when the simulator stops.
    async fn stopped(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

// === impl ConnCtl ===

impl ConnCtl {
    pub(crate) fn reset_requested(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// In front of every route: the API's requests are counted, given their fault, and must carry
/// the key; the control endpoints pass untouched.
async fn front(State(sim): State<Arc<Sim>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/sim/") {
        return next.run(req).await;
    }
    lock(&sim.stats).requests += 1;
    let header = req
        .headers()
        .get(FAULT_HEADER)
        .map(|v| v.to_str().map_err(|_| "X-Sim-Fault 须为 ASCII".to_owned()));
    let fault = match header {
        Some(Ok(v)) => match Fault::from_header(v) {
            Ok(f) => Some(f),
            Err(msg) => {
                return ApiError::new(Code::BAD_PARAMETER)
                    .with_msg(msg)
                    .into_response();
            }
        },
        Some(Err(msg)) => {
            return ApiError::new(Code::BAD_PARAMETER)
                .with_msg(msg)
                .into_response();
        }
        None => lock(&sim.faults).take(),
    };
    let kind = fault.as_ref().map_or("none", |f| f.kind().name());
    tracing::info!(method = %req.method(), path = %mask_path(path), fault = kind, "Request received.");
    if let Some(f) = &fault {
        *lock(&sim.stats)
            .faults
            .entry(f.kind().name().to_owned())
            .or_default() += 1;
    }
    match fault {
        None => {}
        Some(Fault::Delay { ms }) => {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                () = sim.stopped() => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Some(Fault::Hang) => {
            sim.stopped().await;
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(Fault::Reset) => {
            return match req.extensions().get::<Arc<ConnCtl>>() {
                Some(ctl) => {
                    // The server sees the flag before writing a byte of this answer.
                    ctl.reset.store(true, Ordering::Release);
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
                None => error_page(StatusCode::INTERNAL_SERVER_ERROR),
            };
        }
        Some(Fault::Status { status }) => {
            return error_page(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        Some(Fault::Malformed) => {
            let cut = "{\"code\":0,\"msg\":\"成功\",\"data\":{\"person\":{\"name\":\"";
            return json(StatusCode::OK, cut.as_bytes().to_vec());
        }
        Some(Fault::ErrorCode { code, msg }) => {
            let body = serde_json::json!({ "code": code, "msg": msg }).to_string();
            return json(StatusCode::OK, body.into_bytes());
        }
    }
    if let Some(key) = &sim.api_key {
        let expected = format!("Bearer {key}");
        let given = req.headers().get(header::AUTHORIZATION);
        if given.is_none_or(|v| v.as_bytes() != expected.as_bytes()) {
            return business_status(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, "未授权");
        }
    }
    next.run(req).await
}

/// `POST /api/v1/contribution-record-queries`.
async fn contribution_records(State(sim): State<Arc<Sim>>, body: Bytes) -> Response {
    lock(&sim.stats).contribution_record_queries += 1;
    let q: QueryBody = match parse_json(&body) {
        Ok(q) => q,
        Err(e) => return business(codes::BAD_PARAMETER, e.message()),
    };
    let id = q.id_number.trim();
    if !tongban_core::idcard::is_valid(id.as_bytes()) {
        tracing::info!(code = codes::BAD_ID_NUMBER, "Contribution query refused.");
        return business(codes::BAD_ID_NUMBER, "身份证号码校验失败");
    }
    let (Ok(from), Ok(to)) = (q.from.parse::<Month>(), q.to.parse::<Month>()) else {
        return business(codes::BAD_PARAMETER, "from、to 须为 YYYY-MM 格式的月份");
    };
    if from > to || from.span(to) > MAX_MONTHS {
        let msg = format!("查询区间无效：起始月份不能晚于截止月份，且至多 {MAX_MONTHS} 个月");
        return business(codes::BAD_RANGE, &msg);
    }
    let masked = mask_as(Kind::IdNumber, id);
    let Some(person) = population::find(id) else {
        tracing::info!(id_number = %masked, code = codes::NO_SUCH_PERSON, "Contribution query for an unknown person.");
        return business(codes::NO_SUCH_PERSON, "查无此人");
    };
    if q.name.as_deref().is_some_and(|n| n.trim() != person.name) {
        tracing::info!(id_number = %masked, code = codes::NAME_MISMATCH, "Contribution query with a name that does not match.");
        return business(codes::NAME_MISMATCH, "姓名与身份证号码不一致");
    }
    let career = Career::of(person);
    let records = career.records(from, to.min(sim.last_month()));
    tracing::info!(id_number = %masked, records = records.len(), "Contribution records queried.");
    Answer(contributions(person, &career, records)).into_response()
}

fn contributions<'a>(
    person: &'a Person,
    career: &Career,
    records: Vec<Record>,
) -> Contributions<'a> {
    Contributions {
        person: PersonView {
            name: &person.name,
            id_number: &person.id_number,
            insured_since: career.insured_since(),
            insurance_types: career.insurance_types(),
        },
        records,
    }
}

/// `GET /sim/stats`.
async fn stats(State(sim): State<Arc<Sim>>) -> Answer<Stats> {
    Answer(sim.stats())
}

/// `GET /sim/faults`: what is queued.
async fn list_faults(State(sim): State<Arc<Sim>>) -> Answer<Vec<Pending>> {
    Answer(lock(&sim.faults).pending())
}

/// `POST /sim/faults`: queues a fault for the next `count` requests.
async fn add_fault(
    State(sim): State<Arc<Sim>>,
    body: Bytes,
) -> Result<Answer<Vec<Pending>>, ApiError> {
    let spec: FaultSpec = parse_json(&body)?;
    let bad = |msg: String| ApiError::new(Code::BAD_PARAMETER).with_msg(msg);
    let fault = spec.fault().map_err(bad)?;
    let count = spec.count().map_err(bad)?;
    tracing::info!(kind = fault.kind().name(), count, "Fault queued.");
    let mut q = lock(&sim.faults);
    q.push(fault, count);
    Ok(Answer(q.pending()))
}

/// `DELETE /sim/faults`: forgets every queued fault.
async fn clear_faults(State(sim): State<Arc<Sim>>) -> Answer<serde_json::Value> {
    let cleared = sim.clear_faults();
    Answer(serde_json::json!({ "cleared": cleared }))
}

async fn not_found() -> Response {
    business_status(StatusCode::NOT_FOUND, codes::NO_SUCH_API, "接口不存在")
}

async fn wrong_method() -> Response {
    business_status(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::WRONG_METHOD,
        "请求方法不支持",
    )
}

/// An answer of the system's own: HTTP 200 with its code, as provincial systems answer.
fn business(code: u32, msg: &str) -> Response {
    business_status(StatusCode::OK, code, msg)
}

fn business_status(status: StatusCode, code: u32, msg: &str) -> Response {
    let env: Envelope<()> = Envelope {
        code,
        msg: Some(msg.to_owned()),
        data: None,
    };
    json(status, serde_json::to_vec(&env).unwrap_or_default())
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = (status, Body::from(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// What a web server in front of the system shows when it fails: HTML, not the envelope.
fn error_page(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    let code = status.as_u16();
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{code} {reason}</title></head>\
         <body><h1>{code} {reason}</h1><hr><p>province-gateway</p></body></html>\n"
    );
    let mut r = (status, page).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    r
}
