//! The HTTP interface: four resources under `/api/v1/`, every answer the envelope, every
//! handler behind the verified caller context with its level checked here (the gateway checks
//! the route's level too; the service does not rely on it). Input is validated before anything
//! is written; what fails answers 20000 naming the field and changes no table.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use http::{HeaderMap, HeaderValue, header};
use serde::Deserialize;
use serde_json::{Value, json};
use tongban_core::clock::Clock;
use tongban_core::envelope::{Envelope, EnvelopeMeta};
use tongban_core::extract::{Json, Path, Query};
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_crypto::utf8_bytes as to_bytes;
use tongban_sdk::Done;
use tongban_sdk::codes::BusinessCodes;
use tongban_sdk::context::{Caller, ContextVerifier};
use tongban_store::StoreError;
use tower_http::catch_panic::CatchPanicLayer;

use crate::db::{Booked, BookingRow, Cancelled, Db, NewBooking, Refusal};
use crate::halls::{self, DISTRICT, HALLS, Hall, Period};
use crate::schedule::{LocalDate, SLOT_MINUTES, iso_local};

/// The service's own codes, in block b of Appendix A (13001–15000).
pub mod codes {
    /// 该时段已约满.
    pub const SLOT_FULL: u32 = 13_001;
    /// 您当天在该大厅已有预约: one active booking per citizen per hall per day.
    pub const ALREADY_BOOKED: u32 = 13_002;
    /// 距预约时间不足 1 小时，不能取消.
    pub const TOO_LATE_TO_CANCEL: u32 = 13_003;
    /// 该时段已过，不能预约.
    pub const SLOT_PAST: u32 = 13_004;
    /// 预约时段不存在: a well-formed `slot_id` of no slot.
    pub const UNKNOWN_SLOT: u32 = 13_005;
    /// 幂等键已用于另一请求: the same `Idempotency-Key` with another body.
    pub const KEY_REUSED: u32 = 13_006;
    /// 该大厅不办理此事项.
    pub const SERVICE_NOT_OFFERED: u32 = 13_007;

    /// Every code with its message, as registered at start.
    pub const ALL: &[(u32, &str)] = &[
        (SLOT_FULL, "该时段已约满，请选择其他时段"),
        (ALREADY_BOOKED, "您当天在该大厅已有预约"),
        (TOO_LATE_TO_CANCEL, "距预约时间不足 1 小时，不能取消"),
        (SLOT_PAST, "该时段已过，不能预约"),
        (UNKNOWN_SLOT, "预约时段不存在"),
        (KEY_REUSED, "幂等键已用于另一预约请求"),
        (SERVICE_NOT_OFFERED, "该大厅不办理此事项"),
    ];
}

/// The largest request body read: a booking is a few dozen bytes.
const MAX_BODY: usize = 64 * 1024;

/// Tells a client that the answer is the one made for an earlier request with its key.
const REPLAYED: &str = "idempotent-replayed";

/// What every handler shares.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) verifier: Arc<ContextVerifier>,
    pub(crate) db: Db,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) codes: Arc<BusinessCodes>,
}

impl FromRef<AppState> for Arc<ContextVerifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

#[derive(Deserialize)]
struct SlotQuery {
    // Optional so that its absence is named like any other bad field.
    date: Option<String>,
}

// Optional fields, so that a missing one is named like any other bad field (a missing field
// of a required one is reported at its parent's path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BookingBody {
    #[serde(default)]
    slot_id: Option<String>,
    #[serde(default)]
    service: Option<String>,
}

/// The whole interface.
pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/service-halls", get(list_halls))
        .route(
            "/api/v1/service-halls/{hall_id}/time-slots",
            get(list_time_slots),
        )
        .route("/api/v1/bookings", get(list_bookings).post(create_booking))
        .route("/api/v1/bookings/{booking_id}", delete(cancel_booking))
        .fallback(|| async { ApiError::new(Code::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { ApiError::new(Code::METHOD_NOT_SUPPORTED) })
        // Bodies beyond this answer 20000 before they are read whole.
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // A bug answers 10000 in the envelope rather than dropping the connection.
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("A handler panicked.");
            ApiError::new(Code::BUSY).into_response()
        }))
        .with_state(state)
}

