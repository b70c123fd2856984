//! How a third-party call failed: one [`Reason`] per failure, each mapped to exactly one code
//! of the 30000 series. The text says what happened without what was sent or answered: no
//! keys, no bodies, and a third party's own message only masked.

use std::fmt;
use std::sync::Arc;

use tongban_core::mask::mask_untrusted;
use tongban_core::{ApiError, Code};

/// Longest third-party message kept, in characters: enough to recognise it in the log.
const MSG_MAX_CHARS: usize = 120;

/// A failed call to the third party `part`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{part}: {reason} ({})", self.code())]
pub struct ThirdPartyError {
    part: Arc<str>,
    reason: Reason,
}

/// What went wrong, as far as the client could tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The breaker is open: the call was refused without touching the network (30000).
    BreakerOpen,
    /// No connection: refused, reset, unreachable, or the TLS handshake failed (30000).
    Connect,
    /// The connection broke after the request went out, before a whole answer (30000).
    Broken,
    /// The request could not be made (a path or body that cannot be sent) (30000).
    Invalid(&'static str),
    /// The call's total time ran out (30001).
    TotalTimeout,
    /// The connection was not open in time (30002).
    ConnectTimeout,
    /// The system stayed silent too long, before its answer or within it (30003).
    ReadTimeout,
    /// A 2xx answer that is not the envelope, not JSON, too large, or whose `data` is not of
    /// the expected type (30011). Names what was wrong, never the content.
    BadData(&'static str),
    /// The envelope carried a non-zero code (30012): the system's own code and message, for the
    /// log; the message is never shown to citizens.
    ErrorCode { code: i64, msg: Option<String> },
    /// An HTTP status other than 2xx (30013).
    Status(u16),
}

// === impl ThirdPartyError ===

impl ThirdPartyError {
    pub(crate) fn new(part: Arc<str>, reason: Reason) -> Self {
        Self { part, reason }
    }

    /// The code of Appendix A this failure answers with.
    pub fn code(&self) -> Code {
        self.reason.code()
    }

    /// The third party's name, from its configuration.
    pub fn part(&self) -> &str {
        &self.part
    }

    pub fn reason(&self) -> &Reason {
        &self.reason
    }

    /// The code the third party answered in its envelope, for a 30012.
    pub fn third_party_code(&self) -> Option<i64> {
        match self.reason {
            Reason::ErrorCode { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// What a citizen sees: the code and its standard message, never the third party's words.
impl From<ThirdPartyError> for ApiError {
    fn from(e: ThirdPartyError) -> Self {
        ApiError::new(e.code())
    }
}

// === impl Reason ===

impl Reason {
    pub fn code(&self) -> Code {
        match self {
            Self::BreakerOpen | Self::Connect | Self::Broken | Self::Invalid(_) => {
                Code::THIRD_PARTY_FAILED
            }
            Self::TotalTimeout => Code::THIRD_PARTY_TIMEOUT,
            Self::ConnectTimeout => Code::THIRD_PARTY_CONNECT_TIMEOUT,
            Self::ReadTimeout => Code::THIRD_PARTY_READ_TIMEOUT,
            Self::BadData(_) => Code::THIRD_PARTY_BAD_DATA,
            Self::ErrorCode { .. } => Code::THIRD_PARTY_ERROR_CODE,
            Self::Status(_) => Code::THIRD_PARTY_NON_200,
        }
    }

    /// A non-zero envelope code with the system's message, cut to a length fit for a log line.
    pub(crate) fn error_code(code: i64, msg: Option<&str>) -> Self {
        Self::ErrorCode {
            code,
            msg: msg.map(|m| m.chars().take(MSG_MAX_CHARS).collect()),
        }
    }

    /// Whether the system itself is unwell, which the breaker counts: a deliberate answer (a
    /// non-zero envelope code, a 4xx) or a request we could not make says nothing of its health.
    pub(crate) fn is_unhealthy(&self) -> bool {
        match self {
            Self::Connect
            | Self::Broken
            | Self::TotalTimeout
            | Self::ConnectTimeout
            | Self::ReadTimeout
            | Self::BadData(_) => true,
            Self::Status(s) => *s >= 500,
            Self::BreakerOpen | Self::Invalid(_) | Self::ErrorCode { .. } => false,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BreakerOpen => f.write_str("breaker open"),
            Self::Connect => f.write_str("connection failed"),
            Self::Broken => f.write_str("connection broke before the answer was complete"),
            Self::Invalid(what) => write!(f, "request not sent: {what}"),
            Self::TotalTimeout => f.write_str("total timeout"),
            Self::ConnectTimeout => f.write_str("connect timeout"),
            Self::ReadTimeout => f.write_str("read timeout"),
            Self::BadData(what) => write!(f, "unreadable answer: {what}"),
            Self::ErrorCode { code, msg: None } => write!(f, "answered code {code}"),
            Self::ErrorCode {
                code,
                msg: Some(msg),
            } => write!(f, "answered code {code}: {}", mask_untrusted(msg)),
            Self::Status(s) => write!(f, "HTTP status {s}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(reason: Reason) -> ThirdPartyError {
        ThirdPartyError::new(Arc::from("province"), reason)
    }

    #[test]
    fn each_reason_has_its_code() {
        let cases = [
            (Reason::BreakerOpen, 30000),
            (Reason::Connect, 30000),
            (Reason::Broken, 30000),
            (Reason::Invalid("path"), 30000),
            (Reason::TotalTimeout, 30001),
            (Reason::ConnectTimeout, 30002),
            (Reason::ReadTimeout, 30003),
            (Reason::BadData("not JSON"), 30011),
            (Reason::error_code(40401, Some("查无此人")), 30012),
            (Reason::Status(500), 30013),
            (Reason::Status(404), 30013),
        ];
        for (reason, code) in cases {
            assert_eq!(err(reason.clone()).code(), Code(code), "{reason:?}");
        }
    }

    #[test]
    fn the_text_masks_the_third_partys_message_and_citizens_never_see_it() {
        let e = err(Reason::error_code(
            40402,
            Some("张三丰 11010519491231002X 不一致"),
        ));
        let text = e.to_string();
        assert!(
            text.starts_with("province: answered code 40402: "),
            "{text}"
        );
        assert!(!text.contains("11010519491231002X"), "{text}");
        assert!(!text.contains("张三丰"), "{text}");
        assert!(text.ends_with("(30012)"), "{text}");
        assert_eq!(e.third_party_code(), Some(40402));
        let api = ApiError::from(e);
        assert_eq!(api.code, Code(30012));
        assert_eq!(api.message(), Code(30012).default_msg());
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "错".repeat(1000);
        let Reason::ErrorCode { msg: Some(m), .. } = Reason::error_code(1, Some(&long)) else {
            panic!("an error code");
        };
        assert_eq!(m.chars().count(), MSG_MAX_CHARS);
    }

    #[test]
    fn deliberate_answers_do_not_count_against_the_systems_health() {
        assert!(Reason::Status(503).is_unhealthy());
        assert!(Reason::ReadTimeout.is_unhealthy());
        assert!(!Reason::Status(401).is_unhealthy());
        assert!(!Reason::error_code(40401, None).is_unhealthy());
    }
}
