//! The caller context: who is calling, as the gateway vouches for it to a business service.
//!
//! The gateway adds one header, `X-Tb-Caller`, to every request it forwards:
//!
//! ```text
//! v1.<key version>.<caller>.<request>.<tag>
//! ```
//!
//! `caller` is the part that stays the same across a session's requests to one service
//! ([`CallerPart`]) and `request` the part of this request ([`RequestPart`]), each a JSON
//! object in Base64 URL-safe without padding. With `K` the service's context key:
//!
//! ```text
//! caller tag = HMAC-SM3(K, "v1.<key version>.<caller>")
//! tag        = HMAC-SM3(K, caller tag || "." || request)      (Base64 URL-safe)
//! ```
//!
//! so the gateway seals a session's caller part once and per request only the short request
//! part. The service's key is `HMAC-SM3(caller-context DEK vN, "tongban/caller-context/v1\n" ||
//! service)`, issued to the service by the admin API; `key version` is that N, so a rotation
//! does not break contexts in flight. HMAC rather than an SM2 signature because the gateway
//! makes one per forwarded request: an SM2 signature costs about 350 µs, the whole proxied
//! request about 16 µs. `docs/services.md` has the format with a worked example.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use zeroize::Zeroizing;

use crate::encoding::{b64url_decode, b64url_encode};
use crate::gcm::Sm4Gcm;
use crate::sm3::{HmacSm3Key, SM3_LEN, ct_eq, hmac_sm3};
use crate::{CryptoError, Sm4Key};

/// The header name (lowercase, as HTTP/2 sends it).
pub const HEADER: &str = "x-tb-caller";

const VERSION: &str = "v1";
const KEY_LABEL: &[u8] = b"tongban/caller-context/v1\n";
const SUBJECT_LABEL: &[u8] = b"tongban/caller-subject/v1\n";

/// Longest header accepted by [`verify`]: a context is about 450 bytes.
pub const MAX_LEN: usize = 4096;

/// Who calls: the same for every request of a session to one service. Every field is always
/// present in the JSON (`null` when unknown), so clients in any language read it without
/// defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerPart {
    /// The service the context is for; a context made for another service is refused.
    pub svc: String,
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
    /// The real-name person (name and ID number), sealed for this service ([`seal_person`]),
    /// on routes that ask for it and for callers with a real-name binding; else `null`.
    pub person: Option<String>,
}

/// What belongs to this request only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestPart {
    /// The gateway route the request came through.
    pub route: String,
    /// The request id, as in the platform's logs.
    pub rid: Option<String>,
    /// When the gateway made the context, Unix milliseconds.
    pub iat: i64,
    /// After this (Unix milliseconds) the context is refused.
    pub exp: i64,
}

/// A verified context: both parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallerContext {
    pub caller: CallerPart,
    pub request: RequestPart,
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

const PERSON_LABEL: &[u8] = b"tongban/caller-person/v1";

/// The citizen's real-name identity, for a service whose business needs it.
#[derive(Clone, Serialize, Deserialize)]
pub struct Person {
    pub name: Zeroizing<String>,
    pub id_number: Zeroizing<String>,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Person([REDACTED])")
    }
}

/// The SM4-GCM key persons are sealed with for one service: the first 16 bytes of
/// `HMAC-SM3(K, "tongban/caller-person/v1")`.
fn person_cipher(key: &ContextKey) -> Sm4Gcm {
    let mac = Zeroizing::new(key.mac.mac(&[PERSON_LABEL]));
    let mut k = [0u8; 16];
    k.copy_from_slice(&mac[..16]);
    Sm4Gcm::new(&Sm4Key::from_bytes(k))
}

