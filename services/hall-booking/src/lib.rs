//! 办事大厅预约: citizens book a 30-minute slot at one of a district's government service
//! halls (北京市东城区's 政务服务中心 and 街道 centres), a demo business service built on
//! `tongban-sdk`. It knows a citizen only by the gateway's pseudonym for this service (no
//! personal data is stored), refuses any request that did not come through the gateway, and
//! keeps its own tables through `Store::migrate_component` on SQLite or PostgreSQL.
//!
//! | method and path | level | what |
//! |---|---|---|
//! | `GET /api/v1/service-halls` | anonymous | the halls, hours and matters handled |
//! | `GET /api/v1/service-halls/{hall_id}/time-slots?date=` | anonymous | a day's slots and seats left |
//! | `POST /api/v1/bookings` (+ `Idempotency-Key`) | face_verified, signed | book a slot |
//! | `GET /api/v1/bookings` | real_name | my bookings |
//! | `DELETE /api/v1/bookings/{booking_id}` | face_verified, signed | cancel, up to an hour before |
//!
//! ```no_run
//! # async fn demo(keys: Vec<tongban_crypto::caller_context::ContextKey>) -> Result<(), tongban_hall_booking::ServeError> {
//! use tongban_hall_booking::{Config, Platform, serve};
//! let config = Config::new(
//!     "127.0.0.1:0".parse().expect("address"),
//!     "sqlite://data/hall-booking.db",
//!     Platform::Keys(keys),
//! );
//! let running = serve(config).await?;
//! println!("{}/api/v1/service-halls", running.url());
//! running.shutdown().await;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod app;
mod db;
pub mod halls;
pub mod schedule;
mod server;

use serde_json::{Value, json};

pub use app::codes;
pub use db::COMPONENT;
pub use server::{Config, HallBooking, Platform, SERVICE_NAME, ServeError, serve};

/// The gateway routes of this service registered as [`SERVICE_NAME`] (`docs/gateway.md`, "A
/// route"), for the platform to install.
pub fn routes() -> Vec<Value> {
    routes_for(SERVICE_NAME)
}

/// The gateway routes for this service registered under `service`. Booking and cancelling are
/// signed (anti-tamper, and signed answers) and limited per citizen; reading halls is limited
/// per client address.
pub fn routes_for(service: &str) -> Vec<Value> {
    let upstream = json!({"service": service});
    let per_user = json!([{"by": "user", "rate": 2, "per_ms": 1000, "burst": 5}]);
    vec![
        json!({
            "id": "service-halls",
            "prefix": "/api/v1/service-halls",
            "methods": ["GET"],
            "auth": "anonymous",
            "upstream": upstream,
            "limits": [{"by": "ip", "rate": 20, "per_ms": 1000, "burst": 40}],
        }),
        json!({
            "id": "bookings",
            "prefix": "/api/v1/bookings",
            "methods": ["GET"],
            "auth": "real_name",
            "upstream": upstream,
        }),
        json!({
            "id": "bookings-new",
            "prefix": "/api/v1/bookings",
            "methods": ["POST"],
            "auth": "face_verified",
            "upstream": upstream,
            "limits": per_user,
            "signed": true,
        }),
        json!({
            "id": "bookings-cancellation",
            "prefix": "/api/v1/bookings/{booking_id}",
            "methods": ["DELETE"],
            "auth": "face_verified",
            "upstream": upstream,
            "limits": per_user,
            "signed": true,
        }),
    ]
}
