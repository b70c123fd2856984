//! The service's own codes, in block a of Appendix A (hall-booking's are in block b, so one
//! deployment's registry holds both without a collision). An empty period is Appendix A's own
//! 10022 (未查询到数据), which clients already know.

use tongban_core::Code;
use tongban_core::code::RegistryError;
use tongban_sdk::codes::BusinessCodes;

/// 查询区间超过 5 年: `from` to `to` spans more than [`crate::query::MAX_MONTHS`] months.
pub const PERIOD_TOO_LONG: u32 = 11_001;
/// 起始月份晚于截止月份.
pub const PERIOD_REVERSED: u32 = 11_002;
/// 未查询到数据 (Appendix A, HTTP 200): no records in the period asked for.
pub const NO_RECORDS: Code = Code(10_022);

/// Every code of [`table`] with its default message.
const TABLE: &[(u32, &str)] = &[
    (PERIOD_TOO_LONG, "查询区间不能超过 5 年"),
    (PERIOD_REVERSED, "起始月份不能晚于截止月份"),
];

/// The service's codes, registered in block a; an error here is a bug caught at start.
pub fn table() -> Result<BusinessCodes, RegistryError> {
    BusinessCodes::new("a", TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_sit_in_block_a() {
        let codes = table().expect("valid table");
        assert_eq!(codes.error(PERIOD_TOO_LONG).code, Code(PERIOD_TOO_LONG));
        assert_eq!(
            codes.error(PERIOD_REVERSED).message(),
            "起始月份不能晚于截止月份"
        );
        assert_eq!(NO_RECORDS.default_msg(), "未查询到数据");
    }
}
