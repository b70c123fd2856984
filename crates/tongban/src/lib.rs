//! The Tongban process: configuration, which parts start and how they are wired (`serve`), the
//! key commands.
//! The command line itself is in `main.rs`; everything here is reachable from tests.
#![forbid(unsafe_code)]

pub mod app;
pub mod caller_keys;
pub mod demo;
pub mod keys_cli;
pub mod platform;
pub mod serve;
