//! The Tongban process: the HTTP stack, listeners, TLS and logging that `tongban serve` runs.
//! The command line itself is in `main.rs`; everything here is reachable from tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod envelope;
pub mod keys;
pub mod keys_cli;
pub mod pii;
pub mod platform;
pub mod serve;
pub mod server;
pub mod tls;
