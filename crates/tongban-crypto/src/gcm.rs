//! SM4-GCM (RFC 8998): authenticated encryption for every ciphertext Tongban stores or sends.

use aes_gcm::{
    AesGcm,
    aead::{Aead, KeyInit, Payload},
};
use cipher::consts::U12;
use zeroize::Zeroizing;

use crate::{CryptoError, Sm4Key, block::Sm4Block, random::random_array};

/// Length of an SM4-GCM nonce (96 bits).
pub const NONCE_LEN: usize = 12;
/// Length of the SM4-GCM authentication tag appended to the ciphertext.
pub const TAG_LEN: usize = 16;

type Sm4GcmCipher = AesGcm<Sm4Block, U12>;

/// A ready-to-use SM4-GCM key (key schedule and GHASH key computed once).
#[derive(Clone)]
pub struct Sm4Gcm {
    cipher: Sm4GcmCipher,
}

// === impl Sm4Gcm ===

impl Sm4Gcm {
    /// Prepares SM4-GCM under `key`.
    pub fn new(key: &Sm4Key) -> Self {
        Self {
            cipher: Sm4GcmCipher::new(key.expose().into()),
        }
    }

    /// Encrypts `plaintext` with `nonce` and `aad`; returns ciphertext followed by the tag.
    ///
    /// A nonce must never repeat under one key: prefer [`Sm4Gcm::seal_random`].
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.cipher
            .encrypt(
                nonce.into(),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::InvalidLength("GCM plaintext"))
    }

    /// Encrypts under a fresh random nonce; returns `(nonce, ciphertext || tag)`.
    pub fn seal_random(
        &self,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<([u8; NONCE_LEN], Vec<u8>), CryptoError> {
        let nonce = random_array::<NONCE_LEN>()?;
        Ok((nonce, self.seal(&nonce, aad, plaintext)?))
    }

    /// Verifies and decrypts `ciphertext || tag`; any mismatch is [`CryptoError::AuthenticationFailed`].
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if ciphertext_and_tag.len() < TAG_LEN {
            return Err(CryptoError::AuthenticationFailed);
        }
        self.cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext_and_tag,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::AuthenticationFailed)
    }
}

impl std::fmt::Debug for Sm4Gcm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4Gcm([REDACTED])")
    }
}
