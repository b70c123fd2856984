//! SM4 against GB/T 32907, RFC 8998 and, differentially, RustCrypto `sm4`, on every backend.

use aes_gcm::{
    AesGcm,
    aead::{Aead, Payload},
};
use cipher::{
    Array, Block, BlockCipherDecrypt, BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt,
    InnerIvInit, KeyInit, StreamCipher, consts::U12,
};
use proptest::prelude::*;
use tongban_crypto::sm4::{Sm4, Sm4Backend};

const KEY: &str = "0123456789abcdeffedcba9876543210";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex16(s: &str) -> [u8; 16] {
    hex(s).try_into().expect("16 bytes")
}

fn backends() -> Vec<Sm4Backend> {
    let all: Vec<_> = Sm4Backend::ALL
        .into_iter()
        .filter(|b| b.is_available())
        .collect();
    assert!(all.contains(&Sm4Backend::Portable));
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("aes") {
        assert!(
            all.contains(&Sm4Backend::AesNiAvx2),
            "AES-NI path must run here"
        );
    }
    all
}

fn ours(key: &[u8; 16], backend: Sm4Backend) -> Sm4 {
    Sm4::with_backend(key, backend).expect("backend listed as available")
}

fn reference(key: &[u8; 16]) -> sm4::Sm4 {
    <sm4::Sm4 as KeyInit>::new(key.into())
}

fn to_blocks(data: &[u8]) -> Vec<Block<Sm4>> {
    data.chunks_exact(16)
        .map(|c| Array::try_from(c).expect("16-byte chunk"))
        .collect()
}

fn flat(blocks: &[Block<Sm4>]) -> Vec<u8> {
    blocks.iter().flat_map(|b| b.iter().copied()).collect()
}

#[test]
fn gbt_32907_example_1_one_block() {
    let key = hex16(KEY);
    let expected = hex16("681edf34d206965e86b3e94f536e4246");
    for backend in backends() {
        let c = ours(&key, backend);
        let mut b = Block::<Sm4>::from(key);
        c.encrypt_block(&mut b);
        assert_eq!(<[u8; 16]>::from(b), expected, "{backend:?}");
        c.decrypt_block(&mut b);
        assert_eq!(<[u8; 16]>::from(b), key, "{backend:?}");
    }
}

#[test]
fn gbt_32907_example_2_million_iterations() {
    let key = hex16(KEY);
    let expected = hex16("595298c7c6fd271f0402f804c33d3f66");
    for backend in backends() {
        let c = ours(&key, backend);
        let mut b = Block::<Sm4>::from(key);
        for _ in 0..1_000_000 {
            c.encrypt_block(&mut b);
        }
        assert_eq!(<[u8; 16]>::from(b), expected, "{backend:?}");
        for _ in 0..1_000_000 {
            c.decrypt_block(&mut b);
        }
        assert_eq!(<[u8; 16]>::from(b), key, "{backend:?}");
    }
}

