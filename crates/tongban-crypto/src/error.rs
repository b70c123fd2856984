//! Errors of the cryptographic primitives; they name what failed, never the data involved.

/// Failure of a primitive operation (SM2, SM3, SM4 modes, SM4-GCM, encodings).
///
/// Messages are fixed strings: no key material, plaintext or ciphertext ever reaches them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key had the wrong length or was not a valid key for the algorithm.
    #[error("invalid key")]
    InvalidKey,
    /// An input (nonce, IV, block-aligned data) had a length the operation cannot accept.
    #[error("invalid length for {0}")]
    InvalidLength(&'static str),
    /// CBC/ECB padding was malformed after decryption.
    #[error("invalid padding")]
    InvalidPadding,
    /// Authenticated decryption failed: wrong key, wrong AAD, or modified ciphertext/tag.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// An SM2 point (public key or ciphertext C1) was malformed or not on the curve.
    #[error("invalid SM2 point")]
    InvalidPoint,
    /// SM2 ciphertext was malformed or failed its C3 check.
    #[error("SM2 decryption failed")]
    Sm2DecryptionFailed,
    /// SM2 encryption failed (e.g. empty message).
    #[error("SM2 encryption failed")]
    Sm2EncryptionFailed,
    /// An SM2 signature was malformed or did not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// The SM2 user ID is too long (its bit length must fit in 16 bits).
    #[error("invalid SM2 user ID")]
    InvalidUserId,
    /// Text was not valid Base64, hex or UTF-8 where one was required.
    #[error("invalid encoding of {0}")]
    InvalidEncoding(&'static str),
    /// The operating system's random number generator failed.
    #[error("random number generator failed")]
    Random,
}