/// `person` sealed for the service of `key`: Base64 URL-safe of `nonce (12) ||
/// SM4-GCM(person key, JSON {"name", "id_number"}) || tag (16)`, AAD
/// `"tongban/caller-person/v1"`. Only the service (and the platform) can open it, so the
/// header carries no personal data in the clear.
pub fn seal_person(person: &Person, key: &ContextKey) -> Result<String, CryptoError> {
    let json = Zeroizing::new(serde_json::to_vec(person).unwrap_or_default());
    let (nonce, sealed) = person_cipher(key).seal_random(PERSON_LABEL, &json)?;
    let mut out = Vec::with_capacity(nonce.len() + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    Ok(b64url_encode(&out))
}

/// Opens a `person` field made by [`seal_person`] under the same key.
pub fn open_person(sealed: &str, key: &ContextKey) -> Result<Person, ContextError> {
    let bytes = b64url_decode(sealed, "person").map_err(|_| ContextError::Malformed)?;
    let (nonce, rest) = bytes
        .split_first_chunk::<12>()
        .ok_or(ContextError::Malformed)?;
    let json = person_cipher(key)
        .open(nonce, PERSON_LABEL, rest)
        .map_err(|_| ContextError::BadTag)?;
    serde_json::from_slice(&json).map_err(|_| ContextError::Malformed)
}

/// A caller part with its tag, to be reused for the requests it describes.
#[derive(Clone, Debug)]
pub struct SealedCaller {
    /// `v1.<key version>.<caller>`.
    text: String,
    tag: [u8; SM3_LEN],
}

/// Seals the caller part under `key`.
pub fn seal_caller(caller: &CallerPart, key: &ContextKey) -> SealedCaller {
    // Serializing a struct of strings and integers cannot fail.
    let json = serde_json::to_vec(caller).unwrap_or_default();
    let mut text = String::with_capacity(json.len() * 4 / 3 + 16);
    // Writing to a String cannot fail.
    let _ = write!(text, "{VERSION}.{}.", key.version);
    text.push_str(&b64url_encode(&json));
    let tag = key.mac.mac(&[text.as_bytes()]);
    SealedCaller { text, tag }
}

/// The header value for one request of a sealed caller.
pub fn seal_request(caller: &SealedCaller, request: &RequestPart, key: &ContextKey) -> String {
    seal_request_parts(
        caller,
        &request.route,
        request.rid.as_deref(),
        request.iat,
        request.exp,
        key,
    )
}

#[derive(Serialize)]
struct RequestRef<'a> {
    route: &'a str,
    rid: Option<&'a str>,
    iat: i64,
    exp: i64,
}

/// [`seal_request`] from borrowed fields, for the gateway's request path.
pub fn seal_request_parts(
    caller: &SealedCaller,
    route: &str,
    rid: Option<&str>,
    iat: i64,
    exp: i64,
    key: &ContextKey,
) -> String {
    let fields = RequestRef {
        route,
        rid,
        iat,
        exp,
    };
    let json = serde_json::to_vec(&fields).unwrap_or_default();
    let request = b64url_encode(&json);
    let tag = key.mac.mac(&[&caller.tag, b".", request.as_bytes()]);
    let mut out = String::with_capacity(caller.text.len() + request.len() + 46);
    out.push_str(&caller.text);
    out.push('.');
    out.push_str(&request);
    out.push('.');
    out.push_str(&b64url_encode(&tag));
    out
}

