//! x86_64 SM4 kernels: the S-box through AES-NI or GFNI, sixteen blocks per AVX2 pass.
//!
//! This is the crate's only `unsafe` code. A kernel is reachable only through a [`Simd`]
//! token, and a token exists only after the CPU reported every feature its kernels are compiled
//! for; that is what makes each `target_feature` call sound. Nothing here may branch on, or
//! index memory with, key or data bytes: the nibble "tables" are `pshufb` register shuffles and
//! AESENCLAST / GF2P8AFFINEINVQB take the same time for every input.
//!
//! SM4's S-box is `post(AES_SubBytes(pre(x)))` with byte-wise affine `pre`/`post`; applied as
//! two 16-entry nibble shuffles each. AESENCLAST also runs ShiftRows, which we cancel by
//! permuting with InvShiftRows first. With GFNI the two affine maps and the inversion are two
//! instructions. Constants come from `bench/crypto/sm4_affine.py`.

use core::arch::x86_64::*;

use super::soft;

/// Which instruction computes the S-box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// AVX2 with AESENCLAST on each 128-bit half.
    AesNi,
    /// AVX2 with VAES: AESENCLAST on whole 256-bit registers.
    Vaes,
    /// AVX2 with GFNI affine/inverse-affine instructions.
    Gfni,
}

/// Proof that the CPU supports a [`Level`] (and whether it has AVX-512VL, whose three-input
/// XOR shortens the serial single-block round); only [`Simd::new`] makes one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Simd {
    level: Level,
    avx512vl: bool,
}

impl Simd {
    /// The fastest level this CPU supports, if any.
    pub(crate) fn best() -> Option<Self> {
        [Level::Gfni, Level::Vaes, Level::AesNi]
            .into_iter()
            .find_map(Self::new)
    }

    /// A token for `level` when this CPU supports it.
    pub(crate) fn new(level: Level) -> Option<Self> {
        let base = std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("ssse3")
            && std::is_x86_feature_detected!("sse4.1");
        let ok = base
            && match level {
                Level::AesNi => std::is_x86_feature_detected!("aes"),
                Level::Vaes => {
                    std::is_x86_feature_detected!("aes") && std::is_x86_feature_detected!("vaes")
                }
                Level::Gfni => std::is_x86_feature_detected!("gfni"),
            };
        let avx512vl =
            std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl");
        ok.then_some(Self { level, avx512vl })
    }

    pub(crate) fn level(self) -> Level {
        self.level
    }

    /// The same token without AVX-512 (always sound: it only gives up features), so tests
    /// can cover the kernels used on CPUs that lack it.
    #[cfg(test)]
    pub(crate) fn without_avx512(self) -> Self {
        Self {
            avx512vl: false,
            ..self
        }
    }
}

/// Blocks per bulk pass: two groups of eight, so two independent dependency chains.
pub(crate) const PAR: usize = 16;

// Byte-wise affine maps as nibble lookups (index = low or high nibble).
const PRE_LO: [u8; 16] = [
    0x3e, 0xb2, 0x0e, 0x82, 0xbb, 0x37, 0x8b, 0x07, 0xa1, 0x2d, 0x91, 0x1d, 0x24, 0xa8, 0x14, 0x98,
];
const PRE_HI: [u8; 16] = [
    0x00, 0xdc, 0x2e, 0xf2, 0xc5, 0x19, 0xeb, 0x37, 0x08, 0xd4, 0x26, 0xfa, 0xcd, 0x11, 0xe3, 0x3f,
];
const POST_LO: [u8; 16] = [
    0x6c, 0xd4, 0xa6, 0x1e, 0x52, 0xea, 0x98, 0x20, 0x0b, 0xb3, 0xc1, 0x79, 0x35, 0x8d, 0xff, 0x47,
];
const POST_HI: [u8; 16] = [
    0x00, 0xe0, 0x50, 0xb0, 0x9d, 0x7d, 0xcd, 0x2d, 0xc0, 0x20, 0x90, 0x70, 0x5d, 0xbd, 0x0d, 0xed,
];
// GFNI bit-matrices (row for output bit 7-j in byte j) and their constants.
const GFNI_PRE: i64 = 0x4c28_7db9_1a22_505d;
const GFNI_PRE_C: i32 = 0x3e;
const GFNI_POST: i64 = 0xf3ab_34a9_74a6_b589_u64 as i64;
const GFNI_POST_C: i32 = 0xd3;

