//! Unit tests for the SM4 internals: the S-box derivations and every kernel against each other.

use super::*;

/// The GB/T 32907 S-box, the reference the computed S-boxes must reproduce.
const SBOX: [u8; 256] = [
    0xd6, 0x90, 0xe9, 0xfe, 0xcc, 0xe1, 0x3d, 0xb7, 0x16, 0xb6, 0x14, 0xc2, 0x28, 0xfb, 0x2c, 0x05,
    0x2b, 0x67, 0x9a, 0x76, 0x2a, 0xbe, 0x04, 0xc3, 0xaa, 0x44, 0x13, 0x26, 0x49, 0x86, 0x06, 0x99,
    0x9c, 0x42, 0x50, 0xf4, 0x91, 0xef, 0x98, 0x7a, 0x33, 0x54, 0x0b, 0x43, 0xed, 0xcf, 0xac, 0x62,
    0xe4, 0xb3, 0x1c, 0xa9, 0xc9, 0x08, 0xe8, 0x95, 0x80, 0xdf, 0x94, 0xfa, 0x75, 0x8f, 0x3f, 0xa6,
    0x47, 0x07, 0xa7, 0xfc, 0xf3, 0x73, 0x17, 0xba, 0x83, 0x59, 0x3c, 0x19, 0xe6, 0x85, 0x4f, 0xa8,
    0x68, 0x6b, 0x81, 0xb2, 0x71, 0x64, 0xda, 0x8b, 0xf8, 0xeb, 0x0f, 0x4b, 0x70, 0x56, 0x9d, 0x35,
    0x1e, 0x24, 0x0e, 0x5e, 0x63, 0x58, 0xd1, 0xa2, 0x25, 0x22, 0x7c, 0x3b, 0x01, 0x21, 0x78, 0x87,
    0xd4, 0x00, 0x46, 0x57, 0x9f, 0xd3, 0x27, 0x52, 0x4c, 0x36, 0x02, 0xe7, 0xa0, 0xc4, 0xc8, 0x9e,
    0xea, 0xbf, 0x8a, 0xd2, 0x40, 0xc7, 0x38, 0xb5, 0xa3, 0xf7, 0xf2, 0xce, 0xf9, 0x61, 0x15, 0xa1,
    0xe0, 0xae, 0x5d, 0xa4, 0x9b, 0x34, 0x1a, 0x55, 0xad, 0x93, 0x32, 0x30, 0xf5, 0x8c, 0xb1, 0xe3,
    0x1d, 0xf6, 0xe2, 0x2e, 0x82, 0x66, 0xca, 0x60, 0xc0, 0x29, 0x23, 0xab, 0x0d, 0x53, 0x4e, 0x6f,
    0xd5, 0xdb, 0x37, 0x45, 0xde, 0xfd, 0x8e, 0x2f, 0x03, 0xff, 0x6a, 0x72, 0x6d, 0x6c, 0x5b, 0x51,
    0x8d, 0x1b, 0xaf, 0x92, 0xbb, 0xdd, 0xbc, 0x7f, 0x11, 0xd9, 0x5c, 0x41, 0x1f, 0x10, 0x5a, 0xd8,
    0x0a, 0xc1, 0x31, 0x88, 0xa5, 0xcd, 0x7b, 0xbd, 0x2d, 0x74, 0xd0, 0x12, 0xb8, 0xe5, 0xb4, 0xb0,
    0x89, 0x69, 0x97, 0x4a, 0x0c, 0x96, 0x77, 0x7e, 0x65, 0xb9, 0xf1, 0x09, 0xc5, 0x6e, 0xc6, 0x84,
    0x18, 0xf0, 0x7d, 0xec, 0x3a, 0xdc, 0x4d, 0x20, 0x79, 0xee, 0x5f, 0x3e, 0xd7, 0xcb, 0x39, 0x48,
];

fn reference_tau(a: u32) -> u32 {
    u32::from_be_bytes(a.to_be_bytes().map(|b| SBOX[usize::from(b)]))
}

fn hex16(s: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}

fn available() -> Vec<Sm4Backend> {
    Sm4Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect()
}

