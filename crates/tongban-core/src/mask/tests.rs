use super::*;
use proptest::prelude::*;
use std::io::Write;

/// Strategies for realistic citizen data, shared with the integration tests' copy.
pub(crate) fn id_number() -> impl Strategy<Value = String> {
    (
        110000u32..660000,
        1930u32..2020,
        1u32..13,
        1u32..29,
        0u32..1000,
    )
        .prop_map(|(region, y, m, d, seq)| {
            crate::idcard::with_check_char(&format!("{region:06}{y:04}{m:02}{d:02}{seq:03}"))
                .expect("17 digits")
        })
}

pub(crate) fn phone() -> impl Strategy<Value = String> {
    (3u8..10, 0u64..1_000_000_000).prop_map(|(second, rest)| format!("1{second}{rest:09}"))
}

pub(crate) fn name() -> impl Strategy<Value = String> {
    let surnames = prop::sample::select(vec!['张', '王', '李', '赵', '欧', '陈', '刘', '黄']);
    (surnames, prop::collection::vec(0x4E00u32..0x9FA5, 1..3)).prop_map(|(s, rest)| {
        let mut n = String::from(s);
        n.extend(rest.into_iter().filter_map(char::from_u32));
        n
    })
}

#[test]
fn names_keep_first_and_last() {
    assert_eq!(mask_name("张三"), "张*");
    assert_eq!(mask_name("张三丰"), "张*丰");
    assert_eq!(mask_name("欧阳娜娜"), "欧**娜");
    assert_eq!(mask_name("王"), "*");
}

#[test]
fn ids_phones_cards_emails_addresses() {
    assert_eq!(
        mask_as(Kind::IdNumber, "11010119900307777X"),
        "110***********777X"
    );
    assert_eq!(mask_phone("13812341234"), "138****1234");
    assert_eq!(
        mask_as(Kind::BankCard, "6222021234567890123"),
        "622202*********0123"
    );
    assert_eq!(mask_email("zhangsan@example.com"), "z*******@example.com");
    assert_eq!(
        mask_address("北京市东城区东华门街道1号"),
        "北京市东城区*******"
    );
    assert_eq!(mask_as(Kind::Secret, "hunter2"), SECRET_MASK);
}

#[test]
fn checksum_decides_what_an_18_digit_run_is() {
    assert!(is_valid_id_number(b"11010519491231002X"));
    assert!(!is_valid_id_number(b"110105194912310021"));
    assert_eq!(
        mask_text("证件 11010519491231002X 已核验"),
        "证件 110***********002X 已核验"
    );
    // A checksum-invalid 18-digit order number that fails Luhn stays readable.
    assert_eq!(
        mask_text("order 110105194912310021"),
        "order 110105194912310021"
    );
}

#[test]
fn free_text_phones_in_all_spellings() {
    assert_eq!(mask_text("tel 13812341234."), "tel 138****1234.");
    assert_eq!(mask_text("tel +8613812341234"), "tel +86138****1234");
    assert_eq!(mask_text("tel 138-1234-1234"), "tel 138****1234");
    assert_eq!(mask_text("tel 138 1234 1234 end"), "tel 138****1234 end");
    // Short numbers, ports and years are left alone.
    assert_eq!(
        mask_text("port 8443 in 2026, 200 OK"),
        "port 8443 in 2026, 200 OK"
    );
}

