//! Digital envelope: seal/open both ways, every failure one typed error without payload.

use tongban_crypto::{
    encoding::{b64_decode, b64_encode},
    envelope::{
        EnvelopeFailure, EnvelopeKeySet, EnvelopeSession, RequestEnvelope, open_request,
        open_request_json, seal_request,
    },
    sm2::{CipherOrder, Sm2CipherFormat, Sm2PrivateKey},
};

const BODY: &[u8] = "{\"idNumber\":\"11010519491231002X\",\"name\":\"张三\"}".as_bytes();

fn server() -> EnvelopeKeySet {
    let mut keys = EnvelopeKeySet::new();
    keys.insert("k1", Sm2PrivateKey::generate().expect("keygen"));
    keys
}

fn public(keys: &EnvelopeKeySet, kid: &str) -> tongban_crypto::sm2::Sm2PublicKey {
    let published = keys.published();
    let hex = &published
        .iter()
        .find(|p| p.kid == kid)
        .expect("published")
        .public_key;
    tongban_crypto::sm2::Sm2PublicKey::from_bytes(
        &tongban_crypto::encoding::hex_decode(hex, "pk").expect("hex"),
    )
    .expect("point")
}

#[test]
fn request_and_response_round_trip() {
    let keys = server();
    let fmt = Sm2CipherFormat::default();
    let (env, client) = seal_request(&public(&keys, "k1"), "k1", BODY, fmt).expect("seals");
    let json = serde_json::to_vec(&env).expect("json");
    let (plain, session) = open_request_json(&keys, &json, fmt).expect("opens");
    assert_eq!(plain.as_slice(), BODY);
    assert_eq!(b64_decode(&env.key, "k").expect("b64")[0], 0x04);

    let resp = session
        .seal_response(b"{\"code\":0}")
        .expect("seals response");
    assert_eq!(
        client
            .open_response(&resp)
            .expect("client opens")
            .as_slice(),
        b"{\"code\":0}"
    );
    // Fresh nonce per response.
    assert_ne!(
        resp.iv,
        session.seal_response(b"{\"code\":0}").expect("seals").iv
    );
    // A response is not accepted as a request body of the same exchange (direction in AAD).
    let as_request = RequestEnvelope {
        kid: env.kid.clone(),
        key: env.key.clone(),
        iv: resp.iv.clone(),
        data: resp.data.clone(),
    };
    assert_eq!(
        open_request(&keys, &as_request, fmt)
            .err()
            .map(|e| e.reason()),
        Some(EnvelopeFailure::Authentication)
    );
}

#[test]
fn both_orders_and_prefix_options() {
    let keys = server();
    for order in [CipherOrder::C1C3C2, CipherOrder::C1C2C3] {
        for emit_prefix in [true, false] {
            let fmt = Sm2CipherFormat {
                order,
                emit_prefix,
                accept_either_prefix: true,
            };
            let (env, _) = seal_request(&public(&keys, "k1"), "k1", BODY, fmt).expect("seals");
            let (plain, _) = open_request(&keys, &env, fmt).expect("opens");
            assert_eq!(plain.as_slice(), BODY);
        }
    }
}

#[test]
fn every_failure_is_the_one_typed_error_without_payload() {
    let keys = server();
    let fmt = Sm2CipherFormat::default();
    let (env, _) = seal_request(&public(&keys, "k1"), "k1", BODY, fmt).expect("seals");
    let reason = |e: &RequestEnvelope| open_request(&keys, e, fmt).err().map(|e| e.reason());

    let mut unknown = env.clone();
    unknown.kid = "k9".to_owned();
    assert_eq!(reason(&unknown), Some(EnvelopeFailure::UnknownKid));

    let mut bad_b64 = env.clone();
    bad_b64.data = "%%%".to_owned();
    assert_eq!(reason(&bad_b64), Some(EnvelopeFailure::BadEncoding));

    let mut short_iv = env.clone();
    short_iv.iv = b64_encode(&[0u8; 8]);
    assert_eq!(reason(&short_iv), Some(EnvelopeFailure::BadNonce));

    let mut bad_key = env.clone();
    let mut k = b64_decode(&env.key, "k").expect("b64");
    k[70] ^= 1; // inside C3
    bad_key.key = b64_encode(&k);
    assert_eq!(reason(&bad_key), Some(EnvelopeFailure::KeyDecryption));

    let mut off_curve = env.clone();
    k = b64_decode(&env.key, "k").expect("b64");
    k[5] ^= 1; // C1.x: the point leaves the curve
    off_curve.key = b64_encode(&k);
    assert_eq!(reason(&off_curve), Some(EnvelopeFailure::KeyDecryption));

    let mut long_key = env.clone();
    let pk = public(&keys, "k1");
    long_key.key = b64_encode(&pk.encrypt(&[7u8; 32], fmt).expect("encrypts"));
    assert_eq!(reason(&long_key), Some(EnvelopeFailure::BadKeyLength));

    let mut tampered = env.clone();
    let mut d = b64_decode(&env.data, "d").expect("b64");
    d[0] ^= 1;
    tampered.data = b64_encode(&d);
    assert_eq!(reason(&tampered), Some(EnvelopeFailure::Authentication));

    let mut other_kid = env.clone();
    let mut keys2 = server();
    keys2.insert("k2", keys_private_copy(&keys));
    other_kid.kid = "k2".to_owned();
    assert_eq!(
        open_request(&keys2, &other_kid, fmt)
            .err()
            .map(|e| e.reason()),
        Some(EnvelopeFailure::Authentication),
        "kid is bound into the AAD"
    );

    for json in [
        &b"not json"[..],
        b"{}",
        b"{\"kid\":\"k1\",\"key\":\"\",\"iv\":\"\"}",
        b"{\"kid\":\"k1\",\"key\":\"\",\"iv\":\"\",\"data\":\"\",\"extra\":1}",
        b"{\"kid\":1,\"key\":\"\",\"iv\":\"\",\"data\":\"\"}",
    ] {
        let err = open_request_json(&keys, json, fmt).expect_err("malformed");
        assert_eq!(err.reason(), EnvelopeFailure::MalformedJson);
    }

    // Nothing of the payload or the envelope fields appears in the error text.
    let err = open_request(&keys, &tampered, fmt).expect_err("fails");
    let text = format!("{err} {err:?}");
    assert!(!text.contains(&tampered.data[..16]) && !text.contains("11010519"));

    let session = EnvelopeSession::from_parts("k1", tongban_crypto::Sm4Key::from_bytes([3; 16]));
    assert!(session.open_response_json(b"[]").is_err());
}

fn keys_private_copy(keys: &EnvelopeKeySet) -> Sm2PrivateKey {
    use tongban_crypto::envelope::EnvelopeKeys;
    let k = keys.private_key("k1").expect("k1");
    Sm2PrivateKey::from_bytes(k.to_bytes().as_slice()).expect("copy")
}
