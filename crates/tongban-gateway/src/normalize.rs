//! Envelope normalization, free of I/O: an upstream's answer either already is the envelope
//! (passed on with its code) or is replaced by a 30000-series envelope saying what went wrong.

use http::StatusCode;
use tongban_core::Code;

/// How an attempt at an upstream ended, as far as the client's answer is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No connection (refused, reset, unreachable): 30000.
    Connect,
    /// The connection was not made in time: 30002.
    ConnectTimeout,
    /// The attempt's answer did not arrive in time: 30003.
    ReadTimeout,
    /// The request's whole time ran out: 30001.
    TotalTimeout,
    /// The connection broke mid-answer: 30000.
    Broken,
}

/// The verdict on an answer that arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A well-formed envelope: pass it on; its code is recorded.
    Envelope(Code),
    /// Not an envelope: answer this code instead.
    Replace(Code),
}

// === impl Failure ===

impl Failure {
    pub fn code(self) -> Code {
        match self {
            Self::Connect | Self::Broken => Code::THIRD_PARTY_FAILED,
            Self::ConnectTimeout => Code::THIRD_PARTY_CONNECT_TIMEOUT,
            Self::ReadTimeout => Code::THIRD_PARTY_READ_TIMEOUT,
            Self::TotalTimeout => Code::THIRD_PARTY_TIMEOUT,
        }
    }
}

/// Judges an upstream answer by its status and (decoded) body.
pub fn judge(status: StatusCode, body: &[u8]) -> Verdict {
    if let Some(code) = envelope_code(body) {
        return Verdict::Envelope(code);
    }
    if status.is_success() {
        // 2xx but not the envelope: the upstream's data cannot be trusted as an answer.
        Verdict::Replace(Code::THIRD_PARTY_BAD_DATA)
    } else {
        Verdict::Replace(Code::THIRD_PARTY_NON_200)
    }
}

/// The code of a body that is exactly an envelope: a JSON object with an integer `code`, an
/// optional string `msg`, an optional `data`, and nothing else.
pub fn envelope_code(body: &[u8]) -> Option<Code> {
    // Checked while parsed, without building the document: this runs on every answer.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Shape<'a> {
        code: u32,
        #[serde(borrow)]
        #[allow(dead_code)]
        msg: Option<std::borrow::Cow<'a, str>>,
        #[allow(dead_code)]
        data: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Shape<'_>>(body)
        .ok()
        .map(|s| Code(s.code))
}

/// Whether an answer counts as a failure of the upstream (for breakers, outliers and retries).
pub fn is_upstream_failure(status: StatusCode, code: Code) -> bool {
    status.is_server_error() || (30_000..40_000).contains(&code.0) || code == Code::BUSY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_pass_with_their_code() {
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"data":{"a":1}}"#),
            Verdict::Envelope(Code(0))
        );
        assert_eq!(
            judge(
                StatusCode::BAD_REQUEST,
                r#"{"code":20003,"msg":"缺少参数"}"#.as_bytes()
            ),
            Verdict::Envelope(Code(20003))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"msg":null}"#),
            Verdict::Envelope(Code(0))
        );
    }

    #[test]
    fn everything_else_is_replaced() {
        assert_eq!(
            judge(StatusCode::OK, b"<html>hi</html>"),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"ok":true}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":"0"}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"{"code":0,"extra":1}"#),
            Verdict::Replace(Code(30011))
        );
        assert_eq!(
            judge(StatusCode::OK, br#"[1]"#),
            Verdict::Replace(Code(30011))
        );
        for body in [
            &br#"{"code":0,"msg":5}"#[..],
            br#"{"code":-1}"#,
            br#"{"code":1.5}"#,
            br#"{"code":4294967296}"#,
            br#"{"msg":"no code"}"#,
            br#"{"code":0,"code":1}"#,
            br#"{"code":0} trailing"#,
        ] {
            assert_eq!(
                judge(StatusCode::OK, body),
                Verdict::Replace(Code(30011)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        assert_eq!(
            judge(
                StatusCode::OK,
                br#"{"code":10000,"msg":"\u5931\u8d25","data":[{"a":null}]}"#
            ),
            Verdict::Envelope(Code(10000)),
            "escaped text and any data"
        );
        assert_eq!(
            judge(StatusCode::BAD_GATEWAY, b"Bad Gateway"),
            Verdict::Replace(Code(30013))
        );
        assert_eq!(
            judge(StatusCode::NOT_FOUND, b""),
            Verdict::Replace(Code(30013))
        );
    }

    #[test]
    fn failures_map_to_appendix_a() {
        assert_eq!(Failure::Connect.code(), Code(30000));
        assert_eq!(Failure::TotalTimeout.code(), Code(30001));
        assert_eq!(Failure::ConnectTimeout.code(), Code(30002));
        assert_eq!(Failure::ReadTimeout.code(), Code(30003));
        assert!(is_upstream_failure(StatusCode::OK, Code(30001)));
        assert!(is_upstream_failure(StatusCode::BAD_GATEWAY, Code(0)));
        assert!(!is_upstream_failure(StatusCode::BAD_REQUEST, Code(20000)));
    }
}