#[test]
fn secrets_after_keys_are_hidden() {
    assert_eq!(mask_text("password=hunter2&x=1"), "password=******&x=1");
    assert_eq!(
        mask_text(r#"{"db_password": "p@ss w"}"#),
        r#"{"db_password": "******"}"#
    );
    assert_eq!(
        mask_text("Authorization: Bearer abc.def.ghi"),
        "Authorization: ******"
    );
    assert_eq!(mask_text("got Bearer abc.def"), "got Bearer ******");
    assert_eq!(mask_text("name=张三丰 ok"), "name=张*丰 ok");
    // A URL scheme is not a key/value pair.
    assert_eq!(
        mask_text("see https://example.com/x"),
        "see https://example.com/x"
    );
}

#[test]
fn queries_are_decoded_then_masked() {
    let q = "name=%E5%BC%A0%E4%B8%89%E4%B8%B0&id=11010519491231002X&page=2&q=%E7%8E%8B%E4%BA%94";
    assert_eq!(
        mask_query(q),
        "name=张*丰&id=110***********002X&page=2&q=王*"
    );
    assert_eq!(
        mask_path("/api/v1/citizens/11010519491231002X"),
        "/api/v1/citizens/110***********002X"
    );
}

#[test]
fn urls_hide_passwords() {
    assert_eq!(
        mask_url("postgres://tongban:s3cret@db.local:5432/tongban?sslmode=require&password=x"),
        "postgres://tongban:******@db.local:5432/tongban?sslmode=require&password=******"
    );
    assert_eq!(
        mask_url("sqlite:///var/lib/tongban/tongban.db"),
        "sqlite:///var/lib/tongban/tongban.db"
    );
}

#[test]
fn json_fields_are_masked_by_name_and_shape() {
    let mut v = serde_json::json!({
        "fields": {"message": "Login of 13812341234.", "real_name": "李四", "mobile": 13812341234u64,
                   "access_token": {"nested": "x"}, "count": 3},
        "level": "INFO"
    });
    mask_json(&mut v);
    assert_eq!(v["fields"]["message"], "Login of 138****1234.");
    assert_eq!(v["fields"]["real_name"], "李*");
    assert_eq!(v["fields"]["mobile"], "138****1234");
    assert_eq!(v["fields"]["access_token"], SECRET_MASK);
    assert_eq!(v["fields"]["count"], 3);
}

#[test]
fn writer_masks_split_writes_and_partial_lines() {
    let mut sink = Vec::new();
    {
        let mut w = MaskingWriter::new(&mut sink);
        w.write_all(b"{\"fields\":{\"message\":\"id 110105194")
            .expect("write");
        w.write_all(b"91231002X\"}}\nplain 13812341234")
            .expect("write");
    }
    let out = String::from_utf8(sink).expect("utf8");
    assert!(!out.contains("11010519491231002X"), "{out}");
    assert!(!out.contains("13812341234"), "{out}");
    assert_eq!(out.lines().count(), 2);
}

#[test]
fn kinds_of_keys() {
    assert_eq!(kind_of_key("X-Api-Key"), Some(Kind::Secret));
    assert_eq!(kind_of_key("id_token"), Some(Kind::Secret));
    assert_eq!(kind_of_key("user_phone"), Some(Kind::Phone));
    assert_eq!(kind_of_key("sfzh"), Some(Kind::IdNumber));
    assert_eq!(
        kind_of_key("nickname"),
        None,
        "only whole words after an underscore match"
    );
    assert_eq!(kind_of_key("request_id"), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_pii_survives_any_log_line(id in id_number(), ph in phone(), nm in name(),
                                    noise in "[a-z ]{0,12}") {
        let lines = [
            format!("{{\"fields\":{{\"message\":\"{noise} {id} {ph}\",\"name\":\"{nm}\"}}}}"),
            format!("{noise}query=idcard={id}&mobile={ph}&xm={nm}"),
            format!("{{\"fields\":{{\"user\":{{\"id_card\":\"{id}\",\"phone\":{ph}}}}}}}"),
        ];
        for line in lines {
            let mut sink = Vec::new();
            MaskingWriter::new(&mut sink).write_all(format!("{line}\n").as_bytes()).expect("write");
            let out = String::from_utf8(sink).expect("utf8");
            prop_assert!(!out.contains(&id), "id leaked: {out}");
            prop_assert!(!out.contains(&ph), "phone leaked: {out}");
            prop_assert!(!out.contains(&nm), "name leaked: {out}");
        }
    }

    #[test]
    fn masking_never_panics(s in "\\PC{0,200}") {
        let _ = mask_text(&s);
        let _ = mask_untrusted(&s);
        let _ = mask_query(&s);
        let _ = mask_url(&s);
        let _ = mask_line(&s);
    }
}

#[test]
fn span_names_and_socket_addresses_stay_readable() {
    let line = r#"{"message":"Listening.","addr":"0.0.0.0:8443","span":{"name":"request","request_id":"ab","name_of":"x"},"spans":[{"name":"conn","user_name":"王小明"}]}"#;
    let v: serde_json::Value = serde_json::from_str(&mask_line(line)).expect("json");
    assert_eq!(v["addr"], "0.0.0.0:8443");
    assert_eq!(v["span"]["name"], "request");
    assert_eq!(v["spans"][0]["name"], "conn");
    assert_eq!(v["spans"][0]["user_name"], "王*明");
    // A top-level `name` field is a person's name until proven otherwise.
    let v: serde_json::Value =
        serde_json::from_str(&mask_line(r#"{"name":"王小明"}"#)).expect("json");
    assert_eq!(v["name"], "王*明");
}

#[test]
fn prose_about_keys_is_not_a_secret() {
    assert_eq!(
        mask_text("cannot assemble the root key: only 1 of 2"),
        "cannot assemble the root key: only 1 of 2"
    );
    assert_eq!(
        mask_text("secret_key=abc api-key: xyz"),
        "secret_key=****** api-key: ******"
    );
}
