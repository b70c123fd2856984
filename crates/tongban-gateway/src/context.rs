//! The caller context on every forwarded request (`tongban_crypto::caller_context`): the
//! gateway removes whatever a client sent under its name and adds its own, sealed with the
//! upstream service's key, so a service learns who calls without trusting the client.
//!
//! What it costs per request is kept small: the route holds its service's keys (checked
//! against the keyring's generation with one atomic read), a session's caller part is sealed
//! once per service and reused while the session's standing is unchanged, and only the short
//! request part (route, request id, times) is sealed per request.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, OnceLock};

use http::{HeaderMap, HeaderValue};
use tongban_core::AuthLevel;
use tongban_core::clock::Clock;
use tongban_core::header::{X_DEVICE_ID, X_REQUEST_ID};
use tongban_crypto::caller_context::{self, CallerPart, ContextKey, Person, SealedCaller};
use tongban_crypto::sm3::HmacSm3Key;

use crate::route::active::ActiveRoute;
use crate::routed::Caller;

/// How long a context is accepted after the gateway made it, milliseconds: long enough for
/// the retries of one request, short enough that a context captured inside the network is
/// of little use.
pub const CONTEXT_TTL_MS: i64 = 60_000;

/// Sessions whose sealed caller part one service keeps; past it the cache starts afresh.
const MAX_SESSIONS: usize = 65_536;

/// One service's keys, as of one keyring generation, with the caller parts sealed under them.
#[derive(Debug)]
pub struct ServiceKeys {
    context: ContextKey,
    subject: HmacSm3Key,
    generation: u64,
    anonymous: OnceLock<SealedCaller>,
    /// Keyed by a hash of what the part is made from.
    sessions: Mutex<HashMap<u64, Arc<Sealed>, foldhash::fast::RandomState>>,
    hasher: foldhash::fast::RandomState,
}

/// A session's caller part, with what it was made from (a hash hit is checked against it).
#[derive(Debug)]
struct Sealed {
    user: String,
    session: String,
    level: AuthLevel,
    face_at: Option<i64>,
    device: Option<String>,
    app: Option<String>,
    with_person: bool,
    sealed: SealedCaller,
}

