//! The service's HTTP interface: two routes behind the gateway, each refusing a request that
//! did not come through it (the SDK's `Caller`), below real-name level, or from a caller
//! without a real-name person, before looking at the input; then the input checked
//! ([`crate::query`]), the province asked, the query logged, the answer given.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::Uri;
use tongban_core::extract::Json;
use tongban_core::{ApiError, AuthLevel, Code};
use tongban_sdk::Done;
use tongban_sdk::codes::BusinessCodes;
use tongban_sdk::context::{Caller, ContextVerifier, Person};
use tongban_sdk::third_party::ThirdPartyClient;
use tower_http::catch_panic::CatchPanicLayer;
use zeroize::Zeroizing;

use crate::codes;
use crate::province;
use crate::query::{InsuranceType, OwnQuery, Period, PersonQuery, PersonQueryBody};
use crate::query_log::{NewEntry, QueryLog};
use crate::records::{PersonView, RecordsView, Totals};

/// What every request shares.
#[derive(Clone, Debug)]
pub(crate) struct AppState(Arc<Shared>);

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) verifier: Arc<ContextVerifier>,
    pub(crate) province: ThirdPartyClient,
    pub(crate) log: Arc<QueryLog>,
    pub(crate) codes: BusinessCodes,
}

/// Whose records, and whether they may be shown whole.
struct Target<'a> {
    id_number: &'a str,
    name: &'a str,
    /// The caller's own records: name and ID number shown whole.
    own: bool,
}

/// The whole interface.
pub(crate) fn router(shared: Shared, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/v1/contribution-records", get(own_records))
        .route("/api/v1/contribution-record-queries", post(person_records))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        // A query is a few hundred bytes; a larger body answers 20000 before it is read whole.
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // A bug answers 10000 rather than dropping the connection.
        .layer(CatchPanicLayer::custom(panicked))
        .with_state(AppState(Arc::new(shared)))
}

impl FromRef<AppState> for Arc<ContextVerifier> {
    fn from_ref(s: &AppState) -> Self {
        s.0.verifier.clone()
    }
}

/// `GET /api/v1/contribution-records`: the caller's own records.
async fn own_records(
    State(s): State<AppState>,
    caller: Caller,
    uri: Uri,
) -> Result<Response, ApiError> {
    let person = person_of(&caller)?;
    let Query(params) = Query::<BTreeMap<String, String>>::try_from_uri(&uri)?;
    let q = OwnQuery::from_params(&params).map_err(|e| e.into_error(&s.0.codes))?;
    let target = Target {
        id_number: &person.id_number,
        name: &person.name,
        own: true,
    };
    s.0.answer(&caller, target, q.period, q.insurance_type)
        .await
}

/// `POST /api/v1/contribution-record-queries`: a named person's records, masked unless the
/// person is the caller.
async fn person_records(
    State(s): State<AppState>,
    caller: Caller,
    body: Result<Json<PersonQueryBody>, ApiError>,
) -> Result<Response, ApiError> {
    let person = person_of(&caller)?;
    let Json(body) = body?;
    let q = PersonQuery::from_body(body).map_err(|e| e.into_error(&s.0.codes))?;
    let own_number = Zeroizing::new(tongban_crypto::vault::normalize_for_index(
        &person.id_number,
    ));
    let own = tongban_crypto::sm3::ct_eq(own_number.as_bytes(), q.id_number.as_bytes());
    let target = Target {
        id_number: &q.id_number,
        name: &q.name,
        own,
    };
    s.0.answer(&caller, target, q.period, q.insurance_type)
        .await
}

/// The caller's real-name person: 10006 without a session, 10008 below real-name level or
/// without a person (not real-name bound, or a route that does not hand it over).
fn person_of(caller: &Caller) -> Result<&Person, ApiError> {
    caller.require(AuthLevel::RealName)?;
    caller.person.as_ref().ok_or_else(|| {
        ApiError::new(Code::NOT_AUTHORIZED).with_msg("请先完成实名核验，再查询社保缴费记录")
    })
}

// === impl Shared ===

impl Shared {
    /// Asks the province, logs the query, answers: the records (code 0), none in the period
    /// (10022, with the person), or the province's failure as its 300xx code. Nothing is
    /// answered that was not logged: if the log cannot be written, the citizen gets 10000.
    async fn answer(
        &self,
        caller: &Caller,
        target: Target<'_>,
        period: Period,
        kind: Option<InsuranceType>,
    ) -> Result<Response, ApiError> {
        let request_id = caller.request_id.as_deref();
        let outcome = province::contributions(
            &self.province,
            target.id_number,
            target.name,
            period,
            request_id,
        )
        .await
        .and_then(|c| {
            let mut records = Vec::with_capacity(c.records.len());
            for r in c.records {
                match r.fits(&period, kind) {
                    Some(true) => records.push(r),
                    Some(false) => {}
                    None => return Err(ApiError::new(Code::THIRD_PARTY_BAD_DATA)),
                }
            }
            let totals = Totals::of(&records);
            Ok(RecordsView {
                person: PersonView::new(&c.person, target.own),
                period: period.into(),
                records,
                totals,
            })
        });
        let (code, count) = match &outcome {
            Ok(v) if v.records.is_empty() => (codes::NO_RECORDS.0, 0),
            Ok(v) => (Code::OK.0, v.records.len()),
            Err(e) => (e.code.0, 0),
        };
        let entry = NewEntry {
            subject: caller.subject.as_deref(),
            request_id,
            own: target.own,
            id_number: target.id_number,
            period,
            code,
            records: count,
        };
        if let Err(error) = self.log.record(&entry).await {
            tracing::error!(%error, request_id, "The query could not be logged; nothing was answered.");
            return Err(ApiError::new(Code::BUSY));
        }
        tracing::info!(
            request_id,
            own = target.own,
            code,
            records = count,
            "Contribution records queried."
        );
        let view = outcome?;
        if view.records.is_empty() {
            let data = serde_json::to_value(&view).unwrap_or_default();
            return Err(ApiError::new(codes::NO_RECORDS)
                .with_msg("所选期间没有缴费记录")
                .with_data(data));
        }
        Ok(Done(view).into_response())
    }
}

async fn not_found() -> ApiError {
    ApiError::new(Code::NOT_FOUND)
}

async fn wrong_method() -> ApiError {
    ApiError::new(Code::METHOD_NOT_SUPPORTED)
}

fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    // The panic payload may hold input data: it is not logged or returned.
    tracing::error!("A handler panicked; answered 10000.");
    ApiError::new(Code::BUSY).into_response()
}
