//! Extractors that answer bad input with the envelope (20000) instead of the framework's text.

use axum::extract::{FromRequest, FromRequestParts, Request};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::Code;
use crate::envelope::ApiError;

/// `axum::Json`, but a malformed, mistyped or oversized body answers code 20000.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

/// `axum::extract::Query`, but a bad query string answers code 20000.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, but a parameter that does not decode (invalid UTF-8, wrong type)
/// answers code 20000.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(v) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(v))
    }
}

impl<S, T> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(Code::BAD_PARAMETER)
                .with_msg("请求体须为 JSON（Content-Type: application/json）"));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                let msg = if r.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                    "请求体过大"
                } else {
                    "请求体无法读取"
                };
                ApiError::new(Code::BAD_PARAMETER).with_msg(msg)
            })?;
        parse_json(&bytes).map(Json)
    }
}

/// `application/json` or any `application/*+json`, as axum's own extractor accepts.
fn is_json(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || (mime.len() > 17
            && mime[..12].eq_ignore_ascii_case("application/")
            && mime.to_ascii_lowercase().ends_with("+json"))
}

/// Parses a JSON body as `T`; a field that is missing, unknown or of the wrong type answers
/// 20000 naming the field by its path (`upstream.strip_prefix`) and the reason, with
/// `data: {"field", "reason"}`. Nothing of the value sent is repeated: it may be a secret.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let syntax = || ApiError::new(Code::BAD_PARAMETER).with_msg("请求体不是合法的 JSON");
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let e = match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => {
            // Bytes after the value: not one JSON document.
            de.end().map_err(|_| syntax())?;
            return Ok(v);
        }
        Err(e) => e,
    };
    let path = field_path(e.path());
    let inner = e.into_inner();
    if !matches!(inner.classify(), serde_json::error::Category::Data) {
        return Err(syntax());
    }
    let message = inner.to_string();
    let (reason, text) = data_error(&message);
    // serde reports a missing field at the path of the object that lacks it: name the field
    // itself, so `{}` is refused naming `id`, not the body.
    let field = match missing_name(&message) {
        Some(name) if path.is_empty() => name,
        Some(name) => format!("{path}.{name}"),
        None => path,
    };
    let msg = if field.is_empty() {
        format!("请求体{text}")
    } else if reason == "missing" {
        format!("请求体缺少字段 {field}")
    } else {
        format!("请求体字段 {field}：{text}")
    };
    Err(ApiError::new(Code::BAD_PARAMETER)
        .with_msg(msg)
        .with_data(serde_json::json!({ "field": field, "reason": reason })))
}

/// The path of a field as `a.b[2].c`; a key the client sent that is not a plain identifier is
/// shown as `?` (it may hold personal data).
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(if is_plain_name(key) { key } else { "?" });
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// A name short and plain enough to repeat in an answer.
fn is_plain_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// The field a "missing field `x`" error names, when it is a plain identifier.
fn missing_name(text: &str) -> Option<String> {
    let rest = text.strip_prefix("missing field `")?;
    let name = &rest[..rest.find('`')?];
    is_plain_name(name).then(|| name.to_owned())
}

/// A serde data error as a reason word and a message, keeping only what names the schema
/// (field names the type declares, the expected type) and never the value sent.
fn data_error(text: &str) -> (&'static str, String) {
    // serde's messages: "missing field `x`", "unknown field `x`, expected …",
    // "invalid type: string \"…\", expected u32", "invalid value: …, expected …".
    let text = text.split(" at line ").next().unwrap_or(text);
    let quoted = |t: &str| -> Option<String> {
        let start = t.find('`')? + 1;
        let len = t[start..].find('`')?;
        let name = &t[start..start + len];
        // A name the client sent is repeated only when it is a plain identifier.
        is_plain_name(name).then(|| name.to_owned())
    };
    let expected = text
        .rsplit_once(", expected ")
        .map(|(_, e)| e.to_owned())
        .unwrap_or_default();
    if let Some(rest) = text.strip_prefix("missing field ") {
        let name = quoted(rest).unwrap_or_default();
        return ("missing", format!("缺少字段 {name}"));
    }
    if let Some(rest) = text.strip_prefix("unknown field ") {
        return match quoted(rest) {
            Some(name) => ("unknown", format!("未知字段 {name}")),
            None => ("unknown", "未知字段".to_owned()),
        };
    }
    if text.starts_with("invalid type") {
        return ("type", format!("类型不符，应为 {expected}"));
    }
    if text.starts_with("invalid value") || text.starts_with("unknown variant") {
        return ("value", format!("取值无效，应为 {expected}"));
    }
    if text.starts_with("invalid length") {
        return ("length", format!("长度不符，应为 {expected}"));
    }
    ("invalid", "字段缺失或类型不符".to_owned())
}

impl<S, T> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(v) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Route {
        id: String,
        upstream: Upstream,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Upstream {
        #[serde(default)]
        strip_prefix: bool,
        weight: Option<u32>,
    }

    fn refusal(body: &str) -> (String, serde_json::Value) {
        let e = parse_json::<Route>(body.as_bytes()).expect_err("refused");
        assert_eq!(e.code, Code::BAD_PARAMETER);
        (e.message().to_owned(), e.data.clone().unwrap_or_default())
    }

    #[test]
    fn a_bad_field_is_named_by_its_path_and_its_value_never_repeated() {
        let (msg, data) = refusal(r#"{"id":"a","upstream":{"strip_prefix":"s3cr3t-value"}}"#);
        assert_eq!(data["field"], "upstream.strip_prefix", "{msg}");
        assert_eq!(data["reason"], "type");
        assert!(
            msg.contains("upstream.strip_prefix") && msg.contains("a boolean"),
            "{msg}"
        );
        assert!(!msg.contains("s3cr3t"), "{msg}");
        let (msg, data) = refusal(r#"{"id":"a","upstream":{"stripprefix":true}}"#);
        assert_eq!(
            (data["field"].as_str(), data["reason"].as_str()),
            (Some("upstream.stripprefix"), Some("unknown"))
        );
        assert!(msg.contains("未知字段 stripprefix"), "{msg}");
        let (_, data) = refusal(r#"{"upstream":{}}"#);
        assert_eq!(data["reason"], "missing");
        assert_eq!(data["field"], "id", "a missing top-level field is named");
        let (msg, _) = refusal(r#"{"id":"a","upstream":{"weight":-1}}"#);
        assert!(
            msg.contains("upstream.weight") && !msg.contains("-1"),
            "{msg}"
        );
        // A name that is not a plain identifier is not repeated either.
        let (msg, _) = refusal(r#"{"id":"a","upstream":{"11010519491231002X 张三":1}}"#);
        assert!(!msg.contains("张三") && !msg.contains("1101"), "{msg}");
    }

    #[test]
    fn broken_json_and_trailing_bytes_are_syntax_errors() {
        for body in [r#"{"id":"a""#, r#"{"id":"a","upstream":{}} x"#, ""] {
            let e = parse_json::<Route>(body.as_bytes()).expect_err("refused");
            assert_eq!(e.message(), "请求体不是合法的 JSON", "{body:?}");
        }
        let r: Route = parse_json(br#" {"id":"a","upstream":{"weight":3}} "#).expect("valid");
        assert_eq!(r.upstream.weight, Some(3));
    }
}
