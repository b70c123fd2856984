use super::*;

fn field_of(e: Invalid) -> (&'static str, &'static str) {
    match e {
        Invalid::Field { field, reason, .. } => (field, reason),
        Invalid::Period(code) => panic!("a field error, not {code}"),
    }
}

#[test]
fn months_are_yyyy_mm_in_ascii_digits() {
    let m = Month::parse("2024-03").expect("valid");
    assert_eq!(m.to_string(), "2024-03");
    for bad in [
        "2024-3",
        "2024-13",
        "2024-00",
        "24-03",
        "2024/03",
        "２０２４-０３",
        "2024-03 ",
        "1899-12",
        "",
        "2024-0a",
        "+024-03",
    ] {
        assert_eq!(Month::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_period_is_in_order_and_at_most_five_years() {
    let p = Period::parse(Some("2020-01"), Some("2024-12")).expect("60 months");
    assert_eq!(p.from.span(p.to), 60);
    assert!(p.contains(Month::parse("2022-06").expect("m")));
    assert!(!p.contains(Month::parse("2025-01").expect("m")));
    assert_eq!(
        Period::parse(Some("2020-01"), Some("2025-01")),
        Err(Invalid::Period(codes::PERIOD_TOO_LONG))
    );
    assert_eq!(
        Period::parse(Some("2024-02"), Some("2024-01")),
        Err(Invalid::Period(codes::PERIOD_REVERSED))
    );
    assert_eq!(
        field_of(Period::parse(None, Some("2024-01")).expect_err("missing")),
        ("from", "missing")
    );
    assert_eq!(
        field_of(Period::parse(Some("2024-01"), Some("soon")).expect_err("bad")),
        ("to", "format")
    );
}

#[test]
fn id_numbers_need_their_check_character() {
    assert_eq!(
        id_number(" 11010519491231002x ").expect("valid").as_str(),
        "11010519491231002X"
    );
    assert_eq!(
        field_of(id_number("110105194912310021").expect_err("check")),
        ("id_number", "check")
    );
    for bad in [
        "",
        "1101051949123100",
        "１１０１０５１９４９１２３１００２Ｘ",
        "11010519491231002X' OR '1'='1",
        "11010519491231002\u{0}",
        "<script>alert(1)</script>",
        &"1".repeat(10_000),
    ] {
        assert_eq!(
            field_of(id_number(bad).expect_err("format")),
            ("id_number", "format"),
            "{bad:?}"
        );
    }
}

#[test]
fn names_are_letters_only() {
    assert_eq!(name(" 张伟 ").expect("valid").as_str(), "张伟");
    assert!(name("阿依古丽·买买提").is_ok());
    for (bad, reason) in [
        ("", "length"),
        ("   ", "length"),
        (&"张".repeat(33), "length"),
        ("<script>", "characters"),
        ("张伟'; DROP TABLE si_query_log;--", "characters"),
        ("张\u{0}伟", "characters"),
        ("张伟😀", "characters"),
        ("张伟1", "characters"),
    ] {
        assert_eq!(
            field_of(name(bad).expect_err("refused")),
            ("name", reason),
            "{bad:?}"
        );
    }
}

#[test]
fn the_query_string_takes_three_known_parameters() {
    let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let q = OwnQuery::from_params(&params(&[
        ("from", "2024-01"),
        ("to", "2024-03"),
        ("insurance_type", "养老保险"),
    ]))
    .expect("valid");
    assert_eq!(q.insurance_type, Some(InsuranceType::Pension));
    let q = OwnQuery::from_params(&params(&[
        ("from", "2024-01"),
        ("to", "2024-03"),
        ("insurance_type", "medical"),
    ]))
    .expect("valid");
    assert_eq!(q.insurance_type, Some(InsuranceType::Medical));
    assert_eq!(
        field_of(
            OwnQuery::from_params(&params(&[
                ("from", "2024-01"),
                ("to", "2024-03"),
                ("insurance-type", "medical"),
            ]))
            .expect_err("unknown")
        ),
        ("?", "unknown")
    );
    assert_eq!(
        field_of(
            OwnQuery::from_params(&params(&[
                ("from", "2024-01"),
                ("to", "2024-03"),
                ("insurance_type", "car"),
            ]))
            .expect_err("value")
        ),
        ("insurance_type", "value")
    );
}

#[test]
fn refusals_name_the_field_and_never_the_value() {
    let codes = codes::table().expect("codes");
    let e = id_number("11010519491231002Y")
        .expect_err("refused")
        .into_error(&codes);
    assert_eq!(e.code, Code::BAD_PARAMETER);
    assert!(!e.message().contains("1101"), "{}", e.message());
    assert_eq!(
        e.data,
        Some(serde_json::json!({"field": "id_number", "reason": "format"}))
    );
    let e = Invalid::Period(codes::PERIOD_TOO_LONG).into_error(&codes);
    assert_eq!(e.code, Code(codes::PERIOD_TOO_LONG));
}
