use super::*;

const TODAY: (u32, u32, u32) = (2026, 11, 28);

#[test]
fn gb11643_examples_pass_and_each_defect_is_named() {
    // The worked example of GB 11643-1999.
    let info = check_id_number("11010519491231002X", TODAY).expect("valid");
    assert_eq!(info.birth, (1949, 12, 31));
    assert!(!info.male);
    assert!(check_id_number("11010519491231002x", TODAY).is_ok());
    assert_eq!(
        check_id_number("110105194912310021", TODAY),
        Err(IdNumberError::Checksum)
    );
    assert_eq!(
        check_id_number("1101051949123100", TODAY),
        Err(IdNumberError::Shape)
    );
    assert_eq!(
        check_id_number("11010519491231002Y", TODAY),
        Err(IdNumberError::Shape)
    );
    // Province 99 does not exist; the digits are otherwise well formed.
    assert_eq!(
        check_id_number(&with_check("99010519491231002"), TODAY),
        Err(IdNumberError::Region)
    );
    assert_eq!(
        check_id_number(&with_check("11010519490230002"), TODAY),
        Err(IdNumberError::BirthDate)
    );
    assert_eq!(
        check_id_number(&with_check("11010520270101002"), TODAY),
        Err(IdNumberError::BirthDate)
    );
    assert_eq!(
        check_id_number(&with_check("11010518991231002"), TODAY),
        Err(IdNumberError::BirthDate)
    );
    assert!(
        check_id_number(&with_check("11010520000229002"), TODAY).is_ok(),
        "leap day"
    );
}

pub(crate) fn with_check(body: &str) -> String {
    tongban_core::idcard::with_check_char(body).expect("17 digits")
}

#[test]
fn names_and_dates() {
    assert!(check_name("张三"));
    assert!(check_name("阿依古丽·买买提"));
    assert!(!check_name("张"));
    assert!(!check_name("张3"));
    assert_eq!(civil_date(0), (1970, 1, 1));
    // 2026-11-28T16:00:00Z is already the 29th in Beijing.
    assert_eq!(civil_date(1_795_881_600_000), (2026, 11, 29));
}