impl ServiceKeys {
    /// `context`: the service's key; `subject`: the platform's pseudonym key; `generation`:
    /// the [`CallerContextKeys::generation`] they were read at.
    pub fn new(context: ContextKey, subject: HmacSm3Key, generation: u64) -> Self {
        Self {
            context,
            subject,
            generation,
            anonymous: OnceLock::new(),
            sessions: Mutex::new(HashMap::default()),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

/// Where the gateway gets each service's keys (the binary: the key service's keyring).
pub trait CallerContextKeys: Send + Sync + Debug {
    /// Changes whenever the keys may have (a rotation, a reload); routes re-read theirs then.
    fn generation(&self) -> u64;

    /// The current keys of `service`; `None` when the keyring has none, and the request then
    /// goes without a context (the service refuses it).
    fn for_service(&self, service: &str) -> Option<Arc<ServiceKeys>>;
}

/// The real-name persons of accounts, for routes with `caller_person`.
#[async_trait::async_trait]
pub trait PersonSource: Send + Sync + Debug {
    /// The person bound to `user_id`, `None` when the account has no real-name binding (or
    /// it cannot be read now: the context then carries none, and the service asks again).
    async fn person(&self, user_id: &str) -> Option<Person>;
}

/// Knows no persons.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPersons;

#[async_trait::async_trait]
impl PersonSource for NoPersons {
    async fn person(&self, _: &str) -> Option<Person> {
        None
    }
}

/// No keys: forwarded requests carry no context (a gateway built without a keyring).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoCallerContext;

impl CallerContextKeys for NoCallerContext {
    fn generation(&self) -> u64 {
        0
    }

    fn for_service(&self, _: &str) -> Option<Arc<ServiceKeys>> {
        None
    }
}

/// The service name a route's contexts are made for: its registry service, or, for a route
/// with fixed instances, the route's id.
pub fn service_of(route: &ActiveRoute) -> &str {
    route
        .spec
        .upstream
        .service
        .as_deref()
        .unwrap_or(&route.spec.id)
}

/// Makes the context header of forwarded requests.
#[derive(Clone, Debug)]
pub(crate) struct Contexts {
    pub(crate) keys: Arc<dyn CallerContextKeys>,
    pub(crate) persons: Arc<dyn PersonSource>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Contexts {
    /// The header for a request of `caller` (`None`: not resolved) through `route`;
    /// `headers` are the request's, before credentials are stripped.
    pub(crate) async fn header(
        &self,
        route: &ActiveRoute,
        caller: Option<&Caller>,
        headers: &HeaderMap,
    ) -> Option<HeaderValue> {
        let generation = self.keys.generation();
        let held = route.caller_keys.load();
        let fresh;
        let keys: &ServiceKeys = match held.as_deref() {
            Some(k) if k.generation == generation => k,
            _ => {
                fresh = self.keys.for_service(service_of(route))?;
                route.caller_keys.store(Some(fresh.clone()));
                &fresh
            }
        };
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        let session = caller.and_then(|c| Some((c, c.user.as_deref()?, c.session.as_deref()?)));
        let (shared, own);
        let sealed: &SealedCaller = match session {
            // A device id is vouched for only when a session was checked against it.
            Some((c, user, sid)) => {
                shared = keys
                    .sealed_session(route, c, user, sid, text(X_DEVICE_ID), &*self.persons)
                    .await;
                &shared.sealed
            }
            None => {
                let anonymous = |app: Option<&str>| {
                    let part = CallerPart {
                        svc: service_of(route).to_owned(),
                        sub: None,
                        lvl: AuthLevel::Anonymous.as_str().to_owned(),
                        face_at: None,
                        sid: None,
                        dev: None,
                        app: app.map(str::to_owned),
                        person: None,
                    };
                    caller_context::seal_caller(&part, &keys.context)
                };
                match caller.and_then(|c| c.app.as_deref()) {
                    // The part every anonymous caller without an app shares: sealed once.
                    None => keys.anonymous.get_or_init(|| anonymous(None)),
                    Some(app) => {
                        own = anonymous(Some(app));
                        &own
                    }
                }
            }
        };
        let now = self.clock.now_ms();
        let value = caller_context::seal_request_parts(
            sealed,
            &route.spec.id,
            text(X_REQUEST_ID),
            now,
            now + CONTEXT_TTL_MS,
            &keys.context,
        );
        HeaderValue::try_from(value).ok()
    }
}

impl ServiceKeys {
    async fn sealed_session(
        &self,
        route: &ActiveRoute,
        c: &Caller,
        user: &str,
        session: &str,
        device: Option<&str>,
        persons: &dyn PersonSource,
    ) -> Arc<Sealed> {
        let with_person = route.spec.caller_person && c.level >= AuthLevel::RealName;
        let slot = self.hasher.hash_one((
            user,
            session,
            c.level,
            c.face_verified_at,
            device,
            c.app.as_deref(),
            with_person,
        ));
        let same = |s: &Sealed| {
            s.user == user
                && s.session == session
                && s.level == c.level
                && s.face_at == c.face_verified_at
                && s.device.as_deref() == device
                && s.app == c.app
                && s.with_person == with_person
        };
        if let Ok(cache) = self.sessions.lock()
            && let Some(hit) = cache.get(&slot)
            && same(hit)
        {
            return hit.clone();
        }
        let svc = service_of(route);
        let person = match with_person {
            true => persons
                .person(user)
                .await
                .and_then(|p| caller_context::seal_person(&p, &self.context).ok()),
            false => None,
        };
        let part = CallerPart {
            svc: svc.to_owned(),
            sub: Some(caller_context::subject(&self.subject, svc, user)),
            lvl: c.level.as_str().to_owned(),
            face_at: c.face_verified_at,
            sid: Some(session.to_owned()),
            dev: device.map(str::to_owned),
            app: c.app.clone(),
            person,
        };
        let made = Arc::new(Sealed {
            user: user.to_owned(),
            session: session.to_owned(),
            level: c.level,
            face_at: c.face_verified_at,
            device: device.map(str::to_owned),
            app: c.app.clone(),
            with_person,
            sealed: caller_context::seal_caller(&part, &self.context),
        });
        if let Ok(mut cache) = self.sessions.lock() {
            if cache.len() >= MAX_SESSIONS {
                cache.clear();
            }
            cache.insert(slot, made.clone());
        }
        made
    }
}
