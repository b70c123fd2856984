//! JSON string literals written straight into a line, shared by the log formatter, the
//! request context and the access line.

use std::fmt::Write as _;

/// `s` as a JSON string literal.
pub(crate) fn push_str_json(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut from = 0;
    let mut i = 0;
    while i < bytes.len() {
        // Eight bytes at a time while none needs escaping (most of every line); a last,
        // shorter piece is padded with a byte that needs none (byte by byte: copying a
        // piece of variable length is a call to memcpy).
        let word = match bytes[i..].first_chunk::<8>() {
            Some(w) => u64::from_le_bytes(*w),
            None => bytes[i..]
                .iter()
                .rev()
                .fold(u64::from_le_bytes([b'a'; 8]), |w, &b| {
                    (w << 8) | u64::from(b)
                }),
        };
        if !needs_escape(word) {
            i = (i + 8).min(bytes.len());
            continue;
        }
        let b = bytes[i];
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f | 0x7f => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[from..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        i += 1;
        from = i;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

/// Whether any of eight bytes is `"`, `\`, a control byte (below 0x20) or DEL. Bytes of
/// multi-byte UTF-8 (0x80 and up) never match, so a chunk may split a character.
pub(crate) fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Non-zero exactly when some byte of `x` is zero (the classic SWAR test; bytes at or
    // above 0x80 are masked out by `!x`); the same with 0x20 finds a byte below 0x20.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let below_space = word.wrapping_sub(ONES * 0x20) & !word & HIGH;
    (zero(word ^ (ONES * u64::from(b'"')))
        | zero(word ^ (ONES * u64::from(b'\\')))
        | zero(word ^ (ONES * 0x7f))
        | below_space)
        != 0
}
