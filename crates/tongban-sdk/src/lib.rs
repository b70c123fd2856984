//! What a team writes a business service behind Tongban's gateway with (`docs/services.md`):
//!
//! - [`platform::PlatformClient`]: the platform's admin API — register, heartbeat, deregister,
//!   and the service's caller-context keys;
//! - [`service::Registered`]: an instance kept registered while the service runs, and
//!   deregistered on shutdown;
//! - [`context::Caller`]: an axum extractor that verifies the gateway's caller context and
//!   refuses a request that did not come through the gateway;
//! - [`codes::BusinessCodes`]: the service's own codes, inside its block of Appendix A;
//! - the envelope and codes of `tongban_core`, and the third-party client of
//!   `tongban_governance`, re-exported.

pub mod codes;
pub mod context;
pub mod platform;
pub mod service;

pub use tongban_core::envelope::Ok as Done;
pub use tongban_core::{ApiError, AuthLevel, Code, Envelope};
pub use tongban_governance::registry::Registration;
pub use tongban_governance::third_party;
