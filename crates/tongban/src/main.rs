//! The `tongban` command.
#![forbid(unsafe_code)]

fn main() {}
