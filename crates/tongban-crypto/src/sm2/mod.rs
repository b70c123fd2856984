//! SM2 (GB/T 32918) key pairs, signatures with a user ID, and public-key encryption.
//!
//! Private keys are zeroized on drop and never printed. Ciphertext layout (C1C3C2 or C1C2C3)
//! and the `04` point prefix are explicit in [`Sm2CipherFormat`], because peers disagree:
//! GB/T 32918.4-2016 specifies C1C3C2 with the prefix, the older drafts C1C2C3, and the npm
//! `sm-crypto` package writes no prefix.

mod dsa;
mod pke;

use std::fmt;

use ::sm2::{
    AffinePoint, NonZeroScalar, PublicKey, SecretKey,
    elliptic_curve::{
        Generate,
        sec1::{FromSec1Point, Sec1Point, ToSec1Point},
    },
};
use zeroize::Zeroizing;

use crate::CryptoError;

pub use pke::{CipherOrder, Sm2CipherFormat};

/// The default signer ID of GB/T 32918 / GM/T 0009 (`1234567812345678`).
pub const DEFAULT_USER_ID: &str = "1234567812345678";
/// Length of a raw SM2 signature `r || s`.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an uncompressed SEC1 point `04 || x || y`.
pub const PUBLIC_KEY_LEN: usize = 65;

/// An SM2 private key.
#[derive(Clone)]
pub struct Sm2PrivateKey {
    secret: SecretKey,
}

/// An SM2 public key (a point on sm2p256v1).
#[derive(Clone, PartialEq, Eq)]
pub struct Sm2PublicKey {
    point: PublicKey,
}

// === impl Sm2PrivateKey ===

impl Sm2PrivateKey {
    /// Generates a key pair from the OS random generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let secret = SecretKey::try_generate().map_err(|_| CryptoError::Random)?;
        Ok(Self { secret })
    }

    /// Reads a 32-byte big-endian private scalar in `[1, n-1]`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != 32 {
            return Err(CryptoError::InvalidKey);
        }
        let secret = SecretKey::from_slice(bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self { secret })
    }

    /// The 32-byte private scalar, wiped when the returned value drops.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes().into())
    }

    /// The matching public key.
    pub fn public_key(&self) -> Sm2PublicKey {
        Sm2PublicKey {
            point: self.secret.public_key(),
        }
    }

    pub(crate) fn scalar(&self) -> NonZeroScalar {
        self.secret.to_nonzero_scalar()
    }

    pub(crate) fn secret(&self) -> &SecretKey {
        &self.secret
    }
}

impl fmt::Debug for Sm2PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sm2PrivateKey")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

// === impl Sm2PublicKey ===

impl Sm2PublicKey {
    /// Parses a public key: `04 || x || y` (65 bytes), compressed `02/03 || x` (33 bytes), or
    /// bare `x || y` (64 bytes, as some JavaScript libraries print it). The point must lie on
    /// the curve and not be the identity.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let point = match bytes.len() {
            64 => {
                let mut buf = [0u8; PUBLIC_KEY_LEN];
                buf[0] = 0x04;
                buf[1..].copy_from_slice(bytes);
                PublicKey::from_sec1_bytes(&buf)
            }
            33 | 65 => PublicKey::from_sec1_bytes(bytes),
            _ => return Err(CryptoError::InvalidPoint),
        }
        .map_err(|_| CryptoError::InvalidPoint)?;
        Ok(Self { point })
    }

    /// `04 || x || y`.
    pub fn to_bytes(&self) -> [u8; PUBLIC_KEY_LEN] {
        let mut out = [0u8; PUBLIC_KEY_LEN];
        out.copy_from_slice(self.point.to_sec1_point(false).as_bytes());
        out
    }

    /// The signer identity digest `Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)` of
    /// GB/T 32918.2 §5.5, exposed so other clients can check their own computation.
    pub fn za(&self, user_id: &str) -> Result<[u8; 32], CryptoError> {
        dsa::za(self, user_id)
    }

    pub(crate) fn inner(&self) -> &PublicKey {
        &self.point
    }
}

impl fmt::Debug for Sm2PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sm2PublicKey({})",
            crate::encoding::hex_encode(&self.to_bytes())
        )
    }
}

/// Parses `x || y` (64 bytes) into a point on the curve; the identity is never representable.
pub(crate) fn point_from_xy(xy: &[u8]) -> Option<AffinePoint> {
    if xy.len() != 64 {
        return None;
    }
    let mut buf = [0u8; PUBLIC_KEY_LEN];
    buf[0] = 0x04;
    buf[1..].copy_from_slice(xy);
    let encoded = Sec1Point::<::sm2::Sm2>::from_bytes(buf).ok()?;
    Option::from(AffinePoint::from_sec1_point(&encoded))
}
