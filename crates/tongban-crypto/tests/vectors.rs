//! Official test vectors: GB/T 32905 (SM3), GB/T 32907 (SM4), GB/T 32918.5 (SM2 on
//! sm2p256v1), RFC 8998 (SM4-GCM), and draft-ribose-cfrg-sm4 A.2 (SM4 ECB/CBC/CTR).

mod common;

use common::{hex, hex_array};
use tongban_crypto::{
    Sm4Key,
    gcm::Sm4Gcm,
    modes,
    sm2::{CipherOrder, DEFAULT_USER_ID, Sm2CipherFormat, Sm2PrivateKey, Sm2PublicKey},
    sm3::{hmac_sm3, sm3},
};

// --- SM3, GB/T 32905-2016 Appendix A -------------------------------------------------------

#[test]
fn sm3_abc() {
    assert_eq!(
        sm3(b"abc").to_vec(),
        hex("66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0")
    );
}

#[test]
fn sm3_abcd_times_16() {
    assert_eq!(
        sm3("abcd".repeat(16).as_bytes()).to_vec(),
        hex("debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732")
    );
}

#[test]
fn hmac_sm3_differs_by_key_and_matches_definition() {
    // HMAC has no official SM3 vector in the GB/T; check it against its RFC 2104 definition
    // computed with the plain SM3 above, so an API mix-up (e.g. key and data swapped) fails.
    let key = b"tongban-key";
    let msg = b"message";
    let mut k0 = [0u8; 64];
    k0[..key.len()].copy_from_slice(key);
    let ipad: Vec<u8> = k0.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k0.iter().map(|b| b ^ 0x5c).collect();
    let inner = sm3(&[ipad.as_slice(), msg].concat());
    let outer = sm3(&[opad.as_slice(), &inner].concat());
    assert_eq!(hmac_sm3(key, &[msg]), outer);
    assert_ne!(hmac_sm3(b"other-key", &[msg]), outer);
}

// --- SM4, GB/T 32907-2016 Appendix A -------------------------------------------------------

const SM4_KEY: &str = "0123456789abcdeffedcba9876543210";

#[test]
fn sm4_one_block() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let ct = modes::sm4_encrypt_block(&key, &hex_array(SM4_KEY));
    assert_eq!(ct.to_vec(), hex("681edf34d206965e86b3e94f536e4246"));
    assert_eq!(modes::sm4_decrypt_block(&key, &ct).to_vec(), hex(SM4_KEY));
}

/// Example 2 of GB/T 32907: the block encrypted 1,000,000 times under the same key.
/// Not `#[ignore]`d: it takes a few seconds even in an unoptimized test build, so it runs in
/// every `cargo test` and in CI.
#[test]
fn sm4_one_million_iterations() {
    let cipher = modes::Sm4Cipher::new(&Sm4Key::from_bytes(hex_array(SM4_KEY)));
    let mut block: [u8; 16] = hex_array(SM4_KEY);
    for _ in 0..1_000_000 {
        cipher.encrypt_block(&mut block);
    }
    assert_eq!(block.to_vec(), hex("595298c7c6fd271f0402f804c33d3f66"));
}

// --- SM4 modes, draft-ribose-cfrg-sm4 Appendix A.2 ------------------------------------------

const MODE_PT: &str = "aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb";
const MODE_IV: &str = "000102030405060708090a0b0c0d0e0f";

#[test]
fn sm4_ecb_vector_then_padding_block() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let ct = modes::ecb_encrypt(&key, &hex(MODE_PT));
    // The vector is unpadded; PKCS#7 appends one full block after it.
    assert_eq!(
        ct[..32].to_vec(),
        hex("5ec8143de509cff7b5179f8f474b86192f1d305a7fb17df985f81c8482192304")
    );
    assert_eq!(ct.len(), 48);
    assert_eq!(
        modes::ecb_decrypt(&key, &ct).expect("decrypts"),
        hex(MODE_PT)
    );
}

#[test]
fn sm4_cbc_vector_then_padding_block() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let iv = hex_array(MODE_IV);
    let ct = modes::cbc_encrypt(&key, &iv, &hex(MODE_PT));
    assert_eq!(
        ct[..32].to_vec(),
        hex("78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d")
    );
    assert_eq!(
        modes::cbc_decrypt(&key, &iv, &ct).expect("decrypts"),
        hex(MODE_PT)
    );

    let key2 = Sm4Key::from_bytes(hex_array("fedcba98765432100123456789abcdef"));
    let ct2 = modes::cbc_encrypt(&key2, &iv, &hex(MODE_PT));
    assert_eq!(
        ct2[..32].to_vec(),
        hex("0d3a6ddc2d21c698857215587b7bb59a91f2c147911a4144665e1fa1d40bae38")
    );
}