// === handlers ===

/// `GET /api/v1/service-halls`: every hall, anonymous.
async fn list_halls(caller: Caller) -> Result<Done<Value>, ApiError> {
    caller.require(AuthLevel::Anonymous)?;
    Ok(Done(json!({
        "district": DISTRICT,
        "halls": HALLS.iter().map(hall_view).collect::<Vec<_>>(),
    })))
}

/// `GET /api/v1/service-halls/{hall_id}/time-slots?date=YYYY-MM-DD`: a day's slots with what
/// is left of each, anonymous.
async fn list_time_slots(
    State(s): State<AppState>,
    caller: Caller,
    hall_id: Result<Path<String>, ApiError>,
    query: Result<Query<SlotQuery>, ApiError>,
) -> Result<Done<Value>, ApiError> {
    caller.require(AuthLevel::Anonymous)?;
    let Path(hall_id) = hall_id?;
    let hall = halls::hall(&hall_id).ok_or_else(|| ApiError::new(Code::NOT_FOUND))?;
    let Query(query) = query?;
    let date = query
        .date
        .ok_or_else(|| bad_field("date", "missing", "缺少参数 date"))?;
    let day = LocalDate::parse(&date)
        .ok_or_else(|| bad_field("date", "value", "date 须为 YYYY-MM-DD 格式的日期"))?;
    let now = s.clock.now_ms();
    let today = LocalDate::at(now);
    if !day.in_window(today) {
        return Err(bad_field("date", "value", "只能查询今天起 14 天内的时段"));
    }
    let slots = s.db.slots(hall.id, day).await.map_err(storage)?;
    Ok(Done(json!({
        "hall_id": hall.id,
        "date": day.to_string(),
        "slots": slots.iter().map(|t| json!({
            "id": t.id,
            "starts_at": iso_local(t.starts_at),
            "ends_at": iso_local(t.ends_at),
            "capacity": t.capacity,
            "remaining": (t.capacity - t.booked).max(0),
            "bookable": t.booked < t.capacity && t.starts_at > now,
        })).collect::<Vec<_>>(),
    })))
}

/// `POST /api/v1/bookings` with an `Idempotency-Key`: books a slot for the caller
/// (face-verified), or answers again what this key was answered.
async fn create_booking(
    State(s): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Json<BookingBody>, ApiError>,
) -> Result<Response, ApiError> {
    caller.require(AuthLevel::FaceVerified)?;
    let subject = caller.subject()?;
    let key = idempotency_key(&headers)?;
    let Json(body) = body?;
    let missing = |field| bad_field(field, "missing", &format!("缺少字段 {field}"));
    let slot_id = body.slot_id.ok_or_else(|| missing("slot_id"))?;
    let service = body.service.ok_or_else(|| missing("service"))?;
    if !is_id(&slot_id) {
        return Err(bad_field(
            "slot_id",
            "value",
            "slot_id 须为 1 至 64 个小写字母、数字或连字符",
        ));
    }
    if halls::matter(&service).is_none() {
        return Err(bad_field("service", "value", "service 不是已知的办理事项"));
    }
    let digest = tongban_crypto::encoding::hex_encode(&tongban_crypto::sm3::sm3_parts(&[
        to_bytes(&slot_id),
        b"\n",
        to_bytes(&service),
    ]));
    let req = NewBooking {
        subject,
        key,
        slot_id: &slot_id,
        service: &service,
        digest: &digest,
    };
    let registry = s.codes.clone();
    let outcome =
        s.db.book(&req, s.clock.now_ms(), |decided| {
            render_booking(&registry, decided)
        })
        .await
        .map_err(storage)?;
    Ok(match outcome {
        Booked::Fresh { answer, booking } => {
            if let Some(id) = booking {
                tracing::info!(booking = %id, slot = %slot_id, request_id = ?caller.request_id, "Booked.");
            }
            stored_answer(answer, false)
        }
        Booked::Replayed(answer) => stored_answer(answer, true),
        Booked::KeyReused => s.codes.error(codes::KEY_REUSED).into_response(),
    })
}

