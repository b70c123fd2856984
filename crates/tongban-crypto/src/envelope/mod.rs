//! Digital envelope (clause 6.3.2.2 d): SM2 wraps a random SM4 key, SM4-GCM carries the body.
//!
//! Request, as JSON: `{"kid", "key", "iv", "data"}` — `kid` names the server's SM2 key pair;
//! `key` is the SM2 ciphertext (C1C3C2 with `04` by default) of a fresh 16-byte SM4 key;
//! `iv` the 12-byte GCM nonce; `data` the SM4-GCM ciphertext followed by its 16-byte tag; the
//! three are standard Base64. The AAD is `tongban-envelope/v1/request/<kid>` in UTF-8. The
//! response `{"iv", "data"}` reuses the request's SM4 key with a fresh nonce and the AAD
//! `tongban-envelope/v1/response/<kid>`, so only the client that sent the request can read it
//! and a response cannot be replayed as a request. Every failure is one [`EnvelopeError`]
//! (the gateway answers code 20004); no part of a payload ever reaches an error or a log.

mod keys;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

pub use keys::{EnvelopeKeySet, EnvelopeKeys, PublishedKey};

use crate::{
    Sm4Key,
    encoding::{b64_decode, b64_encode},
    gcm::{NONCE_LEN, Sm4Gcm},
    random::random_array,
    sm2::{Sm2CipherFormat, Sm2PublicKey},
};

const REQUEST_AAD: &str = "tongban-envelope/v1/request/";
const RESPONSE_AAD: &str = "tongban-envelope/v1/response/";

/// A sealed request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestEnvelope {
    /// Id of the server key pair the SM4 key is encrypted to.
    pub kid: String,
    /// Base64 SM2 ciphertext of the 16-byte SM4 key.
    pub key: String,
    /// Base64 12-byte GCM nonce.
    pub iv: String,
    /// Base64 SM4-GCM ciphertext followed by the 16-byte tag.
    pub data: String,
}

/// A sealed response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseEnvelope {
    /// Base64 12-byte GCM nonce (fresh for every response).
    pub iv: String,
    /// Base64 SM4-GCM ciphertext followed by the 16-byte tag.
    pub data: String,
}

/// The SM4 key of one request/response exchange, held by both ends.
#[derive(Debug)]
pub struct EnvelopeSession {
    kid: String,
    key: Sm4Key,
}

/// The one error of the envelope: the gateway maps it to code 20004. [`EnvelopeError::reason`]
/// says which check failed, for metrics and logs; it never contains payload data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("digital envelope rejected ({reason:?})")]
pub struct EnvelopeError {
    reason: EnvelopeFailure,
}

/// Which check of the envelope failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeFailure {
    /// Not JSON of the expected shape (missing, extra or mistyped fields).
    MalformedJson,
    /// `kid` names no key pair of this server.
    UnknownKid,
    /// A field is not valid Base64.
    BadEncoding,
    /// The `iv` is not 12 bytes.
    BadNonce,
    /// The SM2 part did not decrypt (bad point, wrong key, failed C3 check).
    KeyDecryption,
    /// The SM2 part decrypted to something other than a 16-byte key.
    BadKeyLength,
    /// SM4-GCM authentication failed (altered data, tag, kid or key).
    Authentication,
    /// Sealing failed (random generator, SM2 encryption).
    Sealing,
}

fn fail(reason: EnvelopeFailure) -> EnvelopeError {
    EnvelopeError { reason }
}

// === impl EnvelopeError ===

impl EnvelopeError {
    /// Which check failed.
    pub fn reason(&self) -> EnvelopeFailure {
        self.reason
    }
}

// === impl EnvelopeSession ===

impl EnvelopeSession {
    /// Key id of the exchange.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The SM4 key (for clients that keep it outside this type, e.g. test tools).
    pub fn key(&self) -> &Sm4Key {
        &self.key
    }

    /// Rebuilds a session from its parts (client side, after [`seal_request`]).
    pub fn from_parts(kid: &str, key: Sm4Key) -> Self {
        Self {
            kid: kid.to_owned(),
            key,
        }
    }

    /// Seals a response body with a fresh nonce.
    pub fn seal_response(&self, plaintext: &[u8]) -> Result<ResponseEnvelope, EnvelopeError> {
        let aad = format!("{RESPONSE_AAD}{}", self.kid);
        let (nonce, sealed) = Sm4Gcm::new(&self.key)
            .seal_random(crate::utf8_bytes(&aad), plaintext)
            .map_err(|_| fail(EnvelopeFailure::Sealing))?;
        Ok(ResponseEnvelope {
            iv: b64_encode(&nonce),
            data: b64_encode(&sealed),
        })
    }

