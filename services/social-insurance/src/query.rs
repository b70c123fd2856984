//! What a citizen may ask, checked before anything else happens: months, the period between
//! them, an insurance type, an ID number with its GB 11643 check character and a name. A
//! refusal names the field and the reason (`data: {field, reason}`), never the value sent, and
//! nothing refused here reaches the province or the query log. Free of I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use tongban_core::{ApiError, Code};
use tongban_sdk::codes::BusinessCodes;
use zeroize::Zeroizing;

use crate::codes;

/// Most months one query may cover: five years.
pub const MAX_MONTHS: u32 = 60;

/// Longest name accepted, in characters (long minority names with `·` fit).
pub const MAX_NAME_CHARS: usize = 32;

/// A calendar month, `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    /// Months since year 0: ordering and spans are on this.
    index: u32,
}

/// Both ends of a query, `from` not after `to`, at most [`MAX_MONTHS`] apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: Month,
    pub to: Month,
}

/// The four insurances the province records; asked for as `pension` or as `养老保险`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsuranceType {
    Pension,
    Medical,
    Unemployment,
    Injury,
}

/// `GET /api/v1/contribution-records`: the caller's own records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnQuery {
    pub period: Period,
    pub insurance_type: Option<InsuranceType>,
}

/// `POST /api/v1/contribution-record-queries`: a named person's records. `Debug` shows
/// neither the name nor the ID number.
#[derive(Clone)]
pub struct PersonQuery {
    /// Normalized: uppercase `X`, no surrounding whitespace.
    pub id_number: Zeroizing<String>,
    pub name: Zeroizing<String>,
    pub period: Period,
    pub insurance_type: Option<InsuranceType>,
}

/// The body of `POST /api/v1/contribution-record-queries`, as sent. Every field is optional
/// here so that a missing one is refused naming it (serde's own error names only its parent).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonQueryBody {
    #[serde(default)]
    id_number: Option<Zeroizing<String>>,
    #[serde(default)]
    name: Option<Zeroizing<String>>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    insurance_type: Option<String>,
}

/// Why a query is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invalid {
    /// A field is missing or malformed: 20000 with `data: {field, reason}`.
    Field {
        field: &'static str,
        reason: &'static str,
        msg: &'static str,
    },
    /// The period is not allowed: one of the service's own codes.
    Period(u32),
}

impl fmt::Debug for PersonQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonQuery")
            .field("period", &self.period)
            .field("insurance_type", &self.insurance_type)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for PersonQueryBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PersonQueryBody([REDACTED])")
    }
}

// === impl Month ===

impl Month {
    /// `YYYY-MM` exactly: ASCII digits (not full-width), a year from 1900 to 2999, a month
    /// from 01 to 12.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 7 || b[4] != b'-' {
            return None;
        }
        let digits = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter().try_fold(0u32, |n, c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let (year, month) = (digits(0..4)?, digits(5..7)?);
        ((1900..=2999).contains(&year) && (1..=12).contains(&month)).then_some(Self {
            index: year * 12 + month - 1,
        })
    }

    /// Months from `self` to `later`, both counted (0 if `later` is earlier).
    pub fn span(self, later: Self) -> u32 {
        (later.index + 1).saturating_sub(self.index)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.index / 12, self.index % 12 + 1)
    }
}

// === impl Period ===

impl Period {
    /// The period from `from` to `to` as sent: each a month, in order, at most five years.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Self, Invalid> {
        let month = |field: &'static str, v: Option<&str>| match v {
            None => Err(Invalid::missing(field)),
            Some(v) => Month::parse(v).ok_or(Invalid::Field {
                field,
                reason: "format",
                msg: "月份须为 YYYY-MM 格式（如 2024-01）",
            }),
        };
        let (from, to) = (month("from", from)?, month("to", to)?);
        if from > to {
            return Err(Invalid::Period(codes::PERIOD_REVERSED));
        }
        if from.span(to) > MAX_MONTHS {
            return Err(Invalid::Period(codes::PERIOD_TOO_LONG));
        }
        Ok(Self { from, to })
    }

    pub fn contains(&self, m: Month) -> bool {
        self.from <= m && m <= self.to
    }
}

// === impl InsuranceType ===

impl InsuranceType {
    pub const ALL: [Self; 4] = [
        Self::Pension,
        Self::Medical,
        Self::Unemployment,
        Self::Injury,
    ];