/// `GET /api/v1/bookings`: the caller's bookings (real-name or above).
async fn list_bookings(State(s): State<AppState>, caller: Caller) -> Result<Done<Value>, ApiError> {
    caller.require(AuthLevel::RealName)?;
    let subject = caller.subject()?;
    let rows = s.db.bookings_of(subject).await.map_err(storage)?;
    Ok(Done(json!({
        "bookings": rows.iter().map(booking_view).collect::<Vec<_>>(),
    })))
}

/// `DELETE /api/v1/bookings/{booking_id}`: cancels the caller's booking (face-verified) up to
/// an hour before it starts. Another citizen's booking is 20404, as one that does not exist.
async fn cancel_booking(
    State(s): State<AppState>,
    caller: Caller,
    booking_id: Result<Path<String>, ApiError>,
) -> Result<Done<Value>, ApiError> {
    caller.require(AuthLevel::FaceVerified)?;
    let subject = caller.subject()?;
    let Path(id) = booking_id?;
    // An id of another shape cannot exist: no need to ask the database.
    if !is_booking_id(&id) {
        return Err(ApiError::new(Code::NOT_FOUND));
    }
    match s
        .db
        .cancel(subject, &id, s.clock.now_ms())
        .await
        .map_err(storage)?
    {
        Cancelled::Done(row) => {
            tracing::info!(booking = %row.id, request_id = ?caller.request_id, "Booking cancelled.");
            Ok(Done(booking_view(&row)))
        }
        Cancelled::NotFound => Err(ApiError::new(Code::NOT_FOUND)),
        Cancelled::TooLate => Err(s.codes.error(codes::TOO_LATE_TO_CANCEL)),
    }
}

// === helpers ===

