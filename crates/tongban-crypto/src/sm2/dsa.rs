//! SM2 signatures (GB/T 32918.2) over `Z || M`, with a configurable signer ID.

use ::sm2::dsa::{
    Signature, SigningKey, VerifyingKey,
    signature::{RandomizedSigner, Verifier},
};
use getrandom::SysRng;

use super::{SIGNATURE_LEN, Sm2PrivateKey, Sm2PublicKey};
use crate::{CryptoError, sm3::sm3_parts};

/// Curve coefficient `a` of sm2p256v1.
const A: [u8; 32] = hex32("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC");
/// Curve coefficient `b` of sm2p256v1.
const B: [u8; 32] = hex32("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93");
/// Base point x.
const GX: [u8; 32] = hex32("32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7");
/// Base point y.
const GY: [u8; 32] = hex32("BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0");

const fn hex32(s: &str) -> [u8; 32] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => c - b'a' + 10,
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = (nib(b[2 * i]) << 4) | nib(b[2 * i + 1]);
        i += 1;
    }
    out
}

pub(super) fn za(key: &Sm2PublicKey, user_id: &str) -> Result<[u8; 32], CryptoError> {
    let id = crate::text::utf8_bytes(user_id);
    let entl = id
        .len()
        .checked_mul(8)
        .and_then(|bits| u16::try_from(bits).ok())
        .ok_or(CryptoError::InvalidUserId)?;
    let point = key.to_bytes();
    Ok(sm3_parts(&[
        &entl.to_be_bytes(),
        id,
        &A,
        &B,
        &GX,
        &GY,
        &point[1..33],
        &point[33..65],
    ]))
}

// === impl Sm2PrivateKey ===

impl Sm2PrivateKey {
    /// Signs `message` as signer `user_id` (use [`super::DEFAULT_USER_ID`] unless the peer says
    /// otherwise); returns raw `r || s`, 64 bytes.
    ///
    /// `k` is derived as in RFC 6979 and hedged with fresh randomness, so a weak OS generator
    /// cannot leak the key through repeated `k`.
    pub fn sign(&self, message: &[u8], user_id: &str) -> Result<[u8; SIGNATURE_LEN], CryptoError> {
        let key =
            SigningKey::new(user_id, self.secret()).map_err(|_| CryptoError::InvalidUserId)?;
        let sig: Signature = key
            .try_sign_with_rng(&mut SysRng, message)
            .map_err(|_| CryptoError::Random)?;
        Ok(sig.to_bytes().into())
    }
}

// === impl Sm2PublicKey ===

impl Sm2PublicKey {
    /// Verifies a raw `r || s` signature on `message` by signer `user_id`.
    pub fn verify(
        &self,
        message: &[u8],
        user_id: &str,
        signature: &[u8],
    ) -> Result<(), CryptoError> {
        let bytes: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| CryptoError::InvalidSignature)?;
        let sig =
            Signature::from_bytes(&bytes.into()).map_err(|_| CryptoError::InvalidSignature)?;
        let key =
            VerifyingKey::new(user_id, *self.inner()).map_err(|_| CryptoError::InvalidUserId)?;
        key.verify(message, &sig)
            .map_err(|_| CryptoError::InvalidSignature)
    }
}
