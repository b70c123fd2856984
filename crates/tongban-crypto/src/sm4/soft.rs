//! Portable constant-time SM4 core: a bitsliced S-box circuit, no table indexed by secret data.
//!
//! The SM4 S-box is affine-equivalent to inversion in GF(2^8). We evaluate it as an input affine
//! map, the Boyar–Peralta inversion circuit (the 113-gate AES S-box circuit without its four
//! NOTs, so it yields `A_aes · x⁻¹`), and an output affine map. Every step is AND/XOR/NOT on
//! whole words, so time and memory accesses never depend on keys or data. The affine rows were
//! derived (and checked exhaustively) by `bench/crypto/sm4_affine.py`.

use core::ops::{BitAnd, BitXor, Not};

use zeroize::Zeroize;

/// Blocks the bulk kernel works on at once: 16 blocks × 4 S-box bytes = one `u64` per bit plane.
pub(crate) const PAR: usize = 16;

pub(crate) const FK: [u32; 4] = [0xa3b1_bac6, 0x56aa_3350, 0x677d_9197, 0xb270_22dc];

pub(crate) const CK: [u32; 32] = [
    0x0007_0e15,
    0x1c23_2a31,
    0x383f_464d,
    0x545b_6269,
    0x7077_7e85,
    0x8c93_9aa1,
    0xa8af_b6bd,
    0xc4cb_d2d9,
    0xe0e7_eef5,
    0xfc03_0a11,
    0x181f_262d,
    0x343b_4249,
    0x5057_5e65,
    0x6c73_7a81,
    0x888f_969d,
    0xa4ab_b2b9,
    0xc0c7_ced5,
    0xdce3_eaf1,
    0xf8ff_060d,
    0x141b_2229,
    0x3037_3e45,
    0x4c53_5a61,
    0x686f_767d,
    0x848b_9299,
    0xa0a7_aeb5,
    0xbcc3_cad1,
    0xd8df_e6ed,
    0xf4fb_0209,
    0x1017_1e25,
    0x2c33_3a41,
    0x484f_565d,
    0x646b_7279,
];

/// Input map into the AES field: row `i` selects the input bits XORed into output bit `i`.
const PRE_ROWS: [u8; 8] = [0x4c, 0x28, 0x7d, 0xb9, 0x1a, 0x22, 0x50, 0x5d];
const PRE_CONST: u8 = 0x3e;
/// Output map from `A_aes · x⁻¹` back to SM4's S-box output.
const POST_ROWS: [u8; 8] = [0x48, 0x0e, 0x4c, 0x47, 0x65, 0x1d, 0xba, 0xd3];
const POST_CONST: u8 = 0xd3;

/// Machine word used as one bit plane.
trait Plane: Copy + BitAnd<Output = Self> + BitXor<Output = Self> + Not<Output = Self> {
    const ZERO: Self;
}

impl Plane for u32 {
    const ZERO: Self = 0;
}

impl Plane for u64 {
    const ZERO: Self = 0;
}

// === S-box ===

/// Applies a public affine map to bit planes; `rows` and `c` are constants, never secrets.
#[inline(always)]
fn affine<W: Plane>(p: &[W; 8], rows: &[u8; 8], c: u8) -> [W; 8] {
    let mut out = [W::ZERO; 8];
    for (i, (o, row)) in out.iter_mut().zip(rows).enumerate() {
        let mut acc = W::ZERO;
        for (j, plane) in p.iter().enumerate() {
            if (row >> j) & 1 == 1 {
                acc = acc ^ *plane;
            }
        }
        *o = if (c >> i) & 1 == 1 { !acc } else { acc };
    }
    out
}

