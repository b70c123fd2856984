//! Time arithmetic of the identity service, which keeps times as Unix milliseconds (the
//! clock itself is `tongban_core::clock::Clock`, injected).

/// Milliseconds in a number of seconds, saturating.
pub(crate) fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}