#[test]
fn sm4_ctr_vector() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let iv = hex_array(MODE_IV);
    let pt = hex(
        "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd\
         eeeeeeeeeeeeeeeeffffffffffffffffaaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb",
    );
    let ct = modes::ctr_apply(&key, &iv, &pt);
    assert_eq!(
        ct,
        hex(
            "ac3236cb970cc20791364c395a1342d1a3cbc1878c6f30cd074cce385cdd70c7\
             f234bc0e24c11980fd1286310ce37b926e02fcd0faa0baf38b2933851d824514"
        )
    );
    assert_eq!(modes::ctr_apply(&key, &iv, &ct), pt);
}

#[test]
fn sm4_padding_errors_are_typed() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let iv = hex_array(MODE_IV);
    assert!(modes::cbc_decrypt(&key, &iv, &[]).is_err());
    assert!(modes::cbc_decrypt(&key, &iv, &[0u8; 15]).is_err());
    // Random garbage almost never ends in valid padding; a fixed block that does not:
    let mut ct = modes::cbc_encrypt(&key, &iv, b"0123456789abcdef");
    let n = ct.len();
    ct[n - 17] ^= 0x01; // flips the last plaintext byte of the padding block: 0x10 -> 0x11
    assert!(modes::cbc_decrypt(&key, &iv, &ct).is_err());
}

// --- SM4-GCM, RFC 8998 Appendix A.1 -------------------------------------------------------

#[test]
fn sm4_gcm_rfc8998() {
    let key = Sm4Key::from_bytes(hex_array(SM4_KEY));
    let nonce: [u8; 12] = hex_array("00001234567800000000ABCD");
    let aad = hex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2");
    let pt = hex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD\
         EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA",
    );
    let expected = hex(
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735\
         D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D\
         83DE3541E4C2B58177E065A9BF7B62EC",
    );
    let gcm = Sm4Gcm::new(&key);
    assert_eq!(gcm.seal(&nonce, &aad, &pt).expect("seals"), expected);
    assert_eq!(
        gcm.open(&nonce, &aad, &expected).expect("opens").to_vec(),
        pt
    );

    for i in [0, 63, 64, 79] {
        let mut bad = expected.clone();
        bad[i] ^= 1;
        assert!(gcm.open(&nonce, &aad, &bad).is_err(), "byte {i} flipped");
    }
    assert!(gcm.open(&nonce, b"other aad", &expected).is_err());
    assert!(gcm.open(&nonce, &aad, &expected[..15]).is_err());
}

// --- SM2, GB/T 32918.5-2017 Appendix (recommended curve sm2p256v1) ------------------------

const SM2_D: &str = "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8";
const SM2_P: &str = "04 09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020\
                        CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
const SM2_K: &str = "59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21";
const SM2_R: &str = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
const SM2_S: &str = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
const SM2_C1: &str = "04 04EBFC718E8D1798620432268E77FEB6415E2EDE0E073C0F4F640ECD2E149A73\
                         E858F9D81E5430A57B36DAAB8F950A3C64E6EE6A63094D99283AFF767E124DF0";
const SM2_C3: &str = "59983C18F809E262923C53AEC295D30383B54E39D609D160AFCB1908D0BD8766";
const SM2_C2: &str = "21886CA989CA9C7D58087307CA93092D651EFA";

/// Supplies the standard's fixed `k` to the encryption API, as a "random" generator would.
struct FixedK(Vec<u8>);

impl tongban_crypto_rng::TryRng for FixedK {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("SM2 draws k as bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("SM2 draws k as bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert_eq!(dst.len(), self.0.len(), "k is drawn in one 32-byte piece");
        dst.copy_from_slice(&self.0);
        Ok(())
    }
}
impl tongban_crypto_rng::TryCryptoRng for FixedK {}

mod tongban_crypto_rng {
    pub(crate) use ::sm2::elliptic_curve::rand_core::{TryCryptoRng, TryRng};
}

fn annex_key() -> Sm2PrivateKey {
    Sm2PrivateKey::from_bytes(&hex(SM2_D)).expect("annex private key")
}

#[test]
fn sm2_annex_public_key_and_za() {
    let key = annex_key();
    assert_eq!(key.public_key().to_bytes().to_vec(), hex(SM2_P));
    assert_eq!(
        key.public_key().za(DEFAULT_USER_ID).expect("za").to_vec(),
        hex("B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3")
    );
}

#[test]
fn sm2_annex_signature_verifies_and_tampering_fails() {
    let public = Sm2PublicKey::from_bytes(&hex(SM2_P)).expect("annex public key");
    let sig = [hex(SM2_R), hex(SM2_S)].concat();
    public
        .verify(b"message digest", DEFAULT_USER_ID, &sig)
        .expect("published signature verifies");
    assert!(
        public
            .verify(b"message digesT", DEFAULT_USER_ID, &sig)
            .is_err()
    );
    assert!(
        public
            .verify(b"message digest", "ALICE123@YAHOO.COM", &sig)
            .is_err()
    );
    let mut bad = sig.clone();
    bad[63] ^= 1;
    assert!(
        public
            .verify(b"message digest", DEFAULT_USER_ID, &bad)
            .is_err()
    );
    assert!(
        public
            .verify(b"message digest", DEFAULT_USER_ID, &sig[..63])
            .is_err()
    );
}