#[test]
fn bitsliced_sbox_matches_table_for_every_byte() {
    for x in 0..=255u8 {
        let word = u32::from_be_bytes([x, x.wrapping_add(1), x ^ 0x5a, !x]);
        assert_eq!(soft::tau(word), reference_tau(word), "input {x:#04x}");
    }
}

#[test]
fn every_kernel_agrees_with_portable_single_block_on_all_bulk_sizes() {
    let key = hex16("0123456789abcdeffedcba9876543210");
    let reference = Sm4::with_backend(&key, Sm4Backend::Portable).expect("portable");
    let mut blocks = [[0u8; 16]; 40];
    for (i, b) in blocks.iter_mut().enumerate() {
        for (j, v) in b.iter_mut().enumerate() {
            *v = (i * 31 + j * 7) as u8;
        }
    }
    let mut expected = blocks;
    expected
        .iter_mut()
        .for_each(|b| soft::crypt1(&reference.enc, b));
    for backend in available() {
        let c = Sm4::with_backend(&key, backend).expect("available");
        for n in 0..blocks.len() {
            let mut got = blocks;
            c.crypt_blocks(&c.enc, &mut got[..n]);
            assert_eq!(&got[..n], &expected[..n], "{backend:?}, {n} blocks");
            assert_eq!(&got[n..], &blocks[n..], "{backend:?} wrote past {n} blocks");
        }
        let mut one = blocks[3];
        c.crypt1(&c.enc, &mut one);
        assert_eq!(one, expected[3], "{backend:?} single block");
    }
}

#[test]
fn crafted_round_keys_agree_across_backends() {
    // Round keys that no key schedule produces push every byte value through the S-box in
    // every byte lane, which checks the nibble tables and GFNI matrices lane by lane.
    let reference = Sm4::with_backend(&[0; 16], Sm4Backend::Portable).expect("portable");
    for backend in available() {
        let c = Sm4::with_backend(&[0; 16], backend).expect("available");
        for hi in 0..16u8 {
            let mut rk = [0u32; 32];
            for (i, k) in rk.iter_mut().enumerate() {
                let b = hi * 16 + i as u8 % 16;
                *k = u32::from_be_bytes([b, b.rotate_left(1), b ^ 0xa5, b.wrapping_mul(3)]);
            }
            let mut a = [[0u8; 16]; 16];
            for (i, blk) in a.iter_mut().enumerate() {
                blk[0] = i as u8 * 16 + hi;
            }
            let mut b = a;
            reference.crypt_blocks(&rk, &mut a);
            c.crypt_blocks(&rk, &mut b);
            assert_eq!(a, b, "{backend:?}");
        }
    }
}

#[test]
fn gbt_32907_example_on_every_backend() {
    let key = hex16("0123456789abcdeffedcba9876543210");
    let expected = hex16("681edf34d206965e86b3e94f536e4246");
    for backend in available() {
        let c = Sm4::with_backend(&key, backend).expect("available");
        let mut b = key;
        c.crypt1(&c.enc, &mut b);
        assert_eq!(b, expected, "{backend:?}");
        c.crypt1(&c.dec, &mut b);
        assert_eq!(b, key, "{backend:?}");
    }
}

#[test]
fn portable_is_always_available_and_default_is_fastest_available() {
    assert!(Sm4Backend::Portable.is_available());
    let c = Sm4::new(&[0u8; 16].into());
    assert_eq!(Some(c.backend()), available().first().copied());
    assert!(format!("{c:?}").starts_with("Sm4 {"));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn single_block_kernels_without_avx512_match_portable() {
    let key = hex16("0123456789abcdeffedcba9876543210");
    let reference = Sm4::with_backend(&key, Sm4Backend::Portable).expect("portable");
    for level in [x86::Level::AesNi, x86::Level::Vaes, x86::Level::Gfni] {
        let Some(simd) = x86::Simd::new(level) else {
            continue;
        };
        for simd in [simd, simd.without_avx512()] {
            for seed in 0..64u8 {
                let mut want = [seed; 16];
                want[0] ^= 0x80;
                let mut got = want;
                soft::crypt1(&reference.enc, &mut want);
                x86::crypt1(simd, &reference.enc, &mut got);
                assert_eq!(got, want, "{simd:?}");
            }
        }
    }
}
