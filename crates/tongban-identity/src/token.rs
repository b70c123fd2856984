//! Opaque tokens and the hashes they are stored as.
//!
//! Tokens are 256 random bits, Base64 URL-safe: opaque to the client and useless to an
//! attacker who reads the database, which holds only SM3 hashes. Opaque tokens, rather than
//! SM2-signed ones, because every use is checked against the session row anyway (revocation,
//! sign-out everywhere, device binding), so a signature would add bytes and verification cost
//! without removing the lookup.

use tongban_crypto::CryptoError;
use tongban_crypto::encoding::b64url_encode;
use tongban_crypto::random::random_array;
use tongban_crypto::sm3::sm3_parts;
use tongban_crypto::utf8_bytes;

/// A fresh random token or id of 256 bits.
pub(crate) fn new_token() -> Result<String, CryptoError> {
    Ok(b64url_encode(&random_array::<32>()?))
}

/// A fresh random identifier with a readable prefix (`u…`, `s…`), 128 bits.
pub(crate) fn new_id(prefix: &str) -> Result<String, CryptoError> {
    Ok(format!("{prefix}{}", b64url_encode(&random_array::<16>()?)))
}

/// The stored form of a secret value, domain-separated by `label`.
pub(crate) fn hash(label: &str, value: &str) -> String {
    let len = u32::try_from(label.len()).unwrap_or(u32::MAX).to_be_bytes();
    b64url_encode(&sm3_parts(&[
        b"tongban/identity/v1",
        &len,
        utf8_bytes(label),
        utf8_bytes(value),
    ]))
}

pub(crate) fn access_hash(token: &str) -> String {
    hash("access", token)
}

pub(crate) fn relogin_hash(secret: &str) -> String {
    hash("relogin", secret)
}

pub(crate) fn device_hash(device_id: &str) -> String {
    hash("device", device_id)
}

pub(crate) fn state_hash(state: &str) -> String {
    hash("state", state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_hashes_are_separated() {
        let a = new_token().expect("random");
        let b = new_token().expect("random");
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_ne!(access_hash(&a), relogin_hash(&a));
        assert_eq!(access_hash(&a), access_hash(&a));
        assert!(!access_hash(&a).contains(&a));
        assert!(new_id("s").expect("id").starts_with('s'));
    }
}
