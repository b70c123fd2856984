//! Real-name verification: name and ID number checked locally (GB 11643 check digit, birth
//! date, region code), then by a provider (the platform's or a verification service). The
//! verification itself, which stores the person through the vault, is `flows::realname`.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tongban_core::AuthLevel;
use tongban_crypto::vault::normalize_for_index;

use crate::error::{IdentityError, ProviderFailure};
use crate::http_provider::JsonService;

/// Why an ID number fails the local check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    #[error("an ID number has 17 digits and a check character")]
    Shape,
    #[error("unknown region code")]
    Region,
    #[error("impossible birth date")]
    BirthDate,
    #[error("check character does not match")]
    Checksum,
}

/// What a valid ID number says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdNumberInfo {
    pub birth: (u32, u32, u32),
    /// Odd sequence digit: male.
    pub male: bool,
}

/// A provider's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RealNameVerdict {
    /// The name belongs to the ID number.
    Match,
    /// It does not (10014).
    Mismatch,
    /// The provider could not check (10016): no such record, record frozen, …
    Failed,
}

/// A real-name verification service.
#[async_trait]
pub trait RealNameProvider: Send + Sync {
    fn name(&self) -> &str;
    async fn verify(&self, name: &str, id_number: &str) -> Result<RealNameVerdict, IdentityError>;
}

/// A local stand-in for development and tests: a register of (ID number, name) pairs;
/// unknown ID numbers pass when `accept_unknown` is set.
#[derive(Debug, Default)]
pub struct RealNameSimulator {
    register: RwLock<HashMap<String, String>>,
    accept_unknown: AtomicBool,
}

/// A real-name verification service over HTTP: `POST url` with `{"name", "id_number"}` and a
/// bearer key; answers `{"code": 0, "data": {"result": "match" | "mismatch" | "unknown"}}`,
/// any other code being a provider error.
#[derive(Debug)]
pub struct HttpRealNameProvider {
    service: JsonService,
}

#[derive(Deserialize)]
struct HttpVerdict {
    result: String,
}

/// The result of a real-name verification.
#[derive(Clone, Debug, Serialize)]
pub struct RealNameResult {
    pub level: AuthLevel,
    /// Masked, for display.
    pub name: String,
    pub id_number: String,
}

/// Province-level codes of GB/T 2260 (the first two digits of a region code).
const PROVINCES: &[u32] = &[
    11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52,
    53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
];

/// Checks an 18-character ID number (GB 11643-1999): shape, region, birth date on or before
/// `today` (year, month, day) and after 1900, and the ISO 7064 MOD 11-2 check character.
pub fn check_id_number(id: &str, today: (u32, u32, u32)) -> Result<IdNumberInfo, IdNumberError> {
    let b = id.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X' || b[17] == b'x')
    {
        return Err(IdNumberError::Shape);
    }
    let num = |r: std::ops::Range<usize>| {
        b[r].iter()
            .fold(0u32, |acc, c| acc * 10 + u32::from(c - b'0'))
    };
    let province = num(0..2);
    if !PROVINCES.contains(&province) || num(2..6) == 0 {
        return Err(IdNumberError::Region);
    }
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    if y < 1900 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || (y, m, d) > today
    {
        return Err(IdNumberError::BirthDate);
    }
    if !tongban_core::idcard::is_valid(b) {
        return Err(IdNumberError::Checksum);
    }
    Ok(IdNumberInfo {
        birth: (y, m, d),
        male: num(16..17) % 2 == 1,
    })
}

fn days_in_month(y: u32, m: u32) -> u32 {
    match m {
        2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A plausible legal name: 2 to 30 characters, Han characters, letters or the separator `·`.
pub fn check_name(name: &str) -> bool {
    let n = name.chars().count();
    (2..=30).contains(&n)
        && name.chars().all(|c| {
            ('\u{4e00}'..='\u{9fff}').contains(&c)
                || ('\u{3400}'..='\u{4dbf}').contains(&c)
                || c.is_alphabetic()
                || c == '·'
                || c == '•'
        })
}

/// The civil date of a Unix time in milliseconds (UTC+8, China Standard Time).
pub(crate) fn civil_date(ms: i64) -> (u32, u32, u32) {
    let days = (ms + 8 * 3_600_000).div_euclid(86_400_000);
    let (y, m, d) = tongban_core::date::civil_from_days(days);
    (u32::try_from(y).unwrap_or(0), m, d)
}

// === impl HttpRealNameProvider ===

impl HttpRealNameProvider {
    pub fn new(url: &str, api_key: &str, timeout: Duration) -> Result<Self, IdentityError> {
        Ok(Self {
            service: JsonService::new("real_name", url, api_key, timeout)?,
        })
    }
}

#[async_trait]
impl RealNameProvider for HttpRealNameProvider {
    fn name(&self) -> &str {
        "http"
    }

    async fn verify(&self, name: &str, id_number: &str) -> Result<RealNameVerdict, IdentityError> {
        let v: HttpVerdict = self
            .service
            .call(&serde_json::json!({ "name": name, "id_number": id_number }))
            .await?;
        match v.result.as_str() {
            "match" => Ok(RealNameVerdict::Match),
            "mismatch" => Ok(RealNameVerdict::Mismatch),
            "unknown" => Ok(RealNameVerdict::Failed),
            _ => Err(IdentityError::provider(
                "real_name",
                ProviderFailure::BadData("result".to_owned()),
            )),
        }
    }
}

// === impl RealNameSimulator ===

impl RealNameSimulator {
    pub fn new(accept_unknown: bool) -> Self {
        Self {
            register: RwLock::default(),
            accept_unknown: AtomicBool::new(accept_unknown),
        }
    }

    /// Whether ID numbers not in the register pass (otherwise the check fails, 10016).
    pub fn set_accept_unknown(&self, accept: bool) {
        self.accept_unknown.store(accept, Ordering::SeqCst);
    }

    /// Adds a record the simulator will confirm.
    pub fn register(&self, name: &str, id_number: &str) {
        let mut r = self.register.write().unwrap_or_else(|p| p.into_inner());
        r.insert(normalize_for_index(id_number), name.to_owned());
    }
}

#[async_trait]
impl RealNameProvider for RealNameSimulator {
    fn name(&self) -> &str {
        "simulator"
    }

    async fn verify(&self, name: &str, id_number: &str) -> Result<RealNameVerdict, IdentityError> {
        let r = self.register.read().unwrap_or_else(|p| p.into_inner());
        Ok(match r.get(&normalize_for_index(id_number)) {
            Some(n) if n == name => RealNameVerdict::Match,
            Some(_) => RealNameVerdict::Mismatch,
            None if self.accept_unknown.load(Ordering::SeqCst) => RealNameVerdict::Match,
            None => RealNameVerdict::Failed,
        })
    }
}

#[cfg(test)]
mod tests;