#[test]
fn rfc_8998_sm4_gcm() {
    let key = hex16(KEY);
    let nonce: [u8; 12] = hex("00001234567800000000abcd")
        .try_into()
        .expect("12 bytes");
    let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
    let pt = hex(concat!(
        "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd",
        "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
    ));
    let expected = hex(concat!(
        "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735",
        "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d",
        "83de3541e4c2b58177e065a9bf7b62ec"
    ));
    for backend in backends() {
        let gcm = AesGcm::<Sm4, U12>::from(ours(&key, backend));
        let ct = gcm
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .expect("seal");
        assert_eq!(ct, expected, "{backend:?}");
        let back = gcm
            .decrypt(
                (&nonce).into(),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .expect("open");
        assert_eq!(back, pt, "{backend:?}");
    }
}

fn ctr128<C>(cipher: C, iv: [u8; 16]) -> ctr::Ctr128BE<C>
where
    C: BlockCipherEncrypt + cipher::BlockSizeUser<BlockSize = cipher::consts::U16>,
{
    ctr::Ctr128BE::from_core(ctr::CtrCore::inner_iv_init(cipher, &iv.into()))
}

fn check_against_reference(key: [u8; 16], iv: [u8; 16], data: &[u8], aad: &[u8]) {
    let refc = reference(&key);
    let blocks = to_blocks(data);

    // Raw blocks (ECB), both directions.
    let mut want = blocks.clone();
    refc.encrypt_blocks(&mut want);

    // CBC.
    let mut cbc_want = blocks.clone();
    cbc::Encryptor::<sm4::Sm4>::inner_iv_init(refc.clone(), &iv.into())
        .encrypt_blocks(&mut cbc_want);

    // CTR (128-bit big-endian counter) over the unpadded bytes.
    let mut ctr_want = data.to_vec();
    ctr128(refc.clone(), iv).apply_keystream(&mut ctr_want);

    // GCM.
    let nonce: [u8; 12] = iv[..12].try_into().expect("12 bytes");
    let gcm_want = AesGcm::<sm4::Sm4, U12>::from(refc)
        .encrypt((&nonce).into(), Payload { msg: data, aad })
        .expect("seal");

    for backend in backends() {
        let c = ours(&key, backend);
        let mut got = blocks.clone();
        c.encrypt_blocks(&mut got);
        assert_eq!(flat(&got), flat(&want), "{backend:?} encrypt");
        c.decrypt_blocks(&mut got);
        assert_eq!(flat(&got), flat(&blocks), "{backend:?} decrypt");

        let mut cbc_got = blocks.clone();
        cbc::Encryptor::<Sm4>::inner_iv_init(c.clone(), &iv.into()).encrypt_blocks(&mut cbc_got);
        assert_eq!(flat(&cbc_got), flat(&cbc_want), "{backend:?} cbc encrypt");
        cbc::Decryptor::<Sm4>::inner_iv_init(c.clone(), &iv.into()).decrypt_blocks(&mut cbc_got);
        assert_eq!(flat(&cbc_got), flat(&blocks), "{backend:?} cbc decrypt");

        let mut ctr_got = data.to_vec();
        ctr128(c.clone(), iv).apply_keystream(&mut ctr_got);
        assert_eq!(ctr_got, ctr_want, "{backend:?} ctr");

        let gcm = AesGcm::<Sm4, U12>::from(c);
        let sealed = gcm
            .encrypt((&nonce).into(), Payload { msg: data, aad })
            .expect("seal");
        assert_eq!(sealed, gcm_want, "{backend:?} gcm");
        let opened = gcm
            .decrypt((&nonce).into(), Payload { msg: &sealed, aad })
            .expect("open");
        assert_eq!(opened, data, "{backend:?} gcm open");
    }
}

#[test]
fn sizes_around_the_parallel_width_match_reference() {
    let key = hex16(KEY);
    let iv = hex16("000102030405060708090a0b0c0d0e0f");
    for len in [
        0, 1, 15, 16, 17, 31, 32, 48, 240, 255, 256, 257, 272, 511, 512, 513, 1040,
    ] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        check_against_reference(key, iv, &data[..len / 16 * 16], b"");
        check_against_reference(key, iv, &data, b"aad");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_keys_and_messages_match_reference(
        key in any::<[u8; 16]>(),
        iv in any::<[u8; 16]>(),
        data in proptest::collection::vec(any::<u8>(), 0..1200),
        aad in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        check_against_reference(key, iv, &data[..data.len() / 16 * 16], &aad);
        check_against_reference(key, iv, &data, &aad);
    }

    #[test]
    fn random_single_blocks_match_reference(key in any::<[u8; 16]>(), block in any::<[u8; 16]>()) {
        let mut want = Block::<Sm4>::from(block);
        reference(&key).encrypt_block(&mut want);
        for backend in backends() {
            let c = ours(&key, backend);
            let mut got = Block::<Sm4>::from(block);
            c.encrypt_block(&mut got);
            prop_assert_eq!(got, want, "{:?}", backend);
            c.decrypt_block(&mut got);
            prop_assert_eq!(<[u8; 16]>::from(got), block, "{:?}", backend);
        }
    }
}
