//! dudect-style timing test for SM4: Welch's t-test between two classes of keys or inputs.
//!
//! Every pass over the input slots draws each slot's class afresh, so the class is
//! independent of time, order and address: machine noise (other processes, frequency,
//! cache-set or 4K-aliasing effects of a slot) falls on both classes alike, and only
//! class-dependent time moves the means. Absolute time is never judged. The bound |t| < 10 is
//! generous (dudect calls |t| > 4.5 a leak) and a planted leak must exceed it, which shows the
//! harness sees a leak at this sample size. A long run (about 15 s for 1M samples):
//! `SM4_DUDECT_SAMPLES=2000000 cargo test --release -p tongban-crypto --test sm4_timing -- --nocapture`

use std::hint::black_box;
use std::time::Instant;

use cipher::{Array, Block, BlockCipherEncrypt};
use tongban_crypto::sm4::{Sm4, Sm4Backend};

const T_MAX: f64 = 10.0;
/// Input slots (and key schedules) reused round-robin: enough to average out per-address
/// effects, few enough to stay cache-resident.
const SLOTS: usize = 1024;
const FIXED: [u8; 16] = [0x5a; 16];

/// xorshift64*: reproducible class order and inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes16(&mut self) -> [u8; 16] {
        let (a, b) = (self.next().to_le_bytes(), self.next().to_le_bytes());
        let mut out = [0u8; 16];
        out[..8].copy_from_slice(&a);
        out[8..].copy_from_slice(&b);
        out
    }
}

fn samples() -> usize {
    std::env::var("SM4_DUDECT_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000)
}

/// Welch's t over the samples below the 90th percentile (drops preemption outliers).
fn welch_t(times: &[(u8, u64)]) -> f64 {
    let mut sorted: Vec<u64> = times.iter().map(|t| t.1).collect();
    sorted.sort_unstable();
    let cut = sorted[sorted.len() * 9 / 10];
    let mut n = [0f64; 2];
    let mut sum = [0f64; 2];
    let mut sq = [0f64; 2];
    for &(class, t) in times.iter().filter(|t| t.1 <= cut) {
        let c = usize::from(class);
        n[c] += 1.0;
        sum[c] += t as f64;
        sq[c] += (t as f64) * (t as f64);
    }
    let mean = [sum[0] / n[0], sum[1] / n[1]];
    let var = [
        sq[0] / n[0] - mean[0] * mean[0],
        sq[1] / n[1] - mean[1] * mean[1],
    ];
    (mean[0] - mean[1]) / (var[0] / n[0] + var[1] / n[1]).sqrt()
}

/// A timing experiment: each pass first gives every slot a fresh random class (so neither
/// addresses nor slot order correlate with the class over the run), then times one
/// operation per slot.
trait Experiment {
    /// Puts class `class` (0 fixed, 1 random) into `slot`.
    fn prepare(&mut self, rng: &mut Rng, slot: usize, class: u8);
    /// The operation under test on `slot`.
    fn run(&mut self, slot: usize);
}

/// Runs at least `n` samples of `exp` (after one warm-up pass); returns Welch's t.
fn measure(n: usize, rng: &mut Rng, exp: &mut impl Experiment) -> f64 {
    let mut classes = vec![0u8; SLOTS];
    let mut times = Vec::with_capacity(n + SLOTS);
    let mut warm_up = true;
    while times.len() < n {
        for (slot, class) in classes.iter_mut().enumerate() {
            *class = (rng.next() >> 63) as u8;
            exp.prepare(rng, slot, *class);
        }
        for (slot, &class) in classes.iter().enumerate() {
            let start = Instant::now();
            exp.run(slot);
            let t = start.elapsed().as_nanos() as u64;
            if !warm_up {
                times.push((class, t));
            }
        }
        warm_up = false;
    }
    welch_t(&times)
}

/// Fixed vs random plaintext under one key, `blocks` per call.
struct Data<'a> {
    cipher: &'a Sm4,
    input: Vec<Vec<Block<Sm4>>>,
    out: Vec<Block<Sm4>>,
}

