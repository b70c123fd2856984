//! The services' caller-context keys (`tongban_crypto::caller_context`): derived from the
//! key service's keyring for the gateway, which seals a context into every forwarded request,
//! and issued to each service on the admin listener, with which it verifies them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

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

/// Services whose keys are kept derived; routes name services, so this is never reached in
/// practice, and a bound keeps a misconfiguration from growing the map without end.
const MAX_CACHED: usize = 4096;

/// The gateway's source of caller-context keys: derived once per service and keyring (a
/// rotation or reload swaps the keyring, and the keys are derived anew).
#[derive(Debug)]
pub struct CallerKeys {
    keys: Arc<KeyService>,
    cache: RwLock<Cache>,
}

#[derive(Debug)]
struct Cache {
    ring: Arc<Keyring>,
    services: HashMap<String, Arc<ServiceKeys>>,
}

impl CallerKeys {
    pub fn new(keys: Arc<KeyService>) -> Self {
        let ring = keys.ring();
        Self {
            keys,
            cache: RwLock::new(Cache {
                ring,
                services: HashMap::new(),
            }),
        }
    }
}

impl CallerContextKeys for CallerKeys {
    fn for_service(&self, service: &str) -> Option<Arc<ServiceKeys>> {
        let ring = self.keys.ring();
        if let Ok(cache) = self.cache.read()
            && Arc::ptr_eq(&cache.ring, &ring)
            && let Some(k) = cache.services.get(service)
        {
            return Some(k.clone());
        }
        let made = Arc::new(service_keys(&ring, service)?);
        if let Ok(mut cache) = self.cache.write() {
            if !Arc::ptr_eq(&cache.ring, &ring) {
                cache.ring = ring;
                cache.services.clear();
            }
            if cache.services.len() < MAX_CACHED {
                cache.services.insert(service.to_owned(), made.clone());
            }
        }
        Some(made)
    }
}

fn service_keys(ring: &Keyring, service: &str) -> Option<ServiceKeys> {
    let (version, key) = ring.current(CALLER_CONTEXT).ok()?;
    let subject = ring.get(CALLER_SUBJECT, 1).ok()?;
    Some(ServiceKeys {
        context: ContextKey::derive(key.expose(), version, service),
        subject: HmacSm3Key::new(subject.expose()),
    })
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
