//! A provincial social-insurance system, simulated, for development, demos and tests of the
//! services that call such systems: a seeded population ([`population`]), deterministic
//! contribution records ([`records`]) behind the system's JSON API, and faults injected per
//! request or for the next requests ([`fault`]) so that every failure a real system shows can
//! be produced on demand. Never exposed in production; logs never carry a name or an unmasked
//! ID number.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let sim = tongban_province_sim::serve(listener)?;
//! println!("{}/api/v1/contribution-record-queries", sim.url());
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod app;
pub mod fault;
pub mod population;
pub mod records;
mod server;

pub use app::{MAX_MONTHS, Stats, codes};
pub use fault::{Fault, FaultKind};
pub use population::{Person, find, persons};
pub use server::{ProvinceSim, SimOptions, serve, serve_with};
