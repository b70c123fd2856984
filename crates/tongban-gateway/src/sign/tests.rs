use super::canonical::*;
use tongban_crypto::sm3::sm3;

/// The vector of `docs/signing.md`: if this changes, the document must change with it.
const VECTOR_KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const VECTOR: Signed<'static> = Signed {
    key_id: "sk-20261128-0001",
    timestamp: "1764288000",
    nonce: "n0nce-AbCdEf123456",
    signature: "",
};
const VECTOR_BODY: &str = r#"{"name":"张三","amount":12}"#;

#[test]
fn canonical_query_sorts_items_as_sent() {
    assert_eq!(
        canonical_query(Some("b=2&a=1&a=0&&c=%E4%B8%AD")),
        "a=0&a=1&b=2&c=%E4%B8%AD"
    );
    assert_eq!(canonical_query(None), "");
    assert_eq!(canonical_query(Some("")), "");
}

#[test]
fn the_documented_vector_holds() {
    let text = request_string(
        "post",
        "/api/v1/applications",
        Some("page=2&size=10"),
        VECTOR_BODY.as_bytes(),
        &VECTOR,
    );
    let body_digest = hex(&sm3(VECTOR_BODY.as_bytes()));
    assert_eq!(
        text,
        format!(
            "TB1-HMAC-SM3\nPOST\n/api/v1/applications\npage=2&size=10\n{body_digest}\n1764288000\nn0nce-AbCdEf123456\nsk-20261128-0001"
        )
    );
    // Computed independently with OpenSSL's SM3 (Python hashlib + hmac) from the same text.
    assert_eq!(
        body_digest,
        "71797552d1d37eb4aaa984b30c42c436f621ec3c821bb5cf3a0050df068e0c4d"
    );
    let sig = sign(VECTOR_KEY, &text);
    assert_eq!(
        sig,
        "088ad9f61ebbd1237fe7d6a7fbe78854d0cf05a7c9e96a76e92d58ed27563d4d"
    );
    assert_eq!(verify(VECTOR_KEY, &text, &sig), Ok(()));
    let resp = response_string(
        200,
        br#"{"code":0}"#,
        1_764_288_001,
        VECTOR.nonce,
        VECTOR.key_id,
    );
    assert_eq!(
        sign(VECTOR_KEY, &resp),
        "be2402389f036e63f7e93eecc4023ced1cd920cfcd24694edac4b959b6b9c63b"
    );
}

#[test]
fn sm3_is_the_standard_one() {
    // GB/T 32905-2016 appendix A, example 1.
    assert_eq!(
        hex(&sm3(b"abc")),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    );
}

#[test]
fn any_change_breaks_the_signature() {
    let s = VECTOR;
    let good = request_string("GET", "/api/v1/items", Some("a=1"), b"", &s);
    let sig = sign(VECTOR_KEY, &good);
    for bad in [
        request_string("GET", "/api/v1/items", Some("a=2"), b"", &s),
        request_string("GET", "/api/v1/itemz", Some("a=1"), b"", &s),
        request_string("PUT", "/api/v1/items", Some("a=1"), b"", &s),
        request_string("GET", "/api/v1/items", Some("a=1"), b"x", &s),
        request_string(
            "GET",
            "/api/v1/items",
            Some("a=1"),
            b"",
            &Signed {
                nonce: "other-nonce-123456",
                ..s
            },
        ),
    ] {
        assert_eq!(verify(VECTOR_KEY, &bad, &sig), Err(Verdict::Invalid));
    }
    assert_eq!(verify(b"another key", &good, &sig), Err(Verdict::Invalid));
    assert_eq!(verify(VECTOR_KEY, &good, "zz"), Err(Verdict::Malformed));
}

#[test]
fn form_and_window_are_checked() {
    let sig = "a".repeat(64);
    let ok = Signed {
        signature: &sig,
        ..VECTOR
    };
    let now = 1_764_288_000;
    assert_eq!(check_form(&ok, now), Ok(()));
    assert_eq!(check_form(&ok, now + 300), Ok(()));
    assert_eq!(check_form(&ok, now - 300), Ok(()));
    assert_eq!(check_form(&ok, now + 301), Err(Verdict::Stale));
    assert_eq!(check_form(&ok, now - 301), Err(Verdict::Stale));
    assert_eq!(
        check_form(
            &Signed {
                nonce: "short",
                ..ok.clone()
            },
            now
        ),
        Err(Verdict::Malformed)
    );
    assert_eq!(
        check_form(
            &Signed {
                timestamp: "-5",
                ..ok.clone()
            },
            now
        ),
        Err(Verdict::Malformed)
    );
    assert_eq!(
        check_form(
            &Signed {
                signature: "abc",
                ..ok
            },
            now
        ),
        Err(Verdict::Malformed)
    );
}
