//! The upstream client's answer-head parser: never panics, and an answer it accepts is
//! framed as RFC 9112 says (`tongban_http1::fuzzing::response_head`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_http1::fuzzing::response_head(data));
