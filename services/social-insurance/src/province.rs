//! The provincial system's contribution-record query, made only through the SDK's
//! third-party client, whose every failure is one 300xx code that reaches the citizen
//! unchanged. The answer is read strictly and checked to be about the person asked for.

use http::{HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};
use tongban_core::mask::{Kind, mask_as};
use tongban_core::{ApiError, Code};
use tongban_crypto::vault::normalize_for_index;
use tongban_sdk::third_party::ThirdPartyClient;
use zeroize::Zeroizing;

use crate::query::Period;
use crate::records::{ProvincePerson, Record};

/// The province's query interface (`docs/third-party.md`).
const PATH: &str = "/api/v1/contribution-record-queries";

#[derive(Serialize)]
struct Query<'a> {
    id_number: &'a str,
    name: &'a str,
    from: String,
    to: String,
}

/// The province's answer: the person and the records of the months asked.
#[derive(Deserialize)]
pub(crate) struct Contributions {
    pub(crate) person: ProvincePerson,
    pub(crate) records: Vec<Record>,
}

/// Asks the province for the records of `id_number` (whose name must be `name`, which the
/// province checks) over `period`. The request id travels along, so the province's log can
/// be matched with ours.
pub(crate) async fn contributions(
    client: &ThirdPartyClient,
    id_number: &str,
    name: &str,
    period: Period,
    request_id: Option<&str>,
) -> Result<Contributions, ApiError> {
    let query = Query {
        id_number,
        name,
        from: period.from.to_string(),
        to: period.to.to_string(),
    };
    let mut call = client
        .request(Method::POST, PATH)
        .json(&query)
        // Only reads: retried like a GET.
        .idempotent(true);
    if let Some(v) = request_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        call = call.header(HeaderName::from_static("x-request-id"), v);
    }
    let answer: Contributions = call.send().await.map_err(|error| {
        tracing::warn!(%error, code = error.code().0, request_id, "Province query failed.");
        ApiError::from(error)
    })?;
    // A province that answers about someone else must not have that answer shown.
    let asked = Zeroizing::new(normalize_for_index(id_number));
    if *Zeroizing::new(normalize_for_index(&answer.person.id_number)) != *asked {
        tracing::warn!(
            id_number = %mask_as(Kind::IdNumber, &asked),
            request_id,
            "The province answered about another person than asked."
        );
        return Err(ApiError::new(Code::THIRD_PARTY_BAD_DATA));
    }
    Ok(answer)
}