/// Boyar–Peralta circuit: `A_aes · x⁻¹` in GF(2^8) mod x^8+x^4+x^3+x+1, on bit planes
/// (`s[i]` holds bit `i`).
#[inline(always)]
fn aes_inv_affine<W: Plane>(s: &[W; 8]) -> [W; 8] {
    let (u0, u1, u2, u3) = (s[7], s[6], s[5], s[4]);
    let (u4, u5, u6, u7) = (s[3], s[2], s[1], s[0]);

    // Top linear layer.
    let y14 = u3 ^ u5;
    let y13 = u0 ^ u6;
    let y9 = u0 ^ u3;
    let y8 = u0 ^ u5;
    let t0 = u1 ^ u2;
    let y1 = t0 ^ u7;
    let y4 = y1 ^ u3;
    let y12 = y13 ^ y14;
    let y2 = y1 ^ u0;
    let y5 = y1 ^ u6;
    let y3 = y5 ^ y8;
    let t1 = u4 ^ y12;
    let y15 = t1 ^ u5;
    let y20 = t1 ^ u1;
    let y6 = y15 ^ u7;
    let y10 = y15 ^ t0;
    let y11 = y20 ^ y9;
    let y7 = u7 ^ y11;
    let y17 = y10 ^ y11;
    let y19 = y10 ^ y8;
    let y16 = t0 ^ y11;
    let y21 = y13 ^ y16;
    let y18 = u0 ^ y16;

    // Non-linear middle layer.
    let t2 = y12 & y15;
    let t3 = y3 & y6;
    let t4 = t3 ^ t2;
    let t5 = y4 & u7;
    let t6 = t5 ^ t2;
    let t7 = y13 & y16;
    let t8 = y5 & y1;
    let t9 = t8 ^ t7;
    let t10 = y2 & y7;
    let t11 = t10 ^ t7;
    let t12 = y9 & y11;
    let t13 = y14 & y17;
    let t14 = t13 ^ t12;
    let t15 = y8 & y10;
    let t16 = t15 ^ t12;
    let t17 = t4 ^ y20;
    let t18 = t6 ^ t16;
    let t19 = t9 ^ t14;
    let t20 = t11 ^ t16;
    let t21 = t17 ^ t14;
    let t22 = t18 ^ y19;
    let t23 = t19 ^ y21;
    let t24 = t20 ^ y18;
    let t25 = t21 ^ t22;
    let t26 = t21 & t23;
    let t27 = t24 ^ t26;
    let t28 = t25 & t27;
    let t29 = t28 ^ t22;
    let t30 = t23 ^ t24;
    let t31 = t22 ^ t26;
    let t32 = t31 & t30;
    let t33 = t32 ^ t24;
    let t34 = t23 ^ t33;
    let t35 = t27 ^ t33;
    let t36 = t24 & t35;
    let t37 = t36 ^ t34;
    let t38 = t27 ^ t36;
    let t39 = t29 & t38;
    let t40 = t25 ^ t39;
    let t41 = t40 ^ t37;
    let t42 = t29 ^ t33;
    let t43 = t29 ^ t40;
    let t44 = t33 ^ t37;
    let t45 = t42 ^ t41;
    let z0 = t44 & y15;
    let z1 = t37 & y6;
    let z2 = t33 & u7;
    let z3 = t43 & y16;
    let z4 = t40 & y1;
    let z5 = t29 & y7;
    let z6 = t42 & y11;
    let z7 = t45 & y17;
    let z8 = t41 & y10;
    let z9 = t44 & y12;
    let z10 = t37 & y3;
    let z11 = t33 & y4;
    let z12 = t43 & y13;
    let z13 = t40 & y5;
    let z14 = t29 & y2;
    let z15 = t42 & y9;
    let z16 = t45 & y14;
    let z17 = t41 & y8;

    // Bottom linear layer.
    let tc1 = z15 ^ z16;
    let tc2 = z10 ^ tc1;
    let tc3 = z9 ^ tc2;
    let tc4 = z0 ^ z2;
    let tc5 = z1 ^ z0;
    let tc6 = z3 ^ z4;
    let tc7 = z12 ^ tc4;
    let tc8 = z7 ^ tc6;
    let tc9 = z8 ^ tc7;
    let tc10 = tc8 ^ tc9;
    let tc11 = tc6 ^ tc5;
    let tc12 = z3 ^ z5;
    let tc13 = z13 ^ tc1;
    let tc14 = tc4 ^ tc12;
    let s3 = tc3 ^ tc11;
    let tc16 = z6 ^ tc8;
    let tc17 = z14 ^ tc10;
    let tc18 = tc13 ^ tc14;
    let s7 = z12 ^ tc18;
    let tc20 = z15 ^ tc16;
    let tc21 = tc2 ^ z11;
    let s0 = tc3 ^ tc16;
    let s6 = tc10 ^ tc18;
    let s4 = tc14 ^ s3;
    let s1 = s3 ^ tc16;
    let tc26 = tc17 ^ tc20;
    let s2 = tc26 ^ z17;
    let s5 = tc21 ^ tc17;

    [s7, s6, s5, s4, s3, s2, s1, s0]
}

/// SM4 S-box on every byte position of the bit planes.
#[inline(always)]
fn sbox_planes<W: Plane>(p: &[W; 8]) -> [W; 8] {
    let x = affine(p, &PRE_ROWS, PRE_CONST);
    let y = aes_inv_affine(&x);
    affine(&y, &POST_ROWS, POST_CONST)
}

/// τ: the S-box on each byte of one word (key schedule and single blocks).
#[inline]
pub(crate) fn tau(a: u32) -> u32 {
    const LSB: u32 = 0x0101_0101;
    let mut p = [0u32; 8];
    for (b, plane) in p.iter_mut().enumerate() {
        *plane = (a >> b) & LSB;
    }
    let q = sbox_planes(&p);
    let mut out = 0;
    for (b, plane) in q.iter().enumerate() {
        out |= (plane & LSB) << b;
    }
    out
}

