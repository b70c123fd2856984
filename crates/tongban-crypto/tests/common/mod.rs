//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use tongban_crypto::encoding::hex_decode;

/// Decodes hex, ignoring spaces, or fails the test.
pub fn hex(s: &str) -> Vec<u8> {
    let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    hex_decode(&compact, "test vector").expect("test vector is valid hex")
}

/// Decodes hex into a fixed-size array or fails the test.
pub fn hex_array<const N: usize>(s: &str) -> [u8; N] {
    hex(s)
        .try_into()
        .expect("test vector has the expected length")
}
