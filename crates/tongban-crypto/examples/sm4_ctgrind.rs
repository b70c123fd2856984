//! Constant-time check for SM4 under valgrind memcheck (run by `bench/crypto/ct-valgrind`).
//!
//! Keys and data are marked undefined with memcheck's client request, so memcheck reports
//! every branch and every memory address computed from them, i.e. exactly the leaks a timing
//! or cache attacker could exploit. `control` runs RustCrypto `sm4` (table S-box) instead, to
//! show that the method catches a secret-indexed table.
//!
//! Outside valgrind the client request is a no-op. This file's inline asm is test tooling
//! and not part of the library, which keeps its unsafe code in `src/sm4/x86.rs`.
#![allow(unsafe_code)]

use aes_gcm::{AesGcm, aead::AeadInOut};
use cipher::{
    Array, Block, BlockCipherDecrypt, BlockCipherEncrypt, InnerIvInit, KeyInit, StreamCipher,
    consts::U12,
};
use tongban_crypto::sm4::{Sm4, Sm4Backend};

const MAKE_MEM_UNDEFINED: usize = 0x4d43_0001;
const MAKE_MEM_DEFINED: usize = 0x4d43_0002;

/// Issues a valgrind client request; returns 0 when not running under valgrind.
#[cfg(target_arch = "x86_64")]
fn client_request(request: usize, addr: usize, len: usize) -> usize {
    let args: [usize; 6] = [request, addr, len, 0, 0, 0];
    let mut result = 0usize;
    // SAFETY: valgrind's documented amd64 "special instruction" sequence: the four rotations
    // of rdi add up to 128 bits (no change) and `xchg rbx, rbx` is a no-op, so natively nothing
    // changes but rdi, declared clobbered. Under valgrind it reads `args` (alive for the call)
    // and writes the result to rdx.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3", "rol rdi, 13", "rol rdi, 61", "rol rdi, 51", "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            inout("rdi") 0usize => _,
            options(nostack, preserves_flags),
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
fn client_request(_request: usize, _addr: usize, _len: usize) -> usize {
    0
}

fn secret(buf: &mut [u8]) {
    client_request(MAKE_MEM_UNDEFINED, buf.as_ptr() as usize, buf.len());
}

fn public(buf: &[u8]) {
    client_request(MAKE_MEM_DEFINED, buf.as_ptr() as usize, buf.len());
}

/// Deterministic filler; secrecy comes from memcheck's marking, not from the values.
fn fill(buf: &mut [u8], seed: u8) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(167).wrapping_add(seed);
    }
}

fn blocks(n: usize, seed: u8) -> Vec<Block<Sm4>> {
    (0..n)
        .map(|i| {
            let mut b = [0u8; 16];
            fill(&mut b, seed.wrapping_add(i as u8));
            secret(&mut b);
            Array::from(b)
        })
        .collect()
}

fn digest(bufs: &[&[u8]]) -> u8 {
    bufs.iter().flat_map(|b| b.iter()).fold(0, |acc, b| acc ^ b)
}

fn exercise<C>(cipher: C, name: &str)
where
    C: BlockCipherEncrypt
        + BlockCipherDecrypt
        + Clone
        + cipher::BlockSizeUser<BlockSize = cipher::consts::U16>,
{
    // Bulk path (37 blocks: two full passes plus a padded tail) and the single-block path.
    let mut bulk = blocks(37, 1);
    cipher.encrypt_blocks(&mut bulk);
    cipher.decrypt_blocks(&mut bulk);
    let mut one = blocks(1, 2);
    cipher.encrypt_block(&mut one[0]);
    cipher.decrypt_block(&mut one[0]);

    // CTR and GCM as the vault and envelope use them.
    let mut iv = [0u8; 16];
    fill(&mut iv, 3);
    let mut data = vec![0u8; 300];
    fill(&mut data, 4);
    secret(&mut data);
    ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(cipher.clone(), &iv.into()))
        .apply_keystream(&mut data);
    let gcm = AesGcm::<C, U12>::from(cipher);
    let nonce = [5u8; 12];
    let tag = gcm.encrypt_inout_detached((&nonce).into(), b"aad", data.as_mut_slice().into());

    // Results become public only now, for printing.
    let flat: Vec<u8> = bulk
        .iter()
        .chain(one.iter())
        .flat_map(|b| b.to_vec())
        .collect();
    public(&flat);
    public(&data);
    let tag = tag.map(|t| t.to_vec()).unwrap_or_default();
    public(&tag);
    println!("{name}: digest {:02x}", digest(&[&flat, &data, &tag]));
}

fn main() {
    let control = std::env::args().any(|a| a == "control");
    let mut key = [0u8; 16];
    fill(&mut key, 9);
    secret(&mut key);
    if control {
        exercise(<sm4::Sm4 as KeyInit>::new(&key.into()), "rustcrypto-sm4");
        return;
    }
    for backend in Sm4Backend::ALL {
        match Sm4::with_backend(&key, backend) {
            Some(c) => exercise(c, &format!("{backend:?}")),
            None => println!("{backend:?}: not available on this CPU (as valgrind reports it)"),
        }
    }
}