    /// The province's name for it, as records carry it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pension => "养老保险",
            Self::Medical => "医疗保险",
            Self::Unemployment => "失业保险",
            Self::Injury => "工伤保险",
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Pension => "pension",
            Self::Medical => "medical",
            Self::Unemployment => "unemployment",
            Self::Injury => "injury",
        }
    }

    /// `pension` or `养老保险`, and so on.
    pub fn parse(v: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|t| t.code() == v || t.label() == v)
            .ok_or(Invalid::Field {
                field: "insurance_type",
                reason: "value",
                msg: "insurance_type 须为 pension、medical、unemployment 或 injury",
            })
    }
}

// === impl OwnQuery ===

impl OwnQuery {
    /// From the query string's parameters; another parameter is refused rather than ignored,
    /// so a misspelt `insurance-type` does not silently answer every type.
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Self, Invalid> {
        if params
            .keys()
            .any(|k| !matches!(k.as_str(), "from" | "to" | "insurance_type"))
        {
            return Err(Invalid::Field {
                field: "?",
                reason: "unknown",
                msg: "只接受查询参数 from、to、insurance_type",
            });
        }
        let period = Period::parse(
            params.get("from").map(String::as_str),
            params.get("to").map(String::as_str),
        )?;
        let insurance_type = params
            .get("insurance_type")
            .map(|v| InsuranceType::parse(v))
            .transpose()?;
        Ok(Self {
            period,
            insurance_type,
        })
    }
}

// === impl PersonQuery ===

impl PersonQuery {
    /// Checks every field of a body that parsed.
    pub fn from_body(body: PersonQueryBody) -> Result<Self, Invalid> {
        let id_number = id_number(
            body.id_number
                .as_deref()
                .ok_or(Invalid::missing("id_number"))?,
        )?;
        let name = name(body.name.as_deref().ok_or(Invalid::missing("name"))?)?;
        let period = Period::parse(body.from.as_deref(), body.to.as_deref())?;
        let insurance_type = body
            .insurance_type
            .as_deref()
            .map(InsuranceType::parse)
            .transpose()?;
        Ok(Self {
            id_number,
            name,
            period,
            insurance_type,
        })
    }
}

/// An 18-character resident ID number with a valid check character, normalized (trimmed,
/// `x` as `X`) so that it compares and indexes alike however it was typed.
pub fn id_number(v: &str) -> Result<Zeroizing<String>, Invalid> {
    let v = Zeroizing::new(tongban_crypto::vault::normalize_for_index(v));
    let b = v.as_bytes();
    let shaped = b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && (b[17].is_ascii_digit() || b[17] == b'X');
    if !shaped {
        return Err(Invalid::Field {
            field: "id_number",
            reason: "format",
            msg: "身份证号码须为 18 位，由数字和末位 X 组成",
        });
    }
    if !tongban_core::idcard::is_valid(b) {
        return Err(Invalid::Field {
            field: "id_number",
            reason: "check",
            msg: "身份证号码校验位不正确",
        });
    }
    Ok(v)
}

/// A person's name: letters (Han characters first of all) and the middle dot of minority
/// names, 1 to [`MAX_NAME_CHARS`] characters; no digits, punctuation, markup, control
/// characters or emoji.
pub fn name(v: &str) -> Result<Zeroizing<String>, Invalid> {
    let v = v.trim();
    let n = v.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(Invalid::Field {
            field: "name",
            reason: "length",
            msg: "姓名须为 1 至 32 个字",
        });
    }
    if !v
        .chars()
        .all(|c| c.is_alphabetic() || matches!(c, '·' | '•'))
    {
        return Err(Invalid::Field {
            field: "name",
            reason: "characters",
            msg: "姓名只能包含文字和间隔号",
        });
    }
    Ok(Zeroizing::new(v.to_owned()))
}

// === impl Invalid ===

impl Invalid {
    fn missing(field: &'static str) -> Self {
        Self::Field {
            field,
            reason: "missing",
            msg: "缺少必填参数",
        }
    }

    /// The answer: 20000 naming the field, or the service's own code.
    pub fn into_error(self, codes: &BusinessCodes) -> ApiError {
        match self {
            Self::Field { field, reason, msg } => {
                // A parameter the service does not know is not named: its name was the
                // client's, and may hold anything.
                let text = if field == "?" {
                    msg.to_owned()
                } else {
                    format!("参数 {field}：{msg}")
                };
                ApiError::new(Code::BAD_PARAMETER)
                    .with_msg(text)
                    .with_data(serde_json::json!({ "field": field, "reason": reason }))
            }
            Self::Period(code) => codes.error(code),
        }
    }
}

#[cfg(test)]
mod tests;