/// Transposes 8×8 bit matrices: afterwards word `b` holds bit `b` of every byte.
/// It is an involution, so the same call also undoes it.
#[inline(always)]
fn transpose(w: &mut [u64; 8]) {
    #[inline(always)]
    fn swapmove(w: &mut [u64; 8], i: usize, s: u32, mask: u64) {
        let t = ((w[i] >> s) ^ w[i + s as usize]) & mask;
        w[i + s as usize] ^= t;
        w[i] ^= t << s;
    }
    for i in [0, 2, 4, 6] {
        swapmove(w, i, 1, 0x5555_5555_5555_5555);
    }
    for i in [0, 1, 4, 5] {
        swapmove(w, i, 2, 0x3333_3333_3333_3333);
    }
    for i in [0, 1, 2, 3] {
        swapmove(w, i, 4, 0x0f0f_0f0f_0f0f_0f0f);
    }
}

// === round functions ===

#[inline(always)]
fn l(b: u32) -> u32 {
    b ^ b.rotate_left(2) ^ b.rotate_left(10) ^ b.rotate_left(18) ^ b.rotate_left(24)
}

#[inline(always)]
fn l_key(b: u32) -> u32 {
    b ^ b.rotate_left(13) ^ b.rotate_left(23)
}

/// T on 16 words at once: one bitsliced S-box pass for 64 bytes.
#[inline(always)]
fn t16(t: &[u32; PAR]) -> [u32; PAR] {
    let mut w = [0u64; 8];
    for (k, wk) in w.iter_mut().enumerate() {
        *wk = u64::from(t[2 * k]) | (u64::from(t[2 * k + 1]) << 32);
    }
    transpose(&mut w);
    let mut s = sbox_planes(&w);
    transpose(&mut s);
    let mut out = [0u32; PAR];
    for (k, sk) in s.iter().enumerate() {
        out[2 * k] = l(*sk as u32);
        out[2 * k + 1] = l((*sk >> 32) as u32);
    }
    out
}

pub(crate) fn load_be(b: &[u8; 16]) -> [u32; 4] {
    [
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
    ]
}

/// Stores the final state in SM4's reversed word order.
pub(crate) fn store_be_reversed(x: &[u32; 4], b: &mut [u8; 16]) {
    for (chunk, word) in b.chunks_exact_mut(4).zip(x.iter().rev()) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

/// Round keys in encryption order (decryption uses them reversed).
pub(crate) fn expand_key(key: &[u8; 16]) -> [u32; 32] {
    let mut k = load_be(key);
    for (ki, fk) in k.iter_mut().zip(FK) {
        *ki ^= fk;
    }
    let mut rk = [0u32; 32];
    for (i, (r, ck)) in rk.iter_mut().zip(CK).enumerate() {
        let t = k[(i + 1) % 4] ^ k[(i + 2) % 4] ^ k[(i + 3) % 4] ^ ck;
        k[i % 4] ^= l_key(tau(t));
        *r = k[i % 4];
    }
    // The working words are the last four round keys in another order: do not leave them.
    k.zeroize();
    rk
}

/// One block through the 32 rounds.
pub(crate) fn crypt1(rk: &[u32; 32], block: &mut [u8; 16]) {
    let mut x = load_be(block);
    let step = |x0: u32, x1: u32, x2: u32, x3: u32, k: u32| x0 ^ l(tau(x1 ^ x2 ^ k ^ x3));
    sm4_rounds!(x, rk, step);
    store_be_reversed(&x, block);
}

/// Sixteen blocks through the 32 rounds, the S-box bitsliced across all of them.
fn crypt16(rk: &[u32; 32], blocks: &mut [[u8; 16]; PAR]) {
    let mut x = [[0u32; PAR]; 4];
    for (j, b) in blocks.iter().enumerate() {
        let w = load_be(b);
        for (xi, wi) in x.iter_mut().zip(w) {
            xi[j] = wi;
        }
    }
    let step = |x0: [u32; PAR], x1: [u32; PAR], x2: [u32; PAR], x3: [u32; PAR], k: u32| {
        let f = t16(&core::array::from_fn(|j| x1[j] ^ x2[j] ^ x3[j] ^ k));
        core::array::from_fn(|j| x0[j] ^ f[j])
    };
    sm4_rounds!(x, rk, step);
    for (j, b) in blocks.iter_mut().enumerate() {
        store_be_reversed(&[x[0][j], x[1][j], x[2][j], x[3][j]], b);
    }
}

/// Any number of blocks; a short tail is padded into one bulk pass when that is cheaper.
pub(crate) fn crypt_blocks(rk: &[u32; 32], blocks: &mut [[u8; 16]]) {
    let mut chunks = blocks.chunks_exact_mut(PAR);
    for chunk in &mut chunks {
        if let Ok(chunk) = <&mut [[u8; 16]; PAR]>::try_from(chunk) {
            crypt16(rk, chunk);
        }
    }
    let tail = chunks.into_remainder();
    match tail.len() {
        0 => {}
        1 | 2 => tail.iter_mut().for_each(|b| crypt1(rk, b)),
        n => {
            let mut buf = [[0u8; 16]; PAR];
            buf[..n].copy_from_slice(tail);
            crypt16(rk, &mut buf);
            tail.copy_from_slice(&buf[..n]);
        }
    }
}