/// Both steps at once.
pub fn seal(ctx: &CallerContext, key: &ContextKey) -> String {
    seal_request(&seal_caller(&ctx.caller, key), &ctx.request, key)
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

/// Verifies a header value made by [`seal`] for `service`: the tags under the key of the
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
    let mut parts = header.split('.');
    let (Some(VERSION), Some(version), Some(caller), Some(request), Some(tag), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(ContextError::Malformed);
    };
    // Decimal without sign or leading zeros, so one key version has one spelling.
    if version.is_empty()
        || (version.len() > 1 && version.starts_with('0'))
        || !version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ContextError::Malformed);
    }
    let v: u32 = version.parse().map_err(|_| ContextError::Malformed)?;
    let key = keys(v).ok_or(ContextError::UnknownKey(v))?;
    let tag = b64url_decode(tag, "tag").map_err(|_| ContextError::Malformed)?;
    // `v1.<version>.<caller>`: the header's prefix up to the caller part's end.
    let caller_text = &header[..VERSION.len() + 1 + version.len() + 1 + caller.len()];
    let caller_tag = key.mac.mac(&[caller_text.as_bytes()]);
    if !ct_eq(&key.mac.mac(&[&caller_tag, b".", request.as_bytes()]), &tag) {
        return Err(ContextError::BadTag);
    }
    let decode = |text: &str| b64url_decode(text, "part").map_err(|_| ContextError::Malformed);
    let caller: CallerPart =
        serde_json::from_slice(&decode(caller)?).map_err(|_| ContextError::Malformed)?;
    let request: RequestPart =
        serde_json::from_slice(&decode(request)?).map_err(|_| ContextError::Malformed)?;
    if caller.svc != service {
        return Err(ContextError::OtherService);
    }
    if now_ms > request.exp {
        return Err(ContextError::Expired);
    }
    Ok(CallerContext { caller, request })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallerContext {
        CallerContext {
            caller: CallerPart {
                svc: "social-insurance".into(),
                sub: Some("abc".into()),
                lvl: "real_name".into(),
                face_at: None,
                sid: Some("s1".into()),
                dev: Some("d1".into()),
                app: None,
                person: None,
            },
            request: RequestPart {
                route: "contribution-records".into(),
                rid: Some("r1".into()),
                iat: 1_000,
                exp: 61_000,
            },
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
            "v1.1.e30.AAAA",
            "v2.1.e30.e30.AAAA",
            "v1.01.e30.e30.AAAA",
            "v1.+1.e30.e30.AAAA",
            "v1.99999999999.e30.e30.AAAA",
            "v1.1.e30.e30.!!",
            "v1.1.e30.e30.AAAA.x",
            "v1.1...",
            "....",
        ] {
            assert!(verify(bad, "social-insurance", keys, 0).is_err(), "{bad}");
        }
        assert_eq!(
            verify(&"v".repeat(MAX_LEN + 1), "s", keys, 0),
            Err(ContextError::Malformed)
        );
        // Valid tags over parts that are not the context are refused too.
        let k = key(1);
        let sealed = seal_caller_raw(b"{\"svc\":1}", &k);
        let request = b64url_encode(b"{}");
        let tag = b64url_encode(&k.mac.mac(&[&sealed.tag, b".", request.as_bytes()]));
        assert_eq!(
            verify(
                &format!("{}.{request}.{tag}", sealed.text),
                "social-insurance",
                keys,
                0
            ),
            Err(ContextError::Malformed)
        );
    }

    fn seal_caller_raw(json: &[u8], key: &ContextKey) -> SealedCaller {
        let text = format!("v1.{}.{}", key.version, b64url_encode(json));
        let tag = key.mac.mac(&[text.as_bytes()]);
        SealedCaller { text, tag }
    }

    #[test]
    fn one_sealed_caller_serves_many_requests() {
        let k = key(1);
        let c = ctx();
        let sealed = seal_caller(&c.caller, &k);
        for i in 0..3 {
            let mut r = c.request.clone();
            r.rid = Some(format!("r{i}"));
            let header = seal_request(&sealed, &r, &k);
            let got =
                verify(&header, "social-insurance", |_| Some(k.clone()), 0).expect("verifies");
            assert_eq!(got.request, r);
            assert_eq!(got.caller, c.caller);
        }
    }

    #[test]
    fn a_person_opens_only_with_the_services_own_key() {
        let person = Person {
            name: Zeroizing::new("李娜".into()),
            id_number: Zeroizing::new("11010519851114002X".into()),
        };
        let sealed = seal_person(&person, &key(1)).expect("seals");
        assert!(!sealed.contains("李娜") && !sealed.contains("110105"));
        let opened = open_person(&sealed, &key(1)).expect("opens");
        assert_eq!(opened.id_number.as_str(), "11010519851114002X");
        assert_eq!(format!("{opened:?}"), "Person([REDACTED])");
        let other = ContextKey::derive(&[7; 16], 1, "hall-booking");
        assert_eq!(
            open_person(&sealed, &other).err(),
            Some(ContextError::BadTag)
        );
        assert_eq!(
            open_person("AAAA", &key(1)).err(),
            Some(ContextError::Malformed)
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