// pshufb masks within each 128-bit lane.
const INV_SHIFT_ROWS: [u8; 16] = [0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3];
const BSWAP32: [u8; 16] = [3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12];
const ROL8: [u8; 16] = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14];
const ROL16: [u8; 16] = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROL24: [u8; 16] = [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12];

#[inline]
#[target_feature(enable = "sse2")]
fn xmm(t: [u8; 16]) -> __m128i {
    let b = t.map(|v| v as i8);
    _mm_setr_epi8(
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
        b[14], b[15],
    )
}

#[inline]
#[target_feature(enable = "avx2")]
fn ymm(t: [u8; 16]) -> __m256i {
    _mm256_broadcastsi128_si256(xmm(t))
}

/// Constant vectors, materialised once per bulk pass.
#[derive(Clone, Copy)]
struct Consts {
    nib: __m256i,
    pre_lo: __m256i,
    pre_hi: __m256i,
    post_lo: __m256i,
    post_hi: __m256i,
    isr: __m256i,
    rol8: __m256i,
    rol16: __m256i,
    rol24: __m256i,
    bswap: __m256i,
}

impl Consts {
    #[inline]
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        Self {
            nib: _mm256_set1_epi8(0x0f),
            pre_lo: ymm(PRE_LO),
            pre_hi: ymm(PRE_HI),
            post_lo: ymm(POST_LO),
            post_hi: ymm(POST_HI),
            isr: ymm(INV_SHIFT_ROWS),
            rol8: ymm(ROL8),
            rol16: ymm(ROL16),
            rol24: ymm(ROL24),
            bswap: ymm(BSWAP32),
        }
    }
}

// === 256-bit building blocks ===

#[inline]
#[target_feature(enable = "avx2")]
fn nibble_affine(x: __m256i, lo: __m256i, hi: __m256i, nib: __m256i) -> __m256i {
    let l = _mm256_and_si256(x, nib);
    let h = _mm256_and_si256(_mm256_srli_epi32::<4>(x), nib);
    _mm256_xor_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h))
}

#[inline]
#[target_feature(enable = "avx2,aes")]
fn sbox_aesni(x: __m256i, c: &Consts) -> __m256i {
    let x = nibble_affine(x, c.pre_lo, c.pre_hi, c.nib);
    let x = _mm256_shuffle_epi8(x, c.isr);
    let zero = _mm_setzero_si128();
    let lo = _mm_aesenclast_si128(_mm256_castsi256_si128(x), zero);
    let hi = _mm_aesenclast_si128(_mm256_extracti128_si256::<1>(x), zero);
    let x = _mm256_inserti128_si256::<1>(_mm256_castsi128_si256(lo), hi);
    nibble_affine(x, c.post_lo, c.post_hi, c.nib)
}

#[inline]
#[target_feature(enable = "avx2,aes,vaes")]
fn sbox_vaes(x: __m256i, c: &Consts) -> __m256i {
    let x = nibble_affine(x, c.pre_lo, c.pre_hi, c.nib);
    let x = _mm256_shuffle_epi8(x, c.isr);
    let x = _mm256_aesenclast_epi128(x, _mm256_setzero_si256());
    nibble_affine(x, c.post_lo, c.post_hi, c.nib)
}

#[inline]
#[target_feature(enable = "avx2,gfni")]
fn sbox_gfni(x: __m256i, _c: &Consts) -> __m256i {
    let x = _mm256_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(x, _mm256_set1_epi64x(GFNI_PRE));
    _mm256_gf2p8affineinv_epi64_epi8::<GFNI_POST_C>(x, _mm256_set1_epi64x(GFNI_POST))
}

/// SM4's L: y ^ (y <<< 2) ^ (y <<< 10) ^ (y <<< 18) ^ (y <<< 24), with
/// (y <<< 2) ^ (y <<< 10) ^ (y <<< 18) = (y ^ (y <<< 8) ^ (y <<< 16)) <<< 2.
#[inline]
#[target_feature(enable = "avx2")]
fn linear(y: __m256i, c: &Consts) -> __m256i {
    let t = _mm256_xor_si256(
        _mm256_xor_si256(y, _mm256_shuffle_epi8(y, c.rol8)),
        _mm256_shuffle_epi8(y, c.rol16),
    );
    let t = _mm256_or_si256(_mm256_slli_epi32::<2>(t), _mm256_srli_epi32::<30>(t));
    _mm256_xor_si256(_mm256_xor_si256(y, _mm256_shuffle_epi8(y, c.rol24)), t)
}

