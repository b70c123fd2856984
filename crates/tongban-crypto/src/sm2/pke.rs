//! SM2 public-key encryption (GB/T 32918.4) with explicit ciphertext layout and point prefix.

use ::sm2::{
    elliptic_curve::rand_core::TryCryptoRng,
    pke::{DecryptingKey, EncryptingKey, Mode},
};
use getrandom::SysRng;
use zeroize::Zeroizing;

use super::{Sm2PrivateKey, Sm2PublicKey, point_from_xy};
use crate::CryptoError;

const XY_LEN: usize = 64;
const C3_LEN: usize = 32;

/// Order of the three ciphertext parts: C1 (the point), C3 (the SM3 check), C2 (the masked message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CipherOrder {
    /// `C1 || C3 || C2`, the layout of GB/T 32918.4-2016 (sm-crypto `cipherMode = 1`).
    #[default]
    C1C3C2,
    /// `C1 || C2 || C3`, the layout of the 2010 draft (sm-crypto `cipherMode = 0`).
    C1C2C3,
}

/// How SM2 ciphertext is laid out on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sm2CipherFormat {
    /// Order of C1, C2, C3.
    pub order: CipherOrder,
    /// Whether encryption writes the `04` byte in front of C1 (uncompressed point marker).
    pub emit_prefix: bool,
    /// Whether decryption accepts C1 both with and without the `04` byte. When `false`,
    /// decryption requires exactly what `emit_prefix` says.
    pub accept_either_prefix: bool,
}

impl Default for Sm2CipherFormat {
    /// C1C3C2, `04` written, either form accepted (JavaScript clients often drop the `04`).
    fn default() -> Self {
        Self {
            order: CipherOrder::C1C3C2,
            emit_prefix: true,
            accept_either_prefix: true,
        }
    }
}

impl CipherOrder {
    fn mode(self) -> Mode {
        match self {
            CipherOrder::C1C3C2 => Mode::C1C3C2,
            CipherOrder::C1C2C3 => Mode::C1C2C3,
        }
    }
}

// === impl Sm2PublicKey ===

impl Sm2PublicKey {
    /// Encrypts a non-empty `message` to this key with a fresh random `k`.
    pub fn encrypt(&self, message: &[u8], format: Sm2CipherFormat) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_with_rng(&mut SysRng, message, format)
    }

    /// Encrypts with `k` drawn from `rng`. Only the published known-answer tests have a reason
    /// to pass anything but the OS generator: a repeated `k` reveals the plaintexts.
    pub fn encrypt_with_rng<R: TryCryptoRng>(
        &self,
        rng: &mut R,
        message: &[u8],
        format: Sm2CipherFormat,
    ) -> Result<Vec<u8>, CryptoError> {
        if message.is_empty() {
            return Err(CryptoError::Sm2EncryptionFailed);
        }
        let key = EncryptingKey::new_with_mode(*self.inner(), format.order.mode());
        let mut out = key
            .encrypt(rng, message)
            .map_err(|_| CryptoError::Sm2EncryptionFailed)?;
        if !format.emit_prefix {
            out.remove(0);
        }
        Ok(out)
    }
}

// === impl Sm2PrivateKey ===

impl Sm2PrivateKey {
    /// Decrypts SM2 ciphertext laid out as `format` says; any malformation, a point off the
    /// curve, or a failed C3 check is an error (never a panic).
    pub fn decrypt(
        &self,
        ciphertext: &[u8],
        format: Sm2CipherFormat,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let normalized = normalize_prefix(ciphertext, format)?;
        let key = DecryptingKey::new_with_mode(self.scalar(), format.order.mode());
        key.decrypt(&normalized)
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Sm2DecryptionFailed)
    }
}

/// Returns the ciphertext with exactly one `04` in front of C1, checking C1 is a curve point.
///
/// A prefix-less ciphertext whose x coordinate happens to start with `04` is still read right:
/// read as prefixed, its shifted bytes would have to form a curve point, which a random pair of
/// coordinates does with probability about 2^-256.
fn normalize_prefix(ct: &[u8], format: Sm2CipherFormat) -> Result<Vec<u8>, CryptoError> {
    let allow_with = format.emit_prefix || format.accept_either_prefix;
    let allow_without = !format.emit_prefix || format.accept_either_prefix;
    let min_body = XY_LEN + C3_LEN + 1;

    if allow_with
        && ct.len() > min_body
        && ct[0] == 0x04
        && point_from_xy(&ct[1..1 + XY_LEN]).is_some()
    {
        return Ok(ct.to_vec());
    }
    if allow_without && ct.len() >= min_body && point_from_xy(&ct[..XY_LEN]).is_some() {
        let mut out = Vec::with_capacity(ct.len() + 1);
        out.push(0x04);
        out.extend_from_slice(ct);
        return Ok(out);
    }
    Err(CryptoError::Sm2DecryptionFailed)
}
