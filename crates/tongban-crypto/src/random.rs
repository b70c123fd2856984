//! Randomness from the operating system, the only source of keys and nonces in this crate.

use crate::CryptoError;

/// Fills `buf` with random bytes from the OS.
pub fn fill_random(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

/// Returns `N` random bytes from the OS.
pub fn random_array<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut out = [0u8; N];
    fill_random(&mut out)?;
    Ok(out)
}
