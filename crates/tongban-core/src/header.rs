//! Header names as the HTTP/1.1 parsers (the server's and the upstream client's) read them.
//!
//! `HeaderName::from_bytes` lowercases every name through a table before it matches the
//! standard names, and copies any other name into an allocation of its own. The names that
//! arrive on nearly every request and answer come in one of two spellings (`Content-Type` from
//! browsers, curl and wrk; `content-type` from hyper, nginx and HTTP/2 peers), so those two
//! are compared first, as fixed-size arrays, and the constant is handed out: no lowercasing,
//! and no allocation for Tongban's own names. Anything else (another spelling, another name)
//! goes to `from_bytes`, which also refuses what is not a valid name.

use http::header::{self, HeaderName, InvalidHeaderName};

pub const X_DEVICE_ID: HeaderName = HeaderName::from_static("x-device-id");
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The signed caller context the gateway adds to forwarded requests
/// (`tongban_crypto::caller_context`).
pub const X_TB_CALLER: HeaderName = HeaderName::from_static("x-tb-caller");
/// The access token, for clients that cannot set `Authorization`.
pub const TOKEN: HeaderName = HeaderName::from_static("token");
pub const X_TB_KEY_ID: HeaderName = HeaderName::from_static("x-tb-key-id");
pub const X_TB_NONCE: HeaderName = HeaderName::from_static("x-tb-nonce");
pub const X_TB_SIGNATURE: HeaderName = HeaderName::from_static("x-tb-signature");
pub const X_TB_TIMESTAMP: HeaderName = HeaderName::from_static("x-tb-timestamp");

/// The header name `raw` as it came off the wire.
pub fn name(raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    match known(raw) {
        Some(n) => Ok(n),
        None => HeaderName::from_bytes(raw),
    }
}

/// Per length, the names with their two usual spellings: `a == b"…"` on arrays of a length
/// known here compiles to a few word compares instead of a call to `memcmp`.
macro_rules! known_names {
    ($raw:ident; $($len:literal => [$(($canon:literal, $lower:literal, $name:expr)),+ $(,)?]),+ $(,)?) => {
        match $raw.len() {
            $($len => {
                let a: &[u8; $len] = $raw.try_into().ok()?;
                $(if a == $canon || a == $lower {
                    return Some($name);
                })+
                None
            })+
            _ => None,
        }
    };
}

fn known(raw: &[u8]) -> Option<HeaderName> {
    known_names! { raw;
        4 => [(b"Host", b"host", header::HOST), (b"Date", b"date", header::DATE)],
        6 => [
            (b"Accept", b"accept", header::ACCEPT),
            (b"Cookie", b"cookie", header::COOKIE),
            (b"Server", b"server", header::SERVER),
            (b"Origin", b"origin", header::ORIGIN),
        ],
        10 => [
            (b"User-Agent", b"user-agent", header::USER_AGENT),
            (b"Connection", b"connection", header::CONNECTION),
            (b"Set-Cookie", b"set-cookie", header::SET_COOKIE),
            (b"X-Tb-Nonce", b"x-tb-nonce", X_TB_NONCE),
        ],
        11 => [
            (b"X-Device-Id", b"x-device-id", X_DEVICE_ID),
            (b"X-Tb-Key-Id", b"x-tb-key-id", X_TB_KEY_ID),
        ],
        12 => [
            (b"Content-Type", b"content-type", header::CONTENT_TYPE),
            (b"X-Request-Id", b"x-request-id", X_REQUEST_ID),
        ],
        13 => [
            (b"Authorization", b"authorization", header::AUTHORIZATION),
            (b"Cache-Control", b"cache-control", header::CACHE_CONTROL),
        ],
        14 => [
            (b"Content-Length", b"content-length", header::CONTENT_LENGTH),
            (b"X-Tb-Signature", b"x-tb-signature", X_TB_SIGNATURE),
            (b"X-Tb-Timestamp", b"x-tb-timestamp", X_TB_TIMESTAMP),
        ],
        15 => [
            (b"Accept-Encoding", b"accept-encoding", header::ACCEPT_ENCODING),
            (b"Accept-Language", b"accept-language", header::ACCEPT_LANGUAGE),
            (b"X-Forwarded-For", b"x-forwarded-for", X_FORWARDED_FOR),
        ],
        16 => [(b"Content-Encoding", b"content-encoding", header::CONTENT_ENCODING)],
        17 => [(b"Transfer-Encoding", b"transfer-encoding", header::TRANSFER_ENCODING)],
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    /// Every name of the table, in both spellings and in others, reads as `from_bytes` reads
    /// it; so do names that are not in it and names that are not valid.
    #[test]
    fn reads_every_name_as_from_bytes_does() {
        let table = [
            "Host",
            "Date",
            "Accept",
            "Cookie",
            "Server",
            "Origin",
            "User-Agent",
            "Connection",
            "Set-Cookie",
            "X-Tb-Nonce",
            "X-Device-Id",
            "X-Tb-Key-Id",
            "Content-Type",
            "X-Request-Id",
            "Authorization",
            "Cache-Control",
            "Content-Length",
            "X-Tb-Signature",
            "X-Tb-Timestamp",
            "Accept-Encoding",
            "Accept-Language",
            "X-Forwarded-For",
            "Content-Encoding",
            "Transfer-Encoding",
        ];
        let mut raws: Vec<String> = Vec::new();
        for n in table {
            raws.push(n.to_owned());
            raws.push(n.to_ascii_lowercase());
            raws.push(n.to_ascii_uppercase());
            assert!(known(n.as_bytes()).is_some(), "{n} is in the table");
            assert!(known(n.to_ascii_lowercase().as_bytes()).is_some());
        }
        raws.extend(
            [
                "X-Request-ID",
                "x-custom",
                "Keep-Alive",
                "Hostx",
                "Hos",
                "",
                "Content-Type ",
                "Content Type",
                "content-typ\u{e9}",
                "X-Tb-Nonce\0",
                "Authorization:",
            ]
            .map(str::to_owned),
        );
        for raw in &raws {
            let ours = name(raw.as_bytes()).map_err(|_| ());
            let theirs = HeaderName::from_bytes(raw.as_bytes()).map_err(|_| ());
            assert_eq!(ours, theirs, "{raw:?}");
            if let Ok(n) = ours {
                assert_eq!(n.as_str(), raw.to_ascii_lowercase());
            }
        }
    }

    #[test]
    fn tongbans_own_names_are_the_ones_other_code_uses() {
        let mut h = http::HeaderMap::new();
        h.insert(
            name(b"X-Request-Id").expect("a name"),
            HeaderValue::from_static("a"),
        );
        h.insert(
            name(b"x-device-id").expect("a name"),
            HeaderValue::from_static("b"),
        );
        assert_eq!(h.get("x-request-id"), Some(&HeaderValue::from_static("a")));
        assert_eq!(
            h.get(HeaderName::from_static("x-device-id")),
            Some(&HeaderValue::from_static("b"))
        );
    }
}
