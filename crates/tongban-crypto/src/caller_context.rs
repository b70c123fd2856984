//! The caller context: who is calling, as the gateway vouches for it to a business service.
//!
//! The gateway adds one header, `X-Tb-Caller`, to every request it forwards:
//!
//! ```text
//! v1.<key version>.<payload>.<tag>
//! ```
//!
//! `payload` is the context as a JSON object ([`CallerContext`]), Base64 URL-safe without
//! padding; `tag` is HMAC-SM3 under the service's context key of the ASCII text before the
//! last `.`, in the same Base64. The service's key is
//! `HMAC-SM3(caller-context DEK vN, "tongban/caller-context/v1\n" || service)`, issued to the
//! service by the admin API; `key version` is that N, so a rotation does not break contexts in
//! flight. HMAC rather than an SM2 signature because the gateway makes one per forwarded
//! request: an SM2 signature costs about 350 µs, the whole proxied request about 16 µs.
//! `docs/services.md` has the format with a worked example.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::encoding::{b64url_decode, b64url_encode};
use crate::sm3::{HmacSm3Key, SM3_LEN, ct_eq, hmac_sm3};

/// The header name (lowercase, as HTTP/2 sends it).
pub const HEADER: &str = "x-tb-caller";

const VERSION: &str = "v1";
const KEY_LABEL: &[u8] = b"tongban/caller-context/v1\n";
const SUBJECT_LABEL: &[u8] = b"tongban/caller-subject/v1\n";

/// Longest header accepted by [`verify`]: a context is about 400 bytes.
pub const MAX_LEN: usize = 4096;

/// What the gateway knows of a forwarded request's caller. Every field is always present in
/// the JSON (`null` when unknown), so clients in any language read it without defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerContext {
    /// The service the context is for; a context made for another service is refused.
    pub svc: String,
    /// The gateway route the request came through.
    pub route: String,
    /// The account, as a pseudonym of this service's own ([`subject`]): two services cannot
    /// join their records on it. `null` for a caller without a session.
    pub sub: Option<String>,
    /// The auth level the caller reached: `anonymous`, `real_name` or `face_verified`.
    pub lvl: String,
    /// When the session's last face check passed, Unix milliseconds.
    pub face_at: Option<i64>,
    /// The session, for a service that keeps per-session state.
    pub sid: Option<String>,
    /// The device the session is bound to (checked by the gateway against the session).
    pub dev: Option<String>,
    /// The calling application, when known.
    pub app: Option<String>,
    /// The request id, as in the platform's logs.
    pub rid: Option<String>,
    /// When the gateway made the context, Unix milliseconds.
    pub iat: i64,
    /// After this (Unix milliseconds) the context is refused.
    pub exp: i64,
}

/// A service's context key, prepared for use on every request.
#[derive(Clone, Debug)]
pub struct ContextKey {
    pub version: u32,
    mac: HmacSm3Key,
}

impl ContextKey {
    /// The key of `service` at `version`, from that version of the platform's caller-context
    /// key.
    pub fn derive(platform_key: &[u8], version: u32, service: &str) -> Self {
        Self::from_bytes(version, &service_key(platform_key, service))
    }

    /// A key as issued to a service (32 bytes).
    pub fn from_bytes(version: u32, key: &[u8]) -> Self {
        Self {
            version,
            mac: HmacSm3Key::new(key),
        }
    }
}

/// The 32-byte key of `service` derived from the platform's caller-context key.
pub fn service_key(platform_key: &[u8], service: &str) -> [u8; SM3_LEN] {
    hmac_sm3(platform_key, &[KEY_LABEL, service.as_bytes()])
}

/// The per-service pseudonym of an account: Base64 URL-safe of
/// `HMAC-SM3(pseudonym key, "tongban/caller-subject/v1\n" || service || "\n" || user id)`.
/// The pseudonym key never rotates (a rotation would give every account new ids).
pub fn subject(pseudonym_key: &HmacSm3Key, service: &str, user_id: &str) -> String {
    b64url_encode(&pseudonym_key.mac(&[
        SUBJECT_LABEL,
        service.as_bytes(),
        b"\n",
        user_id.as_bytes(),
    ]))
}

/// The header value for `ctx` under `key`.
pub fn seal(ctx: &CallerContext, key: &ContextKey) -> String {
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(ctx).unwrap_or_default();
    let mut out = String::with_capacity(json.len() * 4 / 3 + 64);
    // Writing to a String cannot fail.
    let _ = write!(out, "{VERSION}.{}.", key.version);
    out.push_str(&b64url_encode(&json));
    let tag = key.mac.mac(&[out.as_bytes()]);
    out.push('.');
    out.push_str(&b64url_encode(&tag));
    out
}

/// Why a context was refused. The messages name no key and no payload content.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    #[error("no caller context")]
    Missing,
    #[error("the caller context is malformed")]
    Malformed,
    #[error("the caller context names a key version this service does not hold")]
    UnknownKey(u32),
    #[error("the caller context's tag does not verify")]
    BadTag,
    #[error("the caller context is for another service")]
    OtherService,
    #[error("the caller context has expired")]
    Expired,
}