#[inline]
#[target_feature(enable = "avx2")]
fn xor4(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    _mm256_xor_si256(_mm256_xor_si256(_mm256_xor_si256(a, b), c), d)
}

/// 4×4 transpose of 32-bit words in each 128-bit lane: blocks ↔ word columns.
/// It is an involution.
#[inline]
#[target_feature(enable = "avx2")]
fn transpose(x: [__m256i; 4]) -> [__m256i; 4] {
    let t0 = _mm256_unpacklo_epi32(x[0], x[1]);
    let t1 = _mm256_unpackhi_epi32(x[0], x[1]);
    let t2 = _mm256_unpacklo_epi32(x[2], x[3]);
    let t3 = _mm256_unpackhi_epi32(x[2], x[3]);
    [
        _mm256_unpacklo_epi64(t0, t2),
        _mm256_unpackhi_epi64(t0, t2),
        _mm256_unpacklo_epi64(t1, t3),
        _mm256_unpackhi_epi64(t1, t3),
    ]
}

/// Generates one 16-block kernel per S-box flavour; the helpers inline because their
/// features are a subset of the kernel's.
macro_rules! kernel16 {
    ($name:ident, $feat:literal, $sbox:ident) => {
        #[target_feature(enable = $feat)]
        fn $name(rk: &[u32; 32], blocks: &mut [[u8; 16]; PAR]) {
            let c = Consts::new();
            let p = blocks.as_mut_ptr().cast::<__m256i>();
            let mut v = [_mm256_setzero_si256(); 8];
            for (i, vi) in v.iter_mut().enumerate() {
                // SAFETY: `blocks` is 256 contiguous bytes; load `i < 8` reads bytes
                // 32*i..32*i+32 of it, unaligned loads allowed.
                *vi = _mm256_shuffle_epi8(unsafe { _mm256_loadu_si256(p.add(i)) }, c.bswap);
            }
            let mut a = transpose([v[0], v[1], v[2], v[3]]);
            let mut b = transpose([v[4], v[5], v[6], v[7]]);
            let mut x = [(a[0], b[0]), (a[1], b[1]), (a[2], b[2]), (a[3], b[3])];
            let step = |x0: (__m256i, __m256i),
                        x1: (__m256i, __m256i),
                        x2: (__m256i, __m256i),
                        x3: (__m256i, __m256i),
                        k: u32| {
                let k = _mm256_set1_epi32(k as i32);
                let ta = $sbox(xor4(x1.0, x2.0, k, x3.0), &c);
                let tb = $sbox(xor4(x1.1, x2.1, k, x3.1), &c);
                (
                    _mm256_xor_si256(x0.0, linear(ta, &c)),
                    _mm256_xor_si256(x0.1, linear(tb, &c)),
                )
            };
            sm4_rounds!(x, rk, step);
            a = [x[0].0, x[1].0, x[2].0, x[3].0];
            b = [x[0].1, x[1].1, x[2].1, x[3].1];
            let a = transpose([a[3], a[2], a[1], a[0]]);
            let b = transpose([b[3], b[2], b[1], b[0]]);
            for (i, vi) in a.iter().chain(b.iter()).enumerate() {
                // SAFETY: as for the loads: store `i < 8` writes bytes 32*i..32*i+32 of
                // `blocks`, which we borrow mutably.
                unsafe { _mm256_storeu_si256(p.add(i), _mm256_shuffle_epi8(*vi, c.bswap)) };
            }
        }
    };
}

kernel16!(crypt16_aesni, "avx2,aes", sbox_aesni);
kernel16!(crypt16_vaes, "avx2,aes,vaes", sbox_vaes);
kernel16!(crypt16_gfni, "avx2,gfni", sbox_gfni);

// === single block ===
//
// CBC encryption is serial, so here latency is everything. The state is kept as X = P·x (P
// the S-box input map) and L, apart from its byte rotations, is folded into the output maps
// (see `bench/crypto/sm4_affine.py`): a round is one XOR, the inversion, three byte-wise
// output maps in parallel, byte rotations and XORs. The word is broadcast to all four
// columns so that AESENCLAST's ShiftRows leaves it in place.

