//! The shared vocabulary of Tongban: the `{code, msg, data}` envelope and Appendix A's codes,
//! auth levels, masking of personal data, UTF-8 helpers, configuration types, and the time as
//! read once per task poll.
#![forbid(unsafe_code)]

pub mod auth;
pub mod clock;
pub mod code;
pub mod config;
pub mod date;
pub mod envelope;
pub mod extract;
pub mod header;
pub mod idcard;
pub mod mask;
pub mod net;
pub mod path;
pub mod routes;

pub use auth::AuthLevel;
pub use code::{Code, CodeRegistry};
pub use envelope::{ApiError, Envelope};
