//! SM4 throughput of Tongban's cipher and RustCrypto `sm4` under the same modes (for `bench/crypto/run`).
//!
//! Prints `rust <case> <impl> <MB/s>` lines; the script pairs them with `openssl speed`.
//! Usage: `sm4_bench [CASE] [--backends]`: one case (default: all), and with `--backends` every
//! backend this CPU can run as well. A timed loop with warm-up and best-of-N keeps the build
//! free of a benchmark framework.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes_gcm::{AesGcm, aead::AeadInOut};
use cipher::{
    Array, Block, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt,
    BlockSizeUser, InnerIvInit, KeyInit, StreamCipher,
    consts::{U12, U16},
};
use tongban_crypto::sm4::{Sm4, Sm4Backend};

const KEY: [u8; 16] = *b"tongban-sm4-key!";
const IV: [u8; 16] = [7; 16];
const ROUNDS: usize = 5;
const ROUND_TIME: Duration = Duration::from_millis(200);

/// Best throughput in MB/s over `ROUNDS` timed rounds of repeated `op` on `len` bytes.
fn measure(len: usize, mut op: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < ROUND_TIME {
        op();
    }
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < ROUND_TIME {
            for _ in 0..16 {
                op();
            }
            n += 16;
        }
        let mbps = (n as f64 * len as f64) / start.elapsed().as_secs_f64() / 1e6;
        best = best.max(mbps);
    }
    best
}

fn blocks(len: usize) -> Vec<Block<Sm4>> {
    (0..len / 16).map(|i| Array::from([i as u8; 16])).collect()
}

trait Cipher: BlockCipherEncrypt + BlockCipherDecrypt + BlockSizeUser<BlockSize = U16> + Clone {}
impl<C: BlockCipherEncrypt + BlockCipherDecrypt + BlockSizeUser<BlockSize = U16> + Clone> Cipher
    for C
{
}

fn ctr<C: Cipher>(c: C, len: usize) -> f64 {
    let mut s = ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(c, &IV.into()));
    let mut buf = vec![0u8; len];
    measure(len, || s.apply_keystream(black_box(&mut buf)))
}

fn gcm<C: Cipher>(c: C, len: usize) -> f64 {
    let g = AesGcm::<C, U12>::from(c);
    let nonce = [3u8; 12];
    let mut buf = vec![0u8; len];
    measure(len, || {
        let tag = g.encrypt_inout_detached((&nonce).into(), b"", black_box(&mut buf[..]).into());
        black_box(tag.ok());
    })
}

fn cbc_dec<C: Cipher>(c: C, len: usize) -> f64 {
    let mut d = cbc::Decryptor::<C>::inner_iv_init(c, &IV.into());
    let mut buf = blocks(len);
    measure(len, || d.decrypt_blocks(black_box(&mut buf)))
}

fn cbc_enc<C: Cipher>(c: C, len: usize) -> f64 {
    let mut e = cbc::Encryptor::<C>::inner_iv_init(c, &IV.into());
    let mut buf = blocks(len);
    measure(len, || e.encrypt_blocks(black_box(&mut buf)))
}

fn run<C: Cipher>(name: &str, c: C, only: Option<&str>) {
    type Case<C> = (&'static str, fn(C, usize) -> f64, usize);
    let cases: [Case<C>; 8] = [
        ("ctr-16k", ctr, 16384),
        ("ctr-256", ctr, 256),
        ("gcm-16k", gcm, 16384),
        ("gcm-256", gcm, 256),
        ("cbc-dec-16k", cbc_dec, 16384),
        ("cbc-dec-256", cbc_dec, 256),
        ("cbc-enc-16k", cbc_enc, 16384),
        ("cbc-enc-256", cbc_enc, 256),
    ];
    for (case, f, len) in cases {
        if only.is_some_and(|o| o != case) {
            continue;
        }
        println!("rust {case} {name} {:.1}", f(c.clone(), len));
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let backends = args.iter().any(|a| a == "--backends");
    let only = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str);
    let ours = Sm4::new(&KEY.into());
    eprintln!("tongban sm4 backend: {:?}", ours.backend());
    run("tongban", ours, only);
    run("rustcrypto", <sm4::Sm4 as KeyInit>::new(&KEY.into()), only);
    for backend in Sm4Backend::ALL.into_iter().filter(|_| backends) {
        if let Some(c) = Sm4::with_backend(&KEY, backend) {
            run(&format!("tongban-{backend:?}"), c, only);
        }
    }
}
