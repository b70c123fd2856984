//! Anti-tamper signatures (6.2.2.1 b): a request to a signed route carries an HMAC-SM3 over
//! its method, path, sorted query, SM3 body digest, timestamp, nonce and key id, keyed by the
//! caller's per-session key; the window is ±300 s and nonces are single-use (the nonce store
//! fails closed). The answer is signed back under the same key, bound to the request's nonce.
//! `docs/signing.md` specifies the scheme with test vectors; [`canonical`] is that text in code.

pub mod canonical;
pub mod layer;
pub mod nonce;

use std::fmt::Debug;

use http::request::Parts;
use tongban_core::ApiError;

pub use canonical::{Signed, Verdict};
pub use layer::SignatureLayer;
pub use nonce::{LocalNonces, NonceStore, RedisNonces};

/// Header names of the scheme (names, not `&str`: a map parses a `&str` into a name on every
/// lookup).
pub use tongban_core::header::{
    X_TB_KEY_ID as KEY_ID, X_TB_NONCE as NONCE, X_TB_SIGNATURE as SIGNATURE,
    X_TB_TIMESTAMP as TIMESTAMP,
};

/// Finds the signing key a request names; the identity part implements it with the per-session
/// keys it issues at login (and checks the key belongs to the request's session).
#[async_trait::async_trait]
pub trait SigningKeys: Send + Sync + Debug + 'static {
    /// The key for `key_id`, `None` if there is no such key, or the login error to answer.
    async fn key(&self, parts: &Parts, key_id: &str) -> Result<Option<Vec<u8>>, ApiError>;
}

#[cfg(test)]
mod tests;
