use super::*;

/// Reference multiplication with a branchy textbook algorithm, to check the masked one.
fn slow_mul(a: u8, b: u8) -> u8 {
    let mut r: u16 = 0;
    for i in 0..8 {
        if b & (1 << i) != 0 {
            r ^= u16::from(a) << i;
        }
    }
    for i in (8..16).rev() {
        if r & (1 << i) != 0 {
            r ^= 0x11b << (i - 8);
        }
    }
    r as u8
}

#[test]
fn field_arithmetic_matches_reference_and_inverts() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            assert_eq!(gf_mul(a, b), slow_mul(a, b), "{a} * {b}");
        }
        if a != 0 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "inverse of {a}");
        }
    }
    assert_eq!(gf_inv(0), 0);
    // AES's well-known pair: 0x53 * 0xca = 1.
    assert_eq!(gf_mul(0x53, 0xca), 1);
}

#[test]
fn any_k_of_n_recover_and_k_minus_one_do_not() {
    let secret: Vec<u8> = (0..16u8)
        .map(|i| i.wrapping_mul(17).wrapping_add(3))
        .collect();
    let shares = split(&secret, 3, 5).expect("splits");
    for a in 0..5 {
        for b in (a + 1)..5 {
            for c in (b + 1)..5 {
                let subset = [shares[a].clone(), shares[b].clone(), shares[c].clone()];
                assert_eq!(combine(&subset).expect("combines").as_slice(), &secret[..]);
            }
        }
    }
    let two = [shares[0].clone(), shares[4].clone()];
    assert_ne!(combine(&two).expect("combines").as_slice(), &secret[..]);
}

#[test]
fn bad_parameters_and_shares_are_errors() {
    assert!(split(b"k", 1, 3).is_err());
    assert!(split(b"k", 4, 3).is_err());
    assert!(split(b"k", 2, 256).is_err());
    let shares = split(b"0123456789abcdef", 2, 3).expect("splits");
    assert_eq!(combine(&shares[..1]).err(), Some(ShamirError::TooFewShares));
    let dup = [shares[0].clone(), shares[0].clone()];
    assert_eq!(combine(&dup).err(), Some(ShamirError::BadIndex(1)));
    let mut short = shares[1].clone();
    short.y.pop();
    assert_eq!(
        combine(&[shares[0].clone(), short]).err(),
        Some(ShamirError::LengthMismatch)
    );
}

#[test]
fn xor_split_needs_every_part() {
    let secret = [7u8; 16];
    let parts = xor_split(&secret, 3).expect("splits");
    let refs: Vec<&[u8]> = parts.iter().map(|p| p.as_slice()).collect();
    assert_eq!(xor_combine(&refs).expect("combines").as_slice(), &secret);
    assert_ne!(
        xor_combine(&refs[..2]).expect("combines").as_slice(),
        &secret
    );
}