    /// Opens a response body (client side).
    pub fn open_response(
        &self,
        response: &ResponseEnvelope,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let aad = format!("{RESPONSE_AAD}{}", self.kid);
        open_gcm(&self.key, &aad, &response.iv, &response.data)
    }

    /// Opens a response body given as JSON bytes.
    pub fn open_response_json(&self, json: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let response: ResponseEnvelope =
            serde_json::from_slice(json).map_err(|_| fail(EnvelopeFailure::MalformedJson))?;
        self.open_response(&response)
    }
}

// === sealing and opening requests ===

/// Seals a request body to the server key `kid` (client side; the JS client does the same).
pub fn seal_request(
    server_key: &Sm2PublicKey,
    kid: &str,
    plaintext: &[u8],
    format: Sm2CipherFormat,
) -> Result<(RequestEnvelope, EnvelopeSession), EnvelopeError> {
    let key = Sm4Key::generate().map_err(|_| fail(EnvelopeFailure::Sealing))?;
    let wrapped = server_key
        .encrypt(key.expose(), format)
        .map_err(|_| fail(EnvelopeFailure::Sealing))?;
    let nonce: [u8; NONCE_LEN] = random_array().map_err(|_| fail(EnvelopeFailure::Sealing))?;
    let aad = format!("{REQUEST_AAD}{kid}");
    let sealed = Sm4Gcm::new(&key)
        .seal(&nonce, crate::utf8_bytes(&aad), plaintext)
        .map_err(|_| fail(EnvelopeFailure::Sealing))?;
    let envelope = RequestEnvelope {
        kid: kid.to_owned(),
        key: b64_encode(&wrapped),
        iv: b64_encode(&nonce),
        data: b64_encode(&sealed),
    };
    Ok((envelope, EnvelopeSession::from_parts(kid, key)))
}

/// Opens a request body given as JSON bytes (server side).
pub fn open_request_json<K: EnvelopeKeys + ?Sized>(
    keys: &K,
    json: &[u8],
    format: Sm2CipherFormat,
) -> Result<(Zeroizing<Vec<u8>>, EnvelopeSession), EnvelopeError> {
    let envelope: RequestEnvelope =
        serde_json::from_slice(json).map_err(|_| fail(EnvelopeFailure::MalformedJson))?;
    open_request(keys, &envelope, format)
}

/// Opens a parsed request envelope (server side); the session seals the response.
pub fn open_request<K: EnvelopeKeys + ?Sized>(
    keys: &K,
    envelope: &RequestEnvelope,
    format: Sm2CipherFormat,
) -> Result<(Zeroizing<Vec<u8>>, EnvelopeSession), EnvelopeError> {
    let private = keys
        .private_key(&envelope.kid)
        .ok_or(fail(EnvelopeFailure::UnknownKid))?;
    let wrapped = b64_decode(&envelope.key, "envelope key")
        .map_err(|_| fail(EnvelopeFailure::BadEncoding))?;
    let raw = private
        .decrypt(&wrapped, format)
        .map_err(|_| fail(EnvelopeFailure::KeyDecryption))?;
    let key = Sm4Key::from_slice(&raw).map_err(|_| fail(EnvelopeFailure::BadKeyLength))?;
    let aad = format!("{REQUEST_AAD}{}", envelope.kid);
    let plaintext = open_gcm(&key, &aad, &envelope.iv, &envelope.data)?;
    Ok((plaintext, EnvelopeSession::from_parts(&envelope.kid, key)))
}

fn open_gcm(
    key: &Sm4Key,
    aad: &str,
    iv: &str,
    data: &str,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let nonce = b64_decode(iv, "envelope iv").map_err(|_| fail(EnvelopeFailure::BadEncoding))?;
    let nonce: [u8; NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| fail(EnvelopeFailure::BadNonce))?;
    let sealed =
        b64_decode(data, "envelope data").map_err(|_| fail(EnvelopeFailure::BadEncoding))?;
    Sm4Gcm::new(key)
        .open(&nonce, crate::utf8_bytes(aad), &sealed)
        .map_err(|_| fail(EnvelopeFailure::Authentication))
}
