//! The worked examples of docs/crypto.md, computed by the JS client, checked by the Rust code.

use tongban_crypto::{
    Sm4Key,
    envelope::{EnvelopeKeySet, EnvelopeSession, ResponseEnvelope, open_request_json},
    keyring::{RootKey, kcv_of},
    sm2::{Sm2CipherFormat, Sm2PrivateKey},
    vault::{FieldCiphertext, FieldRef, StaticKeys, Vault},
};

const VAULT_TEXT: &str =
    "AQhwaWktZGF0YQAAAAEAAQIDBAUGBwgJCgumd-7K-V-0OculRX_iislWE8-hE4oUWir9GBrWYdAMpVjN";

fn doc_keys() -> StaticKeys {
    let mut keys = StaticKeys::new();
    keys.insert(
        "pii-data",
        1,
        Sm4Key::from_bytes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    )
    .insert("pii-index", 1, Sm4Key::from_bytes([0x11; 16]));
    keys
}

#[test]
fn vault_worked_example() {
    let keys = doc_keys();
    let vault = Vault::new(&keys, "pii-data", "pii-index");
    let field = FieldRef {
        table: "citizens",
        column: "id_number",
        row_id: "42",
    };
    assert_eq!(
        vault
            .decrypt_str(&field, VAULT_TEXT)
            .expect("decrypts")
            .as_str(),
        "11010519491231002X"
    );
    let parsed = FieldCiphertext::from_text(VAULT_TEXT).expect("parses");
    assert_eq!(
        tongban_crypto::encoding::hex_encode(&parsed.header()),
        "01087069692d6461746100000001"
    );
    assert_eq!(
        vault
            .blind_index("citizens", "id_number", "11010519491231002X")
            .expect("index")
            .value,
        "ZIwKilbakESKPkz_wgmMqpMCQzmVEguijWsHj31ubDQ"
    );
}

#[test]
fn envelope_worked_example() {
    let request = r#"{"kid":"k1","key":"BATr/HGOjReYYgQyJo53/rZBXi7eDgc8D09kDs0uFJpz6Fj52B5UMKV7Ntqrj5UKPGTm7mpjCU2ZKDr/dn4STfBEI7RI0YtKGoaw4mTpKAB4AyQ6Wo2dCw6JU7/k6Sitz0XFSrx5ESX7ybrp7MimVVk=","iv":"AAECAwQFBgcICQoL","data":"LgN28NzUiyVGZT8LP+Tvd/UjTH64e5VEtll324G9Fym1"}"#;
    let mut keys = EnvelopeKeySet::new();
    let d = tongban_crypto::encoding::hex_decode(
        "3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8",
        "d",
    )
    .expect("hex");
    keys.insert("k1", Sm2PrivateKey::from_bytes(&d).expect("key"));
    let (body, session) =
        open_request_json(&keys, request.as_bytes(), Sm2CipherFormat::default()).expect("opens");
    assert_eq!(body.as_slice(), "{\"name\":\"张三\"}".as_bytes());
    assert_eq!(
        tongban_crypto::encoding::hex_encode(session.key().expose()),
        "0123456789abcdeffedcba9876543210"
    );
    let response = ResponseEnvelope {
        iv: "CwoJCAcGBQQDAgEA".to_owned(),
        data: "w0qMRhmEF99rEzAh4hOLc83fkPd28Vj0pxc=".to_owned(),
    };
    let client = EnvelopeSession::from_parts("k1", session.key().clone());
    assert_eq!(
        client.open_response(&response).expect("opens").as_slice(),
        b"{\"code\":0}"
    );
}

#[test]
fn kcv_example() {
    // KCV of the all-zero key, quoted in the docs as an example of the format.
    let kcv = kcv_of(&Sm4Key::from_bytes([0; 16]));
    let root = RootKey::from_key(Sm4Key::from_bytes([0; 16]));
    assert_eq!(root.kcv(), kcv);
    assert_eq!(kcv.to_string(), "fa3c797a");
    // Same value from the definition: HMAC-SM3(key, label), first 4 bytes.
    let mac = tongban_crypto::sm3::hmac_sm3(&[0; 16], &[b"tongban/key-check-value/v1"]);
    assert_eq!(tongban_crypto::encoding::hex_encode(&mac[..4]), "fa3c797a");
}

/// docs/services.md's caller context, computed with Python's hashlib (OpenSSL's SM3).
#[test]
fn caller_context_worked_example() {
    use tongban_crypto::caller_context::{CallerContext, ContextKey, seal, service_key, verify};
    let platform: Vec<u8> = (0u8..16).collect();
    assert_eq!(
        tongban_crypto::encoding::hex_encode(&service_key(&platform, "social-insurance")),
        "97ac6640976ee348e6e5e7eef1d553c7e2d3fd5c6a44771fe53e88bca17f4f1e"
    );
    let header = "v1.1.eyJzdmMiOiJzb2NpYWwtaW5zdXJhbmNlIiwic3ViIjoiM21KcjdBb1VYeDVHeVc0YlM5V2I4a0dnMG9RMEFxOVp5cW54WXlSREZvRSIsImx2bCI6InJlYWxfbmFtZSIsImZhY2VfYXQiOm51bGwsInNpZCI6InMtN1FtMiIsImRldiI6IkQxIiwiYXBwIjpudWxsLCJwZXJzb24iOm51bGx9.eyJyb3V0ZSI6ImNvbnRyaWJ1dGlvbi1yZWNvcmRzIiwicmlkIjoici05MWIyIiwiaWF0IjoxNzk2MDAwMDAwMDAwLCJleHAiOjE3OTYwMDAwNjAwMDB9.yUcbdk3a6mj1cXFr7FkLgpDdrOHpX6Or3OvG14eWtNw";
    let key = ContextKey::derive(&platform, 1, "social-insurance");
    let ctx: CallerContext = verify(
        header,
        "social-insurance",
        |v| (v == 1).then(|| key.clone()),
        1_796_000_030_000,
    )
    .expect("verifies");
    assert_eq!(ctx.caller.lvl, "real_name");
    assert_eq!(ctx.caller.dev.as_deref(), Some("D1"));
    assert_eq!(ctx.request.route, "contribution-records");
    // The gateway's own sealing writes the same bytes.
    assert_eq!(seal(&ctx, &key), header);
}