/// The signing API derives `k` itself (RFC 6979, hedged), so the published (r, s) is checked
/// by running steps A4–A6 of GB/T 32918.2 with the standard's `k` on the same curve
/// arithmetic, with `e` from our own Z computation.
#[test]
fn sm2_annex_signature_with_fixed_k() {
    use ::sm2::{
        FieldBytes, ProjectivePoint, Scalar,
        elliptic_curve::{Group, PrimeField, ops::Reduce, point::AffineCoordinates},
    };
    let public = Sm2PublicKey::from_bytes(&hex(SM2_P)).expect("annex public key");
    let z = public.za(DEFAULT_USER_ID).expect("za");
    let e_bytes = sm3(&[z.as_slice(), b"message digest"].concat());
    assert_eq!(
        e_bytes.to_vec(),
        hex("F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640")
    );
    let scalar = |h: &str| -> Scalar {
        let bytes: [u8; 32] = hex_array(h);
        Option::from(Scalar::from_repr(FieldBytes::from(bytes))).expect("scalar < n")
    };
    let e = <Scalar as Reduce<FieldBytes>>::reduce(&FieldBytes::from(e_bytes));
    let d = scalar(SM2_D);
    let k = scalar(SM2_K);
    let x1 = ProjectivePoint::mul_by_generator(&k).to_affine().x();
    let r = e + <Scalar as Reduce<FieldBytes>>::reduce(&x1);
    let s =
        Option::<Scalar>::from((Scalar::ONE + d).invert()).expect("1 + d invertible") * (k - r * d);
    assert_eq!(r.to_repr().to_vec(), hex(SM2_R));
    assert_eq!(s.to_repr().to_vec(), hex(SM2_S));
    assert!(!bool::from(s.is_zero()));
}

#[test]
fn sm2_sign_verify_round_trip_with_user_ids() {
    let key = Sm2PrivateKey::generate().expect("keygen");
    let sig = key.sign(b"hello", DEFAULT_USER_ID).expect("signs");
    key.public_key()
        .verify(b"hello", DEFAULT_USER_ID, &sig)
        .expect("verifies");
    let sig2 = key.sign(b"hello", "alice@example.org").expect("signs");
    key.public_key()
        .verify(b"hello", "alice@example.org", &sig2)
        .expect("verifies with its ID");
    assert!(
        key.public_key()
            .verify(b"hello", DEFAULT_USER_ID, &sig2)
            .is_err()
    );
    assert!(key.sign(b"x", &"i".repeat(9000)).is_err());
}

#[test]
fn sm2_annex_encryption_with_fixed_k_both_orders() {
    let public = Sm2PublicKey::from_bytes(&hex(SM2_P)).expect("annex public key");
    let msg = b"encryption standard";
    let c1c3c2 = public
        .encrypt_with_rng(&mut FixedK(hex(SM2_K)), msg, Sm2CipherFormat::default())
        .expect("encrypts");
    assert_eq!(c1c3c2, [hex(SM2_C1), hex(SM2_C3), hex(SM2_C2)].concat());

    let c1c2c3_fmt = Sm2CipherFormat {
        order: CipherOrder::C1C2C3,
        ..Sm2CipherFormat::default()
    };
    let c1c2c3 = public
        .encrypt_with_rng(&mut FixedK(hex(SM2_K)), msg, c1c2c3_fmt)
        .expect("encrypts");
    assert_eq!(c1c2c3, [hex(SM2_C1), hex(SM2_C2), hex(SM2_C3)].concat());

    let bare = Sm2CipherFormat {
        emit_prefix: false,
        ..Sm2CipherFormat::default()
    };
    let no_prefix = public
        .encrypt_with_rng(&mut FixedK(hex(SM2_K)), msg, bare)
        .expect("encrypts");
    assert_eq!(no_prefix, c1c3c2[1..].to_vec());

    let key = annex_key();
    let fmt = Sm2CipherFormat::default();
    assert_eq!(key.decrypt(&c1c3c2, fmt).expect("decrypts").as_slice(), msg);
    assert_eq!(
        key.decrypt(&no_prefix, fmt)
            .expect("no prefix accepted")
            .as_slice(),
        msg
    );
    assert_eq!(
        key.decrypt(&c1c2c3, c1c2c3_fmt)
            .expect("decrypts")
            .as_slice(),
        msg
    );
    // The wrong order fails its C3 check instead of returning garbage.
    assert!(key.decrypt(&c1c2c3, fmt).is_err());

    let strict = Sm2CipherFormat {
        accept_either_prefix: false,
        ..Sm2CipherFormat::default()
    };
    assert!(key.decrypt(&no_prefix, strict).is_err());
    assert!(key.decrypt(&c1c3c2, strict).is_ok());
    let strict_bare = Sm2CipherFormat {
        accept_either_prefix: false,
        ..bare
    };
    assert!(key.decrypt(&c1c3c2, strict_bare).is_err());
    assert!(key.decrypt(&no_prefix, strict_bare).is_ok());
}
