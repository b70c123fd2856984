//! The services' caller-context keys (`tongban_crypto::caller_context`): derived from the
//! key service's keyring for the gateway, which seals a context into every forwarded request,
//! and issued to each service on the admin listener, with which it verifies them.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use serde::Serialize;
use tongban_core::envelope::Ok as Done;
use tongban_core::routes::Routes;
use tongban_core::{ApiError, Code};
use tongban_crypto::caller_context::{self, ContextKey};
use tongban_crypto::encoding::hex_encode;
use tongban_crypto::keyring::{KeyLookup, Keyring};
use tongban_crypto::sm3::HmacSm3Key;
use tongban_gateway::context::{CallerContextKeys, ServiceKeys};
use tongban_keys::{CALLER_CONTEXT, CALLER_SUBJECT, KeyService};

/// The gateway's source of caller-context keys. Each route keeps its service's keys until
/// the key service's generation moves (a rotation, a reload), so this derives once per route
/// and keyring.
#[derive(Debug)]
pub struct CallerKeys {
    keys: Arc<KeyService>,
}

impl CallerKeys {
    pub fn new(keys: Arc<KeyService>) -> Self {
        Self { keys }
    }
}

impl CallerContextKeys for CallerKeys {
    fn generation(&self) -> u64 {
        self.keys.generation()
    }

    fn for_service(&self, service: &str) -> Option<Arc<ServiceKeys>> {
        // The generation is read before the keyring: a swap in between is seen as stale on
        // the next request, never the other way round.
        let generation = self.keys.generation();
        let ring = self.keys.ring();
        let (version, key) = ring.current(CALLER_CONTEXT).ok()?;
        let subject = ring.get(CALLER_SUBJECT, 1).ok()?;
        Some(Arc::new(ServiceKeys::new(
            ContextKey::derive(key.expose(), version, service),
            HmacSm3Key::new(subject.expose()),
            generation,
        )))
    }
}

#[derive(Serialize)]
struct IssuedKeys {
    service: String,
    /// The version the gateway seals with now.
    current: u32,
    /// Every version still accepted, so contexts sealed just before a rotation still verify.
    keys: Vec<IssuedKey>,
}

#[derive(Serialize)]
struct IssuedKey {
    version: u32,
    /// 64 hex digits: the 32-byte HMAC-SM3 key.
    key: String,
}

/// `GET /api/v1/microservices/{service}/caller-context-keys` on the admin listener (behind
/// the admin token): the keys `service` verifies its caller contexts with.
pub fn admin_routes<S>(keys: Arc<KeyService>) -> Routes<S>
where
    S: Clone + Send + Sync + 'static,
{
    Routes::new()
        .route(
            "/api/v1/microservices/{service}/caller-context-keys",
            get(issued),
        )
        .with_state(keys)
}

async fn issued(
    State(keys): State<Arc<KeyService>>,
    Path(service): Path<String>,
) -> Result<Done<IssuedKeys>, ApiError> {
    issue(&keys.ring(), &service).map(Done)
}

fn issue(ring: &Keyring, service: &str) -> Result<IssuedKeys, ApiError> {
    if service.is_empty()
        || service.len() > 128
        || !service
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return Err(
            ApiError::new(Code::BAD_PARAMETER).with_data(serde_json::json!({
                "field": "service",
                "reason": "a service name: 1-128 of a-z 0-9 - ."
            })),
        );
    }
    let unavailable = |_| ApiError::new(Code::BUSY);
    let (current, _) = ring.current(CALLER_CONTEXT).map_err(unavailable)?;
    let versions = ring.versions(CALLER_CONTEXT).map_err(unavailable)?;
    let keys = versions
        .iter()
        .filter_map(|v| {
            // Retired versions no longer unwrap: they are not issued.
            let platform = ring.get(CALLER_CONTEXT, v.version).ok()?;
            Some(IssuedKey {
                version: v.version,
                key: hex_encode(&caller_context::service_key(platform.expose(), service)),
            })
        })
        .collect();
    Ok(IssuedKeys {
        service: service.to_owned(),
        current,
        keys,
    })
}
