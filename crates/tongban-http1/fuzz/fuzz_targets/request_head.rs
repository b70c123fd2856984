//! The server's request-head parser: never panics, and a head it accepts keeps its promises
//! (`tongban_http1::fuzzing::request_head`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tongban_http1::fuzzing::request_head(data));
