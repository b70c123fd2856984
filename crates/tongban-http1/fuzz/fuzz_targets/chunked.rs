//! The chunked decoder fed arbitrary bytes in arbitrary pieces: never panics, never yields
//! more than its limit, reads alike however the bytes arrive, and round-trips a chunked body
//! (`tongban_http1::fuzzing::chunked`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_http1::fuzzing::chunked(data));