/// Verifies a header value made by [`seal`] for `service`: the tag under the key of the
/// version it names (`keys`), then the service and the expiry against `now_ms`.
pub fn verify(
    header: &str,
    service: &str,
    keys: impl Fn(u32) -> Option<ContextKey>,
    now_ms: i64,
) -> Result<CallerContext, ContextError> {
    if header.is_empty() {
        return Err(ContextError::Missing);
    }
    if header.len() > MAX_LEN {
        return Err(ContextError::Malformed);
    }
    let (signed, tag) = header.rsplit_once('.').ok_or(ContextError::Malformed)?;
    let mut fields = signed.splitn(3, '.');
    let (Some(VERSION), Some(version), Some(payload)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(ContextError::Malformed);
    };
    // Decimal without sign or leading zeros, so one key version has one spelling.
    if version.is_empty()
        || (version.len() > 1 && version.starts_with('0'))
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ContextError::Malformed);
    }
    let version: u32 = version.parse().map_err(|_| ContextError::Malformed)?;
    let key = keys(version).ok_or(ContextError::UnknownKey(version))?;
    let tag = b64url_decode(tag, "tag").map_err(|_| ContextError::Malformed)?;
    if !ct_eq(&key.mac.mac(&[signed.as_bytes()]), &tag) {
        return Err(ContextError::BadTag);
    }
    let json = b64url_decode(payload, "payload").map_err(|_| ContextError::Malformed)?;
    let ctx: CallerContext = serde_json::from_slice(&json).map_err(|_| ContextError::Malformed)?;
    if ctx.svc != service {
        return Err(ContextError::OtherService);
    }
    if now_ms > ctx.exp {
        return Err(ContextError::Expired);
    }
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallerContext {
        CallerContext {
            svc: "social-insurance".into(),
            route: "contribution-records".into(),
            sub: Some("abc".into()),
            lvl: "real_name".into(),
            face_at: None,
            sid: Some("s1".into()),
            dev: Some("d1".into()),
            app: None,
            rid: Some("r1".into()),
            iat: 1_000,
            exp: 61_000,
        }
    }

    fn key(version: u32) -> ContextKey {
        ContextKey::derive(&[7; 16], version, "social-insurance")
    }

    #[test]
    fn a_sealed_context_verifies_and_any_change_is_refused() {
        let header = seal(&ctx(), &key(3));
        assert!(header.starts_with("v1.3."));
        let keys = |v| (v == 3).then(|| key(3));
        assert_eq!(
            verify(&header, "social-insurance", keys, 2_000).as_ref(),
            Ok(&ctx())
        );
        // Every single-character change of the header is refused.
        for i in 0..header.len() {
            let mut bytes = header.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(bytes).expect("ascii");
            assert!(
                verify(&changed, "social-insurance", keys, 2_000).is_err(),
                "changed at {i}: {changed}"
            );
        }
        assert_eq!(
            verify(&header, "hall-booking", keys, 2_000),
            Err(ContextError::OtherService)
        );
        assert_eq!(
            verify(&header, "social-insurance", keys, 61_001),
            Err(ContextError::Expired)
        );
        assert_eq!(
            verify(&header, "social-insurance", |_| None, 2_000),
            Err(ContextError::UnknownKey(3))
        );
        // Another service's key does not verify it.
        let other = |_| Some(ContextKey::derive(&[7; 16], 3, "hall-booking"));
        assert_eq!(
            verify(&header, "social-insurance", other, 2_000),
            Err(ContextError::BadTag)
        );
    }

    #[test]
    fn malformed_headers_are_refused_without_panicking() {
        let keys = |_| Some(key(1));
        for bad in [
            "",
            "v1",
            "v1.1",
            "v1.1.e30",
            "v2.1.e30.AAAA",
            "v1.01.e30.AAAA",
            "v1.+1.e30.AAAA",
            "v1.99999999999.e30.AAAA",
            "v1.1.e30.!!",
            "v1.1..",
            "...",
        ] {
            assert!(verify(bad, "social-insurance", keys, 0).is_err(), "{bad}");
        }
        assert_eq!(
            verify(&"v".repeat(MAX_LEN + 1), "s", keys, 0),
            Err(ContextError::Malformed)
        );
        // A valid tag over a payload that is not the context is refused too.
        let k = key(1);
        let signed = format!("v1.1.{}", b64url_encode(b"{\"svc\":1}"));
        let tag = b64url_encode(&k.mac.mac(&[signed.as_bytes()]));
        assert_eq!(
            verify(&format!("{signed}.{tag}"), "social-insurance", keys, 0),
            Err(ContextError::Malformed)
        );
    }

    #[test]
    fn subjects_differ_per_service_and_per_account() {
        let k = HmacSm3Key::new(&[9; 16]);
        let a = subject(&k, "social-insurance", "u1");
        assert_eq!(a, subject(&k, "social-insurance", "u1"));
        assert_ne!(a, subject(&k, "hall-booking", "u1"));
        assert_ne!(a, subject(&k, "social-insurance", "u2"));
        assert_eq!(a.len(), 43);
    }
}
