//! 社保缴费记录查询: a citizen's social-insurance contribution records, fetched from the
//! provincial system behind Tongban's gateway (a demo business service on `tongban-sdk`).
//!
//! - `GET /api/v1/contribution-records?from=YYYY-MM&to=YYYY-MM[&insurance_type=…]`: the
//!   caller's own records, for the person the gateway vouches for (`caller_person` routes);
//! - `POST /api/v1/contribution-record-queries` `{"id_number", "name", "from", "to"}`: a named
//!   person's records (a family member who authorised it); names and ID numbers come back
//!   masked unless the queried person is the caller.
//!
//! The province is reached only through the SDK's third-party client, whose 300xx codes reach
//! the citizen unchanged. Every query sent to the province is written to an audit log
//! ([`query_log`]) that holds a blind index of the queried ID number, never the number or the
//! name; logs carry neither unmasked.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tongban_social_insurance::{Config, IndexKey, Platform, serve};
//! # let keys = vec![];
//! let config = Config::new(
//!     "sqlite://social-insurance.db",
//!     "http://127.0.0.1:18080",
//!     IndexKey::from_hex(1, "000102030405060708090a0b0c0d0e0f")?,
//!     Platform::Keys(keys),
//! );
//! let service = serve(config).await?;
//! println!("listening on {}", service.addr());
//! service.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod app;
pub mod codes;
mod config;
mod province;
pub mod query;
pub mod query_log;
mod records;
mod routes;
mod server;

pub use config::{Config, ConfigError, DEFAULT_SERVICE_NAME, IndexKey, Platform, province_config};
pub use routes::{routes, routes_for};
pub use server::{RunningService, ServeError, serve};
