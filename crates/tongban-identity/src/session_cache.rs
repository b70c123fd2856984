//! A short-lived in-process copy of the rows a token resolves to, so the gateway does not query
//! the store on every request of a session.
//!
//! Only the rows are cached; every check that depends on time (access and session expiry, the
//! face check's age) or on the request (the device) is made again on each hit. Any change this
//! instance makes to a session or account (sign-out, re-login, face or real-name check, unbind,
//! data deletion) empties the cache at once, so on one instance a revocation is never served
//! from it. Another instance's change is seen once the entry is `ttl` old: that bound is the
//! whole staleness of a cluster (`identity.session_cache_ms`, 0 turns the cache off).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tongban_store::identity::{SessionRow, UserRow};

/// Entries kept at most; past it expired entries go first, then everything (a bounded cache
/// that stays correct is worth more than one that stays warm under a flood of distinct tokens).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug)]
pub(crate) struct SessionCache {
    ttl: Duration,
    /// Bumped by every local change; entries read before it are not served.
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

/// A session row and its account's row, as read together.
pub(crate) type Rows = Arc<(SessionRow, UserRow)>;

#[derive(Clone, Debug)]
struct Entry {
    rows: Rows,
    read_at: Instant,
    generation: u64,
}

impl SessionCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The generation to pass to [`SessionCache::put`]: read it before reading the store, so
    /// rows read across a concurrent change are never kept.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The rows of an access-token hash, if read recently and nothing changed since.
    pub(crate) fn get(&self, access_hash: &str) -> Option<Rows> {
        if self.ttl.is_zero() {
            return None;
        }
        let generation = self.generation();
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let e = entries.get(access_hash)?;
        (e.generation == generation && e.read_at.elapsed() < self.ttl).then(|| e.rows.clone())
    }

    pub(crate) fn put(&self, generation: u64, rows: Rows) {
        if self.ttl.is_zero() || generation != self.generation() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, e| e.generation == generation && e.read_at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            rows.0.access_hash.clone(),
            Entry {
                rows,
                read_at: Instant::now(),
                generation,
            },
        );
    }

    /// Held while sessions or accounts change; dropping it (on success or error) empties the
    /// cache, so no method that changes them can forget to.
    pub(crate) fn changing(&self) -> Changing<'_> {
        Changing(self)
    }

    /// Forgets everything.
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// See [`SessionCache::changing`].
#[derive(Debug)]
pub(crate) struct Changing<'a>(&'a SessionCache);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.0.invalidate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(hash: &str) -> Rows {
        let session = SessionRow {
            id: "s1".into(),
            user_id: "u1".into(),
            device_hash: None,
            acr: None,
            amr: None,
            access_hash: hash.into(),
            access_expires_at: 10,
            relogin_hash: "r".into(),
            face_verified_at: None,
            created_at: 0,
            expires_at: 10,
            revoked_at: None,
            revoked_reason: None,
        };
        let user = UserRow {
            id: "u1".into(),
            subject_hash: "h".into(),
            provider: "p".into(),
            level: "real_name".into(),
            person_id: None,
            status: "active".into(),
            created_at: 0,
            updated_at: 0,
        };
        Arc::new((session, user))
    }

    #[test]
    fn serves_what_was_put_until_a_change() {
        let c = SessionCache::new(Duration::from_secs(60));
        let r = rows("a");
        c.put(c.generation(), r.clone());
        assert_eq!(c.get("a"), Some(r));
        assert_eq!(c.get("b"), None);
        c.invalidate();
        assert_eq!(c.get("a"), None, "a local change empties the cache");
    }

    #[test]
    fn rows_read_across_a_change_are_not_kept() {
        let c = SessionCache::new(Duration::from_secs(60));
        let before = c.generation();
        c.invalidate();
        c.put(before, rows("a"));
        assert_eq!(c.get("a"), None);
    }

    #[test]
    fn entries_expire_and_zero_turns_it_off() {
        let c = SessionCache::new(Duration::from_millis(20));
        let r = rows("a");
        c.put(c.generation(), r.clone());
        assert!(c.get("a").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(c.get("a"), None, "older than the ttl");
        let off = SessionCache::new(Duration::ZERO);
        off.put(off.generation(), r);
        assert_eq!(off.get("a"), None);
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            c.put(c.generation(), rows(&i.to_string()));
        }
        let n = c
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        assert!(n <= MAX_ENTRIES, "{n} entries");
    }
}