/// The `Idempotency-Key`: required, one, 8–64 of `A-Z a-z 0-9 _ -`.
fn idempotency_key(headers: &HeaderMap) -> Result<&str, ApiError> {
    const FIELD: &str = "Idempotency-Key";
    let mut values = headers.get_all("idempotency-key").iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        let missing = headers.get("idempotency-key").is_none();
        return Err(if missing {
            bad_field(FIELD, "missing", "缺少请求头 Idempotency-Key")
        } else {
            bad_field(FIELD, "value", "请求头 Idempotency-Key 只能有一个")
        });
    };
    value
        .to_str()
        .ok()
        .filter(|k| {
            (8..=64).contains(&k.len())
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .ok_or_else(|| {
            bad_field(
                FIELD,
                "value",
                "请求头 Idempotency-Key 须为 8 至 64 个字母、数字、_ 或 -",
            )
        })
}

/// Hall and slot ids: 1–64 of `a-z 0-9 -`.
fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Booking ids: 32 lowercase hex digits (128 random bits, so they cannot be guessed).
fn is_booking_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 20000 naming the field, in the shape `tongban_core::extract` uses for body fields.
fn bad_field(field: &str, reason: &str, msg: &str) -> ApiError {
    ApiError::new(Code::BAD_PARAMETER)
        .with_msg(msg)
        .with_data(json!({"field": field, "reason": reason}))
}

/// A storage failure: logged here, answered as 10000 without its details.
fn storage(error: StoreError) -> ApiError {
    tracing::error!(%error, "Storage failed.");
    ApiError::new(Code::BUSY)
}

/// The envelope a booking request is answered with, and kept for its key.
fn render_booking(codes: &BusinessCodes, decided: Result<&BookingRow, Refusal>) -> String {
    let envelope = match decided {
        Ok(row) => Envelope::ok(booking_view(row)),
        Err(refusal) => {
            let e = codes.error(match refusal {
                Refusal::UnknownSlot => codes::UNKNOWN_SLOT,
                Refusal::NotHandled => codes::SERVICE_NOT_OFFERED,
                Refusal::Past => codes::SLOT_PAST,
                Refusal::AlreadyBooked => codes::ALREADY_BOOKED,
                Refusal::Full => codes::SLOT_FULL,
            });
            Envelope {
                code: e.code.0,
                msg: Some(e.message().to_owned()),
                data: e.data,
            }
        }
    };
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// A kept answer, sent byte for byte as it was first.
fn stored_answer(answer: String, replayed: bool) -> Response {
    let Ok(envelope) = serde_json::from_str::<Envelope<Value>>(&answer) else {
        tracing::error!("A kept booking answer is not an envelope.");
        return ApiError::new(Code::BUSY).into_response();
    };
    let code = Code(envelope.code);
    let status = code.http_status();
    let mut resp = (status, answer).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if replayed {
        h.insert(REPLAYED, HeaderValue::from_static("true"));
    }
    resp.extensions_mut().insert(EnvelopeMeta { code, status });
    resp
}

fn hall_view(h: &'static Hall) -> Value {
    let periods = |ps: &[Period]| -> Vec<Value> {
        ps.iter()
            .map(|p| json!({"from": Period::clock(p.from), "to": Period::clock(p.to)}))
            .collect()
    };
    let text = |ps: &[Period]| -> String {
        ps.iter()
            .map(|p| format!("{}–{}", Period::clock(p.from), Period::clock(p.to)))
            .collect::<Vec<_>>()
            .join("、")
    };
    let mut hours = vec![json!({"days": [1, 2, 3, 4, 5], "periods": periods(h.weekdays)})];
    let mut hours_text = format!("周一至周五 {}", text(h.weekdays));
    if !h.saturday.is_empty() {
        hours.push(json!({"days": [6], "periods": periods(h.saturday)}));
        hours_text.push_str(&format!("；周六 {}", text(h.saturday)));
    }
    json!({
        "id": h.id,
        "name": h.name,
        "district": DISTRICT,
        "address": h.address,
        "time_zone": "Asia/Shanghai",
        "opening_hours": hours,
        "opening_hours_text": hours_text,
        "slot_minutes": SLOT_MINUTES,
        "slot_capacity": h.capacity,
        "services": h.matters.iter().filter_map(|m| halls::matter(m)).collect::<Vec<_>>(),
    })
}

fn booking_view(b: &BookingRow) -> Value {
    let hall = halls::hall(&b.hall_id);
    json!({
        "id": b.id,
        "slot_id": b.slot_id,
        "hall_id": b.hall_id,
        "hall_name": hall.map(|h| h.name),
        "address": hall.map(|h| h.address),
        "service": b.service,
        "service_name": halls::matter(&b.service).map(|m| m.name),
        "date": b.day,
        "starts_at": iso_local(b.starts_at),
        "ends_at": iso_local(b.ends_at),
        "status": b.status,
        "created_at": iso_local(b.created_at),
        "cancelled_at": b.cancelled_at.map(iso_local),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_ids_have_one_shape() {
        let mut h = HeaderMap::new();
        assert_eq!(
            idempotency_key(&h).expect_err("missing").data,
            Some(json!({"field": "Idempotency-Key", "reason": "missing"}))
        );
        for bad in [
            "short",
            "has space in it",
            "ключ-ключ-ключ",
            &"a".repeat(65),
        ] {
            h.insert(
                "idempotency-key",
                HeaderValue::from_str(bad).unwrap_or(HeaderValue::from_static("x")),
            );
            assert!(idempotency_key(&h).is_err(), "{bad}");
        }
        h.insert("idempotency-key", HeaderValue::from_static("retry_0001-A"));
        assert_eq!(idempotency_key(&h).expect("valid"), "retry_0001-A");
        h.append("idempotency-key", HeaderValue::from_static("retry_0002-A"));
        assert!(idempotency_key(&h).is_err());
        assert!(is_id("dongsi-20250609-0900") && !is_id("Dongsi") && !is_id(""));
        assert!(is_booking_id(&"0a".repeat(16)) && !is_booking_id(&"0A".repeat(16)));
    }

    #[test]
    fn every_code_is_in_block_b() {
        let c = BusinessCodes::new("b", codes::ALL).expect("registers");
        assert_eq!(c.error(codes::SLOT_FULL).code, Code(13_001));
    }
}
