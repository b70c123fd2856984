//! SM3 (GB/T 32905) digests, HMAC-SM3 and constant-time comparison.

use ::sm3::{Digest, Sm3};
use hmac::{KeyInit, Mac};

/// Length of an SM3 digest and of an HMAC-SM3 tag.
pub const SM3_LEN: usize = 32;

type HmacSm3 = hmac::Hmac<Sm3>;

/// SM3 digest of `data`.
pub fn sm3(data: &[u8]) -> [u8; SM3_LEN] {
    Sm3::digest(data).into()
}

/// SM3 digest of the concatenation of `parts`, without copying them together.
pub fn sm3_parts(parts: &[&[u8]]) -> [u8; SM3_LEN] {
    let mut h = Sm3::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-SM3 of the concatenation of `parts` under `key` (any key length is valid for HMAC).
pub fn hmac_sm3(key: &[u8], parts: &[&[u8]]) -> [u8; SM3_LEN] {
    let mut mac = match <HmacSm3 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        // HMAC accepts every key length; this arm exists only because the trait is fallible.
        Err(_) => unreachable_hmac(),
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// An HMAC-SM3 key with its inner and outer pads already hashed: each MAC under it saves the
/// two SM3 compressions [`hmac_sm3`] spends on the key, for keys used on every request.
#[derive(Clone)]
pub struct HmacSm3Key(HmacSm3);

impl HmacSm3Key {
    pub fn new(key: &[u8]) -> Self {
        match <HmacSm3 as KeyInit>::new_from_slice(key) {
            Ok(mac) => Self(mac),
            Err(_) => unreachable_hmac(),
        }
    }

    /// HMAC-SM3 of the concatenation of `parts`.
    pub fn mac(&self, parts: &[&[u8]]) -> [u8; SM3_LEN] {
        let mut mac = self.0.clone();
        for p in parts {
            mac.update(p);
        }
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for HmacSm3Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSm3Key(..)")
    }
}

/// Verifies an HMAC-SM3 tag in constant time.
pub fn hmac_sm3_verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    ct_eq(&hmac_sm3(key, parts), tag)
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    // Eight bytes at a time (`subtle` compares byte by byte, with an optimization barrier on
    // each: a tenth of a cached session lookup). The differences are OR-ed together and looked
    // at once, at the end; `black_box` keeps the compiler from adding an early exit.
    let (aw, ar) = a.as_chunks::<8>();
    let (bw, br) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in aw.iter().zip(bw) {
        diff = std::hint::black_box(diff | (u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y)));
    }
    for (x, y) in ar.iter().zip(br) {
        diff = std::hint::black_box(diff | u64::from(x ^ y));
    }
    diff == 0
}

#[cold]
fn unreachable_hmac() -> ! {
    // `Hmac::new_from_slice` is documented infallible for every length; reaching this is a bug
    // in the dependency, not bad input, so an abort-with-message is the honest outcome.
    panic!("HMAC-SM3 refused a key length; hmac crate contract changed")
}

#[cfg(test)]
mod tests {
    use super::ct_eq;

    #[test]
    fn ct_eq_sees_a_difference_in_any_byte_and_any_length() {
        for len in [0usize, 1, 7, 8, 9, 16, 44, 45] {
            let a: Vec<u8> = (0..len).map(|i| i as u8 ^ 0x5a).collect();
            assert!(ct_eq(&a, &a.clone()), "len {len}");
            for i in 0..len {
                for bit in [0x01u8, 0x80] {
                    let mut b = a.clone();
                    b[i] ^= bit;
                    assert!(!ct_eq(&a, &b), "len {len}, byte {i}, bit {bit:#x}");
                }
            }
            let mut longer = a.clone();
            longer.push(0);
            assert!(!ct_eq(&a, &longer), "len {len} vs {}", len + 1);
        }
    }
}