impl Experiment for Data<'_> {
    fn prepare(&mut self, rng: &mut Rng, slot: usize, class: u8) {
        for b in &mut self.input[slot] {
            *b = Array::from(if class == 0 { FIXED } else { rng.bytes16() });
        }
    }

    fn run(&mut self, slot: usize) {
        let input = &self.input[slot];
        if input.len() == 1 {
            self.cipher.encrypt_block_b2b(&input[0], &mut self.out[0]);
        } else {
            self.cipher
                .encrypt_blocks_b2b(input, &mut self.out[..input.len()])
                .expect("equal lengths");
        }
        black_box(&self.out);
    }
}

/// Fixed vs random key on random data: each slot holds a fixed-key and a random-key
/// schedule and moves the one of its class to the front, so the cipher used always sits at
/// the same address.
struct Keys {
    pairs: Vec<[Sm4; 2]>,
    front_is_fixed: Vec<bool>,
    input: Vec<Block<Sm4>>,
    out: Vec<Block<Sm4>>,
}

impl Experiment for Keys {
    fn prepare(&mut self, rng: &mut Rng, slot: usize, class: u8) {
        if self.front_is_fixed[slot] != (class == 0) {
            self.pairs[slot].swap(0, 1);
            self.front_is_fixed[slot] = class == 0;
        }
        for b in &mut self.input {
            *b = Array::from(rng.bytes16());
        }
    }

    fn run(&mut self, slot: usize) {
        self.pairs[slot][0]
            .encrypt_blocks_b2b(&self.input, &mut self.out)
            .expect("equal lengths");
        black_box(&self.out);
    }
}

#[test]
fn sm4_timing_does_not_depend_on_key_or_data() {
    let n = samples();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let fixed_key = [0x11u8; 16];

    for backend in Sm4Backend::ALL.into_iter().filter(|b| b.is_available()) {
        let cipher = Sm4::with_backend(&fixed_key, backend).expect("available");
        let mut report = Vec::new();

        for blocks in [16, 1] {
            let mut exp = Data {
                cipher: &cipher,
                input: vec![vec![Array::default(); blocks]; SLOTS],
                out: vec![Array::default(); blocks],
            };
            report.push((format!("data/{blocks}"), measure(n, &mut rng, &mut exp)));
        }
        let mut exp = Keys {
            pairs: (0..SLOTS)
                .map(|_| {
                    let random = rng.bytes16();
                    [&fixed_key, &random].map(|k| Sm4::with_backend(k, backend).expect("available"))
                })
                .collect(),
            front_is_fixed: vec![true; SLOTS],
            input: vec![Array::default(); 16],
            out: vec![Array::default(); 16],
        };
        report.push(("key/16".to_owned(), measure(n, &mut rng, &mut exp)));

        for (what, t) in report {
            eprintln!("{backend:?} {what}: t = {t:.2} over {n} samples");
            assert!(
                t.abs() < T_MAX,
                "{backend:?} {what}: |t| = {t:.2} suggests key- or data-dependent timing"
            );
        }
    }
}

#[test]
fn harness_detects_a_planted_leak() {
    // Same harness, with an extra encryption whenever the input starts like the fixed class.
    let n = samples().min(50_000);
    let mut rng = Rng(7);
    let cipher = Sm4::with_backend(&[3; 16], Sm4Backend::Portable).expect("portable");
    struct Leaky(Data<'static>);
    impl Experiment for Leaky {
        fn prepare(&mut self, rng: &mut Rng, slot: usize, class: u8) {
            self.0.prepare(rng, slot, class);
        }
        fn run(&mut self, slot: usize) {
            self.0.run(slot);
            if self.0.input[slot][0] == Array::from(FIXED) {
                self.0.run(slot);
            }
        }
    }
    let cipher: &'static Sm4 = Box::leak(Box::new(cipher));
    let mut exp = Leaky(Data {
        cipher,
        input: vec![vec![Array::default(); 1]; SLOTS],
        out: vec![Array::default(); 1],
    });
    let t = measure(n, &mut rng, &mut exp);
    eprintln!("planted leak: t = {t:.2} over {n} samples");
    assert!(
        t.abs() > T_MAX,
        "harness missed a planted leak (t = {t:.2})"
    );
}
