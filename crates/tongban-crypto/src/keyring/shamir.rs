//! k-of-n Shamir secret sharing over GF(2^8), with branch-free, table-free field arithmetic.
//!
//! Multiplication is a fixed 8-step shift-and-add with masks and inversion is `a^254` by a
//! fixed addition chain, so no timing or cache access depends on secret bytes (no log/exp
//! tables indexed by secrets). Share indices (`x`) are public.

use zeroize::Zeroizing;

use crate::random::fill_random;

/// One Shamir share: its public index `x` (1..=255) and one `y` byte per secret byte.
#[derive(Clone)]
pub struct Share {
    /// Evaluation point, never 0.
    pub x: u8,
    /// Polynomial values at `x`, one per secret byte.
    pub y: Zeroizing<Vec<u8>>,
}

/// Why splitting or combining was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShamirError {
    /// `threshold` must be at least 2 and at most `shares` (at most 255).
    #[error("invalid threshold {threshold} of {shares}")]
    InvalidParameters {
        /// Requested k.
        threshold: usize,
        /// Requested n.
        shares: usize,
    },
    /// Fewer shares were given than needed, or none at all.
    #[error("need at least 2 shares")]
    TooFewShares,
    /// Two shares had the same index, or an index was 0.
    #[error("duplicate or zero share index {0}")]
    BadIndex(u8),
    /// Shares of different lengths cannot belong together.
    #[error("shares have different lengths")]
    LengthMismatch,
    /// The OS random generator failed while drawing coefficients.
    #[error("random number generator failed")]
    Random,
}

impl std::fmt::Debug for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Share {{ x: {}, y: [REDACTED; {}] }}",
            self.x,
            self.y.len()
        )
    }
}

/// Multiplies in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (0x11b) without branches on data.
pub(crate) fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    for _ in 0..8 {
        p ^= a & 0u8.wrapping_sub(b & 1);
        let carry = 0u8.wrapping_sub(a >> 7);
        a = (a << 1) ^ (0x1b & carry);
        b >>= 1;
    }
    p
}

/// Inverse in GF(2^8) as `a^254` (maps 0 to 0), same sequence of operations for every `a`.
pub(crate) fn gf_inv(a: u8) -> u8 {
    let a2 = gf_mul(a, a);
    let a3 = gf_mul(a2, a);
    let a6 = gf_mul(a3, a3);
    let a12 = gf_mul(a6, a6);
    let a15 = gf_mul(a12, a3);
    let a30 = gf_mul(a15, a15);
    let a60 = gf_mul(a30, a30);
    let a120 = gf_mul(a60, a60);
    let a126 = gf_mul(a120, a6);
    let a252 = gf_mul(a126, a126);
    gf_mul(a252, a2)
}

/// Splits `secret` into `shares` shares, any `threshold` of which recover it.
pub fn split(secret: &[u8], threshold: usize, shares: usize) -> Result<Vec<Share>, ShamirError> {
    if threshold < 2 || threshold > shares || shares > 255 {
        return Err(ShamirError::InvalidParameters { threshold, shares });
    }
    // Coefficients 1..k-1 of one polynomial per secret byte; coefficient 0 is the byte.
    let mut coeffs = Zeroizing::new(vec![0u8; (threshold - 1) * secret.len()]);
    fill_random(&mut coeffs).map_err(|_| ShamirError::Random)?;

    let mut out = Vec::with_capacity(shares);
    for x in 1..=shares {
        // `shares` <= 255 was checked above.
        let x = x as u8;
        let mut y = Zeroizing::new(Vec::with_capacity(secret.len()));
        for (i, &s) in secret.iter().enumerate() {
            // Horner from the highest coefficient down to the secret byte.
            let mut acc = 0u8;
            for j in (0..threshold - 1).rev() {
                acc = gf_mul(acc, x) ^ coeffs[j * secret.len() + i];
            }
            y.push(gf_mul(acc, x) ^ s);
        }
        out.push(Share { x, y });
    }
    Ok(out)
}

/// Recovers the secret from shares by Lagrange interpolation at 0.
///
/// Giving fewer shares than the split's threshold yields a wrong value, not an error: the
/// caller must check the result (the keyring checks the root key's KCV).
pub fn combine(shares: &[Share]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    if shares.len() < 2 {
        return Err(ShamirError::TooFewShares);
    }
    let len = shares[0].y.len();
    for (i, s) in shares.iter().enumerate() {
        if s.y.len() != len {
            return Err(ShamirError::LengthMismatch);
        }
        if s.x == 0 || shares[..i].iter().any(|t| t.x == s.x) {
            return Err(ShamirError::BadIndex(s.x));
        }
    }
    let mut secret = Zeroizing::new(vec![0u8; len]);
    for (j, sj) in shares.iter().enumerate() {
        // L_j(0) = prod_{m != j} x_m / (x_m - x_j); subtraction is XOR in GF(2^8).
        let mut num = 1u8;
        let mut den = 1u8;
        for (m, sm) in shares.iter().enumerate() {
            if m != j {
                num = gf_mul(num, sm.x);
                den = gf_mul(den, sm.x ^ sj.x);
            }
        }
        let lj = gf_mul(num, gf_inv(den));
        for (out, &y) in secret.iter_mut().zip(sj.y.iter()) {
            *out ^= gf_mul(y, lj);
        }
    }
    Ok(secret)
}

/// Splits `secret` into `n` components whose XOR is the secret (all `n` are needed).
pub fn xor_split(secret: &[u8], n: usize) -> Result<Vec<Zeroizing<Vec<u8>>>, ShamirError> {
    if !(2..=255).contains(&n) {
        return Err(ShamirError::InvalidParameters {
            threshold: n,
            shares: n,
        });
    }
    let mut parts = Vec::with_capacity(n);
    let mut last = Zeroizing::new(secret.to_vec());
    for _ in 1..n {
        let mut part = Zeroizing::new(vec![0u8; secret.len()]);
        fill_random(&mut part).map_err(|_| ShamirError::Random)?;
        for (l, p) in last.iter_mut().zip(part.iter()) {
            *l ^= p;
        }
        parts.push(part);
    }
    parts.push(last);
    Ok(parts)
}

/// XORs all components together.
pub fn xor_combine(parts: &[&[u8]]) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let Some(first) = parts.first() else {
        return Err(ShamirError::TooFewShares);
    };
    let mut out = Zeroizing::new(first.to_vec());
    for p in &parts[1..] {
        if p.len() != out.len() {
            return Err(ShamirError::LengthMismatch);
        }
        for (o, b) in out.iter_mut().zip(p.iter()) {
            *o ^= b;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