const P_LO: [u8; 16] = [
    0x00, 0x8c, 0x30, 0xbc, 0x85, 0x09, 0xb5, 0x39, 0x9f, 0x13, 0xaf, 0x23, 0x1a, 0x96, 0x2a, 0xa6,
];
const P_HI: [u8; 16] = PRE_HI;
const P_INV_LO: [u8; 16] = [
    0x00, 0x85, 0xd9, 0x5c, 0x2e, 0xab, 0xf7, 0x72, 0x80, 0x05, 0x59, 0xdc, 0xae, 0x2b, 0x77, 0xf2,
];
const P_INV_HI: [u8; 16] = [
    0x00, 0x55, 0x57, 0x02, 0x44, 0x11, 0x13, 0x46, 0xaf, 0xfa, 0xf8, 0xad, 0xeb, 0xbe, 0xbc, 0xe9,
];
const H0_LO: [u8; 16] = [
    0x1a, 0x9c, 0xc9, 0x4f, 0x62, 0xe4, 0xb1, 0x37, 0x06, 0x80, 0xd5, 0x53, 0x7e, 0xf8, 0xad, 0x2b,
];
const H0_HI: [u8; 16] = [
    0x00, 0xeb, 0xdc, 0x37, 0xf0, 0x1b, 0x2c, 0xc7, 0xcd, 0x26, 0x11, 0xfa, 0x3d, 0xd6, 0xe1, 0x0a,
];
const H1_LO: [u8; 16] = [
    0x15, 0xc6, 0x18, 0xcb, 0xb5, 0x66, 0xb8, 0x6b, 0x57, 0x84, 0x5a, 0x89, 0xf7, 0x24, 0xfa, 0x29,
];
const H1_HI: [u8; 16] = [
    0x00, 0xb4, 0x49, 0xfd, 0x82, 0x36, 0xcb, 0x7f, 0xbc, 0x08, 0xf5, 0x41, 0x3e, 0x8a, 0x77, 0xc3,
];
const H3_LO: [u8; 16] = [
    0x6c, 0x39, 0xb2, 0xe7, 0xb4, 0xe1, 0x6a, 0x3f, 0x32, 0x67, 0xec, 0xb9, 0xea, 0xbf, 0x34, 0x61,
];
const H3_HI: [u8; 16] = [
    0x00, 0x5f, 0x95, 0xca, 0x72, 0x2d, 0xe7, 0xb8, 0x71, 0x2e, 0xe4, 0xbb, 0x03, 0x5c, 0x96, 0xc9,
];
const GFNI_P_INV: i64 = 0xb3a4_f586_3284_728b_u64 as i64;
const GFNI_G0: i64 = 0x040d_b891_e9a4_81b7;
const GFNI_G0_C: i32 = 0x63;
const GFNI_G1: i64 = 0x2c02_0425_1620_40ad;
const GFNI_G3: i64 = 0x280f_bcb4_ff84_c11a;

#[inline]
#[target_feature(enable = "ssse3")]
fn nibble_affine128(x: __m128i, lo: __m128i, hi: __m128i) -> __m128i {
    let nib = _mm_set1_epi8(0x0f);
    let l = _mm_and_si128(x, nib);
    let h = _mm_and_si128(_mm_srli_epi32::<4>(x), nib);
    _mm_xor_si128(_mm_shuffle_epi8(lo, l), _mm_shuffle_epi8(hi, h))
}

