//! SM4 in ECB, CBC (PKCS#7 padding) and CTR modes, for interoperating with systems that use them.
//!
//! None of these modes authenticates: a modified ciphertext decrypts to modified plaintext.
//! Tongban's own data (vault, envelope, key wrapping) uses SM4-GCM; use these only where a peer
//! dictates the mode, and authenticate the result separately (e.g. HMAC-SM3).

use cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use subtle::{ConditionallySelectable, ConstantTimeEq, ConstantTimeLess};

use crate::{CryptoError, Sm4Key, block::Sm4Block};

/// SM4 block length in bytes.
pub const BLOCK_LEN: usize = 16;

fn cipher(key: &Sm4Key) -> Sm4Block {
    Sm4Block::new(key.expose().into())
}

fn to_block(bytes: &[u8]) -> Block<Sm4Block> {
    let mut b = Block::<Sm4Block>::default();
    b.copy_from_slice(bytes);
    b
}

/// SM4 with its round keys expanded once, for callers that encrypt many single blocks.
#[derive(Clone)]
pub struct Sm4Cipher {
    cipher: Sm4Block,
}

impl Sm4Cipher {
    /// Expands the round keys of `key`.
    pub fn new(key: &Sm4Key) -> Self {
        Self {
            cipher: cipher(key),
        }
    }

    /// Encrypts one block in place.
    pub fn encrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        let mut b = to_block(block);
        self.cipher.encrypt_block(&mut b);
        block.copy_from_slice(&b);
    }

    /// Decrypts one block in place.
    pub fn decrypt_block(&self, block: &mut [u8; BLOCK_LEN]) {
        let mut b = to_block(block);
        self.cipher.decrypt_block(&mut b);
        block.copy_from_slice(&b);
    }
}

impl std::fmt::Debug for Sm4Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sm4Cipher([REDACTED])")
    }
}

/// Encrypts one 16-byte block (the raw SM4 permutation, GB/T 32907).
pub fn sm4_encrypt_block(key: &Sm4Key, block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let mut b = to_block(block);
    cipher(key).encrypt_block(&mut b);
    b.into()
}

/// Decrypts one 16-byte block.
pub fn sm4_decrypt_block(key: &Sm4Key, block: &[u8; BLOCK_LEN]) -> [u8; BLOCK_LEN] {
    let mut b = to_block(block);
    cipher(key).decrypt_block(&mut b);
    b.into()
}

/// ECB with PKCS#7 padding. ECB leaks equal blocks; it is here for legacy peers only.
pub fn ecb_encrypt(key: &Sm4Key, plaintext: &[u8]) -> Vec<u8> {
    let c = cipher(key);
    let mut out = pkcs7_pad(plaintext);
    for chunk in out.chunks_exact_mut(BLOCK_LEN) {
        let mut b = to_block(chunk);
        c.encrypt_block(&mut b);
        chunk.copy_from_slice(&b);
    }
    out
}

/// Inverse of [`ecb_encrypt`].
pub fn ecb_decrypt(key: &Sm4Key, ciphertext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::InvalidLength("ECB ciphertext"));
    }
    let c = cipher(key);
    let mut out = ciphertext.to_vec();
    for chunk in out.chunks_exact_mut(BLOCK_LEN) {
        let mut b = to_block(chunk);
        c.decrypt_block(&mut b);
        chunk.copy_from_slice(&b);
    }
    pkcs7_unpad(out)
}

/// CBC with PKCS#7 padding; `iv` must be unpredictable for every message.
pub fn cbc_encrypt(key: &Sm4Key, iv: &[u8; BLOCK_LEN], plaintext: &[u8]) -> Vec<u8> {
    let c = cipher(key);
    let mut out = pkcs7_pad(plaintext);
    let mut prev = *iv;
    for chunk in out.chunks_exact_mut(BLOCK_LEN) {
        for (x, p) in chunk.iter_mut().zip(prev.iter()) {
            *x ^= p;
        }
        let mut b = to_block(chunk);
        c.encrypt_block(&mut b);
        chunk.copy_from_slice(&b);
        prev.copy_from_slice(chunk);
    }
    out
}

/// Inverse of [`cbc_encrypt`]. A padding error is reported like any other failure; callers
/// exposed to attackers must authenticate the ciphertext first (padding oracles).
pub fn cbc_decrypt(
    key: &Sm4Key,
    iv: &[u8; BLOCK_LEN],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    if ciphertext.is_empty() || !ciphertext.len().is_multiple_of(BLOCK_LEN) {
        return Err(CryptoError::InvalidLength("CBC ciphertext"));
    }
    let c = cipher(key);
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut prev = *iv;
    for chunk in ciphertext.chunks_exact(BLOCK_LEN) {
        let mut b = to_block(chunk);
        c.decrypt_block(&mut b);
        out.extend(b.iter().zip(prev.iter()).map(|(x, p)| x ^ p));
        prev.copy_from_slice(chunk);
    }
    pkcs7_unpad(out)
}

/// CTR mode with the whole 16-byte IV as a big-endian counter (GB/T 17964 style); encryption
/// and decryption are the same operation.
pub fn ctr_apply(key: &Sm4Key, iv: &[u8; BLOCK_LEN], data: &[u8]) -> Vec<u8> {
    let c = cipher(key);
    let mut counter = u128::from_be_bytes(*iv);
    let mut out = Vec::with_capacity(data.len());
    for chunk in data.chunks(BLOCK_LEN) {
        let mut ks = to_block(&counter.to_be_bytes());
        c.encrypt_block(&mut ks);
        out.extend(chunk.iter().zip(ks.iter()).map(|(d, k)| d ^ k));
        counter = counter.wrapping_add(1);
    }
    out
}

fn pkcs7_pad(data: &[u8]) -> Vec<u8> {
    let pad = BLOCK_LEN - data.len() % BLOCK_LEN;
    let mut out = Vec::with_capacity(data.len() + pad);
    out.extend_from_slice(data);
    // `pad` is in 1..=16, so the cast cannot truncate.
    out.resize(data.len() + pad, pad as u8);
    out
}

/// Removes PKCS#7 padding, examining the whole last block in constant time so the position of
/// a bad byte is not revealed by timing.
fn pkcs7_unpad(mut data: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
    let Some(&last) = data.last() else {
        return Err(CryptoError::InvalidPadding);
    };
    let tail = &data[data.len() - BLOCK_LEN..];
    let mut ok = !last.ct_eq(&0) & (!(16u8).ct_lt(&last));
    for (i, b) in tail.iter().rev().enumerate() {
        // `i` < 16; bytes at distance < last must equal last.
        let in_pad = (i as u8).ct_lt(&last);
        let good = b.ct_eq(&last);
        ok &= !in_pad | good;
    }
    let pad = u8::conditional_select(&0, &last, ok);
    if !bool::from(ok) {
        return Err(CryptoError::InvalidPadding);
    }
    data.truncate(data.len() - usize::from(pad));
    Ok(data)
}
