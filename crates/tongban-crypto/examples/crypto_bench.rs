//! SM3, SM2 and vault throughput of Tongban (for `bench/crypto/run`, which pairs each line with
//! `openssl speed` or the npm `sm-crypto` package).
//!
//! Prints `rust <case> tongban <value> <unit>` lines. A timed loop with warm-up and best-of-N
//! keeps the build free of a benchmark framework.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tongban_crypto::Sm4Key;
use tongban_crypto::sm2::{DEFAULT_USER_ID, Sm2CipherFormat, Sm2PrivateKey};
use tongban_crypto::sm3::sm3;
use tongban_crypto::vault::{FieldRef, StaticKeys, Vault};

const ROUNDS: usize = 5;
const ROUND_TIME: Duration = Duration::from_millis(300);

/// Best operations per second over `ROUNDS` timed rounds of `op`.
fn ops_per_sec(mut op: impl FnMut()) -> f64 {
    let warm = Instant::now();
    while warm.elapsed() < ROUND_TIME / 2 {
        op();
    }
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < ROUND_TIME {
            op();
            n += 1;
        }
        best = best.max(n as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let only = std::env::args().nth(1);
    let want = |c: &str| only.as_deref().is_none_or(|o| o == c);

    for (case, len) in [("sm3-16k", 16384usize), ("sm3-18", 18)] {
        if want(case) {
            let data = vec![0x5au8; len];
            let ops = ops_per_sec(|| {
                black_box(sm3(black_box(&data)));
            });
            println!("rust {case} tongban {:.1} MB/s", ops * len as f64 / 1e6);
        }
    }

    let key = Sm2PrivateKey::generate().expect("random generator");
    let public = key.public_key();
    let msg = [0x42u8; 32];
    let fmt = Sm2CipherFormat::default();
    if want("sm2-sign") {
        let ops = ops_per_sec(|| {
            black_box(key.sign(black_box(&msg), DEFAULT_USER_ID).expect("sign"));
        });
        println!("rust sm2-sign tongban {ops:.0} ops/s");
    }
    let sig = key.sign(&msg, DEFAULT_USER_ID).expect("sign");
    if want("sm2-verify") {
        let ops = ops_per_sec(|| {
            public
                .verify(black_box(&msg), DEFAULT_USER_ID, &sig)
                .expect("verify");
        });
        println!("rust sm2-verify tongban {ops:.0} ops/s");
    }
    // The envelope's use: a 16-byte SM4 key.
    let sm4_key = [0x11u8; 16];
    if want("sm2-encrypt") {
        let ops = ops_per_sec(|| {
            black_box(public.encrypt(black_box(&sm4_key), fmt).expect("encrypt"));
        });
        println!("rust sm2-encrypt tongban {ops:.0} ops/s");
    }
    let ct = public.encrypt(&sm4_key, fmt).expect("encrypt");
    if want("sm2-decrypt") {
        let ops = ops_per_sec(|| {
            black_box(key.decrypt(black_box(&ct), fmt).expect("decrypt"));
        });
        println!("rust sm2-decrypt tongban {ops:.0} ops/s");
    }

    if want("vault") {
        let mut keys = StaticKeys::new();
        keys.insert("pii-data", 1, Sm4Key::from_bytes([1; 16]));
        keys.insert("pii-index", 1, Sm4Key::from_bytes([2; 16]));
        let vault = Vault::new(&keys, "pii-data", "pii-index");
        let field = FieldRef {
            table: "tb_persons",
            column: "id_number_enc",
            row_id: "p0123456789abcdef01234567",
        };
        let ops = ops_per_sec(|| {
            black_box(
                vault
                    .seal_with_index(&field, black_box("11010519491231002X"))
                    .expect("seal"),
            );
        });
        println!("rust vault tongban {ops:.0} ops/s");
        // The two halves, to see where the time goes.
        let ops = ops_per_sec(|| {
            black_box(
                vault
                    .encrypt_str(&field, black_box("11010519491231002X"))
                    .expect("seal"),
            );
        });
        println!("rust vault-encrypt tongban {ops:.0} ops/s");
        let ops = ops_per_sec(|| {
            black_box(
                vault
                    .blind_index(field.table, field.column, black_box("11010519491231002X"))
                    .expect("index"),
            );
        });
        println!("rust vault-index tongban {ops:.0} ops/s");
        let ops = ops_per_sec(|| {
            black_box(tongban_crypto::random::random_array::<12>().expect("random"));
        });
        println!("rust os-random-12 tongban {ops:.0} ops/s");
    }
}