/// Hides a value from LLVM's optimiser. Without it, reassociation turns the round's XOR tree
/// into a serial chain and the rotate-by-16 `pshufb` into two slower shuffles, which costs
/// CBC encryption (latency-bound) about a third of its speed.
#[inline(always)]
fn opaque(mut x: __m128i) -> __m128i {
    // SAFETY: an empty asm block that only claims to read and write one register; it has no
    // memory, stack or flag effects.
    unsafe {
        core::arch::asm!("/* {0} */", inout(xmm_reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

/// Byte-rotation masks for [`fold_round`], opaque so they stay single `pshufb`s.
#[derive(Clone, Copy)]
struct Rotations([__m128i; 3]);

impl Rotations {
    #[inline]
    #[target_feature(enable = "ssse3")]
    fn new() -> Self {
        Self([opaque(xmm(ROL8)), opaque(xmm(ROL16)), opaque(xmm(ROL24))])
    }
}

/// Combines a round's three output maps into the state delta `d = a0 ^ (a1 <<< 8) ^
/// (a1 <<< 16) ^ (a3 <<< 24)` and the next round's input `pre ^ d`, computing the latter
/// straight from the maps rather than from `d`, one XOR shorter.
#[inline]
#[target_feature(enable = "ssse3")]
fn fold_round(
    pre: __m128i,
    a0: __m128i,
    a1: __m128i,
    a3: __m128i,
    rot: Rotations,
) -> (__m128i, __m128i) {
    let [rol8, rol16, rol24] = rot.0;
    let r = opaque(_mm_xor_si128(
        _mm_shuffle_epi8(a1, rol8),
        _mm_shuffle_epi8(a1, rol16),
    ));
    let r24 = _mm_shuffle_epi8(a3, rol24);
    let d = _mm_xor_si128(_mm_xor_si128(a0, r24), r);
    let early = opaque(_mm_xor_si128(pre, a0));
    let next = _mm_xor_si128(_mm_xor_si128(early, r24), r);
    (d, next)
}

/// Runs the 32 rounds on a single block whose state words are `$x` (in the P domain).
/// `$kmap(rk)` moves a round key into the P domain (with the S-box input constant) and
/// `$maps(u)` returns a round's three output maps. The next round's input is carried
/// alongside the state so the critical path per round is the inversion, the maps and one XOR
/// tree. Round keys are mapped as they are needed, so no key-derived array is left on the
/// stack.
macro_rules! carry_rounds {
    ($x:ident, $rk:ident, $kmap:expr, $maps:expr) => {{
        let xor = |a, b| _mm_xor_si128(a, b);
        let rot = Rotations::new();
        let mut u = xor(xor($x[1], $x[2]), xor($x[3], $kmap($rk[0])));
        // Round `i` updates word `i`; the next round reads words `i+2`, `i+3` and the new `i`.
        let mut round = |i: usize, a: usize, b: usize, k: __m128i| {
            let pre = opaque(xor(xor($x[a], $x[b]), xor($x[i], k)));
            let (a0, a1, a3) = $maps(u);
            let (d, next) = fold_round(pre, a0, a1, a3, rot);
            $x[i] = xor($x[i], d);
            u = next;
        };
        for c in 0..8 {
            // After round 31 `u` is unused; wrapping to round key 0 just keeps the shape.
            round(0, 2, 3, $kmap($rk[4 * c + 1]));
            round(1, 3, 0, $kmap($rk[4 * c + 2]));
            round(2, 0, 1, $kmap($rk[4 * c + 3]));
            round(3, 1, 2, $kmap($rk[(4 * c + 4) % 32]));
        }
    }};
}

#[target_feature(enable = "avx2,aes")]
fn crypt1_aesni(rk: &[u32; 32], block: &mut [u8; 16]) {
    let (p_lo, p_hi) = (xmm(P_LO), xmm(P_HI));
    let (pre_lo, pre_hi) = (xmm(PRE_LO), xmm(PRE_HI));
    let (h0_lo, h0_hi, h1_lo, h1_hi) = (xmm(H0_LO), xmm(H0_HI), xmm(H1_LO), xmm(H1_HI));
    let (h3_lo, h3_hi) = (xmm(H3_LO), xmm(H3_HI));
    let nib = _mm_set1_epi8(0x0f);
    let zero = _mm_setzero_si128();
    let kmap = |k: u32| nibble_affine128(_mm_set1_epi32(k as i32), pre_lo, pre_hi);
    let w = soft::load_be(block);
    let mut x = w.map(|v| nibble_affine128(_mm_set1_epi32(v as i32), p_lo, p_hi));
    let maps = |u| {
        let z = _mm_aesenclast_si128(u, zero);
        let l = _mm_and_si128(z, nib);
        let h = _mm_and_si128(_mm_srli_epi32::<4>(z), nib);
        (
            opaque(_mm_xor_si128(
                _mm_shuffle_epi8(h0_lo, l),
                _mm_shuffle_epi8(h0_hi, h),
            )),
            opaque(_mm_xor_si128(
                _mm_shuffle_epi8(h1_lo, l),
                _mm_shuffle_epi8(h1_hi, h),
            )),
            opaque(_mm_xor_si128(
                _mm_shuffle_epi8(h3_lo, l),
                _mm_shuffle_epi8(h3_hi, h),
            )),
        )
    };
    carry_rounds!(x, rk, kmap, maps);
    let (pi_lo, pi_hi) = (xmm(P_INV_LO), xmm(P_INV_HI));
    let out = x.map(|v| _mm_cvtsi128_si32(nibble_affine128(v, pi_lo, pi_hi)) as u32);
    soft::store_be_reversed(&out, block);
}

/// Generates the GFNI single-block kernel for a feature set: with AVX-512VL the compiler
/// merges the round's XORs into three-input `vpternlogd`, one cycle less per round.
macro_rules! crypt1_gfni {
    ($name:ident, $feat:literal) => {
        #[target_feature(enable = $feat)]
        fn $name(rk: &[u32; 32], block: &mut [u8; 16]) {
            let p = _mm_set1_epi64x(GFNI_PRE);
            let (g0, g1, g3) = (
                _mm_set1_epi64x(GFNI_G0),
                _mm_set1_epi64x(GFNI_G1),
                _mm_set1_epi64x(GFNI_G3),
            );
            let kmap =
                |k: u32| _mm_gf2p8affine_epi64_epi8::<GFNI_PRE_C>(_mm_cvtsi32_si128(k as i32), p);
            let w = soft::load_be(block);
            let mut x = w.map(|v| _mm_gf2p8affine_epi64_epi8::<0>(_mm_cvtsi32_si128(v as i32), p));
            let maps = |u| {
                (
                    _mm_gf2p8affineinv_epi64_epi8::<GFNI_G0_C>(u, g0),
                    _mm_gf2p8affineinv_epi64_epi8::<0>(u, g1),
                    _mm_gf2p8affineinv_epi64_epi8::<0>(u, g3),
                )
            };
            carry_rounds!(x, rk, kmap, maps);
            let pinv = _mm_set1_epi64x(GFNI_P_INV);
            let out = x.map(|v| _mm_cvtsi128_si32(_mm_gf2p8affine_epi64_epi8::<0>(v, pinv)) as u32);
            soft::store_be_reversed(&out, block);
        }
    };
}

crypt1_gfni!(crypt1_gfni, "avx2,gfni");
crypt1_gfni!(crypt1_gfni_vl, "avx2,gfni,avx512f,avx512vl");

// === safe entry points ===

/// One block through the 32 rounds.
pub(crate) fn crypt1(simd: Simd, rk: &[u32; 32], block: &mut [u8; 16]) {
    match simd.level {
        // SAFETY: `simd` proves AVX2 and AES-NI (see `Simd::new`).
        Level::AesNi | Level::Vaes => unsafe { crypt1_aesni(rk, block) },
        // SAFETY: `simd` proves AVX2, GFNI, AVX-512F and AVX-512VL.
        Level::Gfni if simd.avx512vl => unsafe { crypt1_gfni_vl(rk, block) },
        // SAFETY: `simd` proves AVX2 and GFNI.
        Level::Gfni => unsafe { crypt1_gfni(rk, block) },
    }
}

fn crypt16(simd: Simd, rk: &[u32; 32], blocks: &mut [[u8; 16]; PAR]) {
    match simd.level {
        // SAFETY: `simd` proves AVX2 and AES-NI.
        Level::AesNi => unsafe { crypt16_aesni(rk, blocks) },
        // SAFETY: `simd` proves AVX2, AES-NI and VAES.
        Level::Vaes => unsafe { crypt16_vaes(rk, blocks) },
        // SAFETY: `simd` proves AVX2 and GFNI.
        Level::Gfni => unsafe { crypt16_gfni(rk, blocks) },
    }
}

/// Any number of blocks; a tail of two or more is padded into one bulk pass, which costs
/// about as much as a single serial block.
pub(crate) fn crypt_blocks(simd: Simd, rk: &[u32; 32], blocks: &mut [[u8; 16]]) {
    let mut chunks = blocks.chunks_exact_mut(PAR);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [[u8; 16]; PAR]>::try_from(chunk) {
            crypt16(simd, rk, chunk);
        }
    }
    let tail = chunks.into_remainder();
    match tail.len() {
        0 => {}
        1 => tail.iter_mut().for_each(|b| crypt1(simd, rk, b)),
        n => {
            let mut buf = [[0u8; 16]; PAR];
            buf[..n].copy_from_slice(tail);
            crypt16(simd, rk, &mut buf);
            tail.copy_from_slice(&buf[..n]);
        }
    }
}
