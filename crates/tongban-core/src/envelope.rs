//! The response envelope `{code, msg, data}` of clause 6.2.2.2, and the error type every handler
//! returns so that no response body ever leaves in another shape.

use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::code::Code;

/// The body of every response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    pub code: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<T>,
}

/// A successful answer: code 0 with `data`.
#[derive(Debug)]
pub struct Ok<T>(pub T);

/// A failed answer: a registered code, an optional message that replaces the default one, and
/// optional data (for example what a client must do to step up).
#[derive(Clone, Debug, thiserror::Error)]
#[error("code {code}: {}", self.message())]
pub struct ApiError {
    pub code: Code,
    pub msg: Option<String>,
    pub data: Option<serde_json::Value>,
}

/// Marks an envelope response with its code and status: for the access log, metrics and the
/// "always 200" switch, none of which should have to parse the body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnvelopeMeta {
    pub code: Code,
    pub status: StatusCode,
}

// === impl Envelope ===

impl<T> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Self {
            code: Code::OK.0,
            msg: None,
            data: Some(data),
        }
    }
}

// === impl Ok ===

impl<T: Serialize> IntoResponse for Ok<T> {
    fn into_response(self) -> Response {
        json_response(Code::OK, StatusCode::OK, &Envelope::ok(self.0))
    }
}

// === impl ApiError ===

impl ApiError {
    pub fn new(code: Code) -> Self {
        Self {
            code,
            msg: None,
            data: None,
        }
    }

    pub fn with_msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }

    /// The message the client sees: the override, or the code's default.
    pub fn message(&self) -> &str {
        self.msg
            .as_deref()
            .unwrap_or_else(|| self.code.default_msg())
    }
}

impl From<Code> for ApiError {
    fn from(code: Code) -> Self {
        Self::new(code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let env = Envelope {
            code: self.code.0,
            msg: Some(self.message().to_owned()),
            data: self.data,
        };
        json_response(self.code, self.code.http_status(), &env)
    }
}

// Framework rejections become envelopes; their text (which may echo input) is not sent.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let msg = match r {
            JsonRejection::MissingJsonContentType(_) => {
                "请求体须为 JSON（Content-Type: application/json）"
            }
            JsonRejection::JsonSyntaxError(_) => "请求体不是合法的 JSON",
            JsonRejection::JsonDataError(_) => "请求体字段缺失或类型不符",
            JsonRejection::BytesRejection(ref b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                "请求体过大"
            }
            _ => "请求体无法读取",
        };
        ApiError::new(Code::BAD_PARAMETER).with_msg(msg)
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        ApiError::new(Code::BAD_PARAMETER).with_msg("查询参数错误")
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::new(Code::BAD_PARAMETER).with_msg("路径参数错误")
    }
}

impl From<FormRejection> for ApiError {
    fn from(_: FormRejection) -> Self {
        ApiError::new(Code::BAD_PARAMETER).with_msg("表单参数错误")
    }
}

fn json_response<T: Serialize>(code: Code, status: StatusCode, env: &Envelope<T>) -> Response {
    // Serialising our own envelope cannot fail for the types we put in it; fall back to 10000
    // rather than panic if a caller's data type has a failing Serialize impl.
    let (code, status, body) = match serde_json::to_vec(env) {
        Result::Ok(body) => (code, status, body),
        Err(_) => (
            Code::BUSY,
            Code::BUSY.http_status(),
            format!(
                r#"{{"code":{},"msg":"{}"}}"#,
                Code::BUSY.0,
                Code::BUSY.default_msg()
            )
            .into_bytes(),
        ),
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.extensions_mut().insert(EnvelopeMeta { code, status });
    resp
}

/// For legacy clients: answer HTTP 200 whatever the code (the code still says what happened).
pub fn always_200(mut resp: Response) -> Response {
    if resp.extensions().get::<EnvelopeMeta>().is_some() {
        *resp.status_mut() = StatusCode::OK;
    }
    resp
}

#[cfg(test)]
mod tests;
