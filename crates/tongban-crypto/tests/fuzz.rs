//! Property tests: random bytes into every decoder give typed errors, never panics.

use proptest::prelude::*;
use tongban_crypto::{
    Sm4Key,
    encoding::b64_encode,
    envelope::{EnvelopeKeySet, RequestEnvelope, open_request, open_request_json},
    keyring::{KeyComponent, shamir},
    sm2::{CipherOrder, Sm2CipherFormat, Sm2PrivateKey},
    vault::{FieldCiphertext, FieldRef, StaticKeys, Vault},
};

fn keys() -> StaticKeys {
    let mut k = StaticKeys::new();
    k.insert("pii.data", 1, Sm4Key::from_bytes([1; 16])).insert(
        "pii.index",
        1,
        Sm4Key::from_bytes([2; 16]),
    );
    k
}

const FIELD: FieldRef<'static> = FieldRef {
    table: "t",
    column: "c",
    row_id: "1",
};

fn sm2_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes(&[0x39; 32]).expect("fixed key")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn vault_text_decoder(text in ".{0,120}") {
        let k = keys();
        let v = Vault::new(&k, "pii.data", "pii.index");
        prop_assert!(v.decrypt(&FIELD, &text).is_err());
    }

    #[test]
    fn vault_binary_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let k = keys();
        let v = Vault::new(&k, "pii.data", "pii.index");
        let text = tongban_crypto::encoding::b64url_encode(&bytes);
        prop_assert!(v.decrypt(&FIELD, &text).is_err());
        let _ = FieldCiphertext::from_bytes(&bytes);
    }

    #[test]
    fn vault_header_shaped_garbage(id_len in 0u8..80, ver in any::<u32>(),
                                   tail in proptest::collection::vec(any::<u8>(), 0..60)) {
        let mut bytes = vec![1u8, id_len];
        bytes.extend(std::iter::repeat_n(b'p', usize::from(id_len.min(70))));
        bytes.extend_from_slice(&ver.to_be_bytes());
        bytes.extend_from_slice(&tail);
        let k = keys();
        let v = Vault::new(&k, "pii.data", "pii.index");
        prop_assert!(v.decrypt(&FIELD, &tongban_crypto::encoding::b64url_encode(&bytes)).is_err());
    }

    #[test]
    fn vault_flipped_byte(pos in 0usize..60, bit in 0u8..8) {
        let k = keys();
        let v = Vault::new(&k, "pii.data", "pii.index");
        let stored = v.encrypt(&FIELD, b"11010519491231002X").expect("encrypts");
        let mut raw = FieldCiphertext::from_text(&stored).expect("parses").to_bytes();
        let pos = pos % raw.len();
        raw[pos] ^= 1 << bit;
        let text = tongban_crypto::encoding::b64url_encode(&raw);
        prop_assert!(v.decrypt(&FIELD, &text).is_err());
    }
}

proptest! {
    // SM2 decryption does a scalar multiplication per valid-looking input: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn sm2_ciphertext_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200),
                              c1c2c3 in any::<bool>(), prefix in any::<bool>(), lenient in any::<bool>()) {
        let fmt = Sm2CipherFormat {
            order: if c1c2c3 { CipherOrder::C1C2C3 } else { CipherOrder::C1C3C2 },
            emit_prefix: prefix,
            accept_either_prefix: lenient,
        };
        prop_assert!(sm2_key().decrypt(&bytes, fmt).is_err());
    }

    #[test]
    fn sm2_valid_point_garbage_body(body in proptest::collection::vec(any::<u8>(), 0..80)) {
        // A real C1 (so the point checks pass) followed by random C3/C2 must fail the C3 check.
        let key = sm2_key();
        let real = key.public_key().encrypt(b"x", Sm2CipherFormat::default()).expect("encrypts");
        let mut ct = real[..65].to_vec();
        ct.extend_from_slice(&body);
        prop_assert!(key.decrypt(&ct, Sm2CipherFormat::default()).is_err());
    }

    #[test]
    fn sm2_public_key_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..70)) {
        let _ = tongban_crypto::sm2::Sm2PublicKey::from_bytes(&bytes);
    }

    #[test]
    fn envelope_fields(kid in "[a-z0-9]{0,4}", key in proptest::collection::vec(any::<u8>(), 0..150),
                       iv in proptest::collection::vec(any::<u8>(), 0..20),
                       data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut keys = EnvelopeKeySet::new();
        keys.insert("k1", sm2_key());
        let env = RequestEnvelope {
            kid,
            key: b64_encode(&key),
            iv: b64_encode(&iv),
            data: b64_encode(&data),
        };
        prop_assert!(open_request(&keys, &env, Sm2CipherFormat::default()).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn envelope_json(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut keys = EnvelopeKeySet::new();
        keys.insert("k1", sm2_key());
        prop_assert!(open_request_json(&keys, &bytes, Sm2CipherFormat::default()).is_err());
    }

    #[test]
    fn envelope_json_text(text in "\\{.{0,100}\\}") {
        let mut keys = EnvelopeKeySet::new();
        keys.insert("k1", sm2_key());
        prop_assert!(open_request_json(&keys, text.as_bytes(), Sm2CipherFormat::default()).is_err());
    }

    #[test]
    fn component_decoder(text in ".{0,200}") {
        prop_assert!(KeyComponent::parse(&text).is_none());
    }

    #[test]
    fn shamir_combine_random_shares(xs in proptest::collection::vec(any::<u8>(), 0..6),
                                    len in 0usize..20, seed in any::<u8>()) {
        let shares: Vec<shamir::Share> = xs
            .iter()
            .enumerate()
            .map(|(i, &x)| shamir::Share {
                x,
                y: zeroize::Zeroizing::new(vec![seed.wrapping_add(i as u8); len + (i % 2)]),
            })
            .collect();
        let _ = shamir::combine(&shares);
    }

    #[test]
    fn shamir_split_combine(secret in proptest::collection::vec(any::<u8>(), 1..33),
                            k in 2usize..6, extra in 0usize..3) {
        let n = k + extra;
        let shares = shamir::split(&secret, k, n).expect("splits");
        let combined = shamir::combine(&shares[extra..]).expect("combines");
        prop_assert_eq!(combined.as_slice(), secret.as_slice());
    }
}
