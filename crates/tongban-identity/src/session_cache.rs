//! A short-lived in-process copy of the rows a token resolves to, so the gateway does not query
//! the store on every request of a session.
//!
//! Only the rows are cached; every check that depends on time (access and session expiry, the
//! face check's age) or on the request (the device) is made again on each hit. A change this
//! instance makes to an account or its sessions (sign-in, sign-out, re-login, face or real-name
//! check, unbind, data deletion) drops that account's entries at once, so on one instance a
//! revocation is never served from it; a read of the account's rows that began before the
//! change is not kept. Other accounts' entries stay: with many people signing in, emptying
//! the whole cache on each sign-in would send every busy session back to the store.
//! Another instance's change reaches this one as a notice on the cluster's [`ChangeFeed`]
//! (NATS), which drops the account's entries here as a local change would, within
//! milliseconds. A notice can be lost (this instance cut off from NATS, which is then told to
//! forget everything once back); the entry's age bounds the rest: another instance's change
//! is seen once the entry is `ttl` old at the latest (`identity.session_cache_ms`, 0 turns the
//! cache off).
//!
//! A busy session's entry is refreshed before it expires: the first request that finds it past
//! three quarters of `ttl` reads the store (and puts the rows again) while the others keep
//! being served from the entry. Without it, every request in flight when the entry expired
//! would miss together and read the store at once (64 reads a second per session under a
//! 64-connection load, each opening a pooled connection of its own). Requests that miss
//! together (a cold cache, or an account just changed) take turns to read a token's rows: the
//! first reads, the others find what it put.
//!
//! Entries are found by the token itself, so a hit costs no SM3 hash: a keyed hash of the token
//! picks the entry, and the token kept in it (in memory only, wiped when dropped) is compared
//! in constant time. The hash only picks a slot: tokens that collide, by chance or by choice,
//! cost a miss (a store read), never another session, and only a token the store accepted is
//! ever put, so a fast seeded hash (foldhash's) serves instead of SipHash. The device a
//! session is bound to is checked by its hash once; the entry then remembers the device id
//! that matched, and later requests are compared with that.

use std::collections::{HashMap, VecDeque};
use std::fmt::Debug;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tongban_crypto::sm3::ct_eq;
use tongban_store::identity::{SessionRow, UserRow};
use zeroize::Zeroizing;

/// Entries kept at most; past it expired entries go first, then everything (a bounded cache
/// that stays correct is worth more than one that stays warm under a flood of distinct tokens).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug)]
pub(crate) struct SessionCache {
    ttl: Duration,
    /// Counts local changes; a read is kept only if no change of its account came after the
    /// count it began at.
    generation: AtomicU64,
    entries: Mutex<Entries>,
    /// Locked before `entries` wherever both are.
    changes: Mutex<Changes>,
    keyed: foldhash::quality::RandomState,
    /// A gate per slot being read from the store; see [`SessionCache::read_turn`].
    reading: Mutex<HashMap<u64, Gate, Fast>>,
    /// Where this instance's changes are told to the others (cluster mode only).
    feed: OnceLock<Arc<dyn ChangeFeed>>,
}

/// Tells the other instances of a cluster which account's sessions changed here, so they drop
/// what they cached of it (they call [`crate::Identity::changed_elsewhere`] when they hear it).
pub trait ChangeFeed: Send + Sync + Debug + 'static {
    /// A change of `user` (of every account when `None`), made and stored here. Called with
    /// no lock held; must not block.
    fn announce(&self, user: Option<&str>);
}

type Fast = foldhash::fast::RandomState;

#[derive(Debug, Default)]
struct Entries {
    /// By a keyed hash of the token (seeded at random per process).
    by_slot: HashMap<u64, Entry, Fast>,
    /// The slots of each account's entries, so that a change of one account drops only them.
    by_user: HashMap<Box<str>, Vec<u64>, Fast>,
}

/// The local changes a read in flight may have crossed.
#[derive(Debug, Default)]
struct Changes {
    /// Each account's last change (its generation), while remembered.
    by_user: HashMap<Box<str>, u64, Fast>,
    /// The same changes, oldest first, with when they were made.
    order: VecDeque<(Instant, u64, Box<str>)>,
    /// Reads begun before this generation are not kept: a change they may have crossed is
    /// forgotten, or it was a change of every account.
    floor: u64,
}

type Gate = Arc<tokio::sync::Mutex<()>>;

/// A request's turn to read a token's rows from the store; the next waiting request gets its
/// turn when this is dropped, read or not (an error, or the request gone).
#[derive(Debug)]
pub(crate) struct ReadTurn<'a> {
    cache: &'a SessionCache,
    slot: u64,
    gate: Gate,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
    /// Another request read before this one: look in the cache again first.
    pub(crate) waited: bool,
}

impl Drop for ReadTurn<'_> {
    fn drop(&mut self) {
        self.held = None;
        let mut reading = self
            .cache
            .reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are made only under this lock: two left (the map's and ours) means nobody
        // waits.
        if Arc::strong_count(&self.gate) == 2 {
            reading.remove(&self.slot);
        }
    }
}

/// A session row and its account's row, as read together.
pub(crate) type Rows = Arc<(SessionRow, UserRow)>;

#[derive(Debug)]
struct Entry {
    token: Zeroizing<String>,
    rows: Rows,
    read_at: Instant,
    /// The device id that matched the session's bound device, once one has.
    device: Option<Box<str>>,
    /// When a request took on reading the rows again ahead of expiry.
    refresh_claimed: Option<Instant>,
}

/// Rows found in the cache.
#[derive(Debug)]
pub(crate) struct Hit {
    pub(crate) rows: Rows,
    /// The request's device is the one already checked against the session's binding.
    pub(crate) device_checked: bool,
}

impl SessionCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(Entries::default()),
            changes: Mutex::new(Changes::default()),
            keyed: foldhash::quality::RandomState::default(),
            reading: Mutex::new(HashMap::default()),
            feed: OnceLock::new(),
        }
    }

    /// Sends this instance's changes to `feed` from now on; a feed already set stays.
    pub(crate) fn set_feed(&self, feed: Arc<dyn ChangeFeed>) -> bool {
        self.feed.set(feed).is_ok()
    }

    /// Another instance's change of `user` (every account when `None`): dropped here as if
    /// made here, but not announced again.
    pub(crate) fn changed_elsewhere(&self, user: Option<&str>) {
        self.changed(user, tongban_core::clock::instant());
    }

    /// The generation to pass to [`SessionCache::put`]: read it before reading the store, so
    /// rows read across a concurrent change are never kept.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The rows of `token`, if read recently and their account did not change since. `None`
    /// also for the
    /// one caller that is to refresh an entry about to expire (see the module's notes).
    pub(crate) fn get(&self, token: &str, device_id: Option<&str>) -> Option<Hit> {
        self.get_at(token, device_id, tongban_core::clock::instant())
    }

    fn get_at(&self, token: &str, device_id: Option<&str>, now: Instant) -> Option<Hit> {
        if self.ttl.is_zero() {
            return None;
        }
        let slot = self.keyed.hash_one(token);
        let mut entries = lock(&self.entries);
        let e = entries.by_slot.get_mut(&slot)?;
        let age = now.saturating_duration_since(e.read_at);
        if !ct_eq(e.token.as_bytes(), token.as_bytes()) || age >= self.ttl {
            return None;
        }
        // A claim whose reader has not put the rows back within an eighth of the ttl (its
        // request gone, or the store slow) passes to the next request: at most two reads
        // before the entry would have expired.
        if age >= self.ttl - self.ttl / 4
            && e.refresh_claimed
                .is_none_or(|at| now.saturating_duration_since(at) >= self.ttl / 8)
        {
            e.refresh_claimed = Some(now);
            return None;
        }
        Some(Hit {
            rows: e.rows.clone(),
            device_checked: e.device.is_some() && e.device.as_deref() == device_id,
        })
    }

    /// Waits for the turn to read `token`'s rows from the store.
    pub(crate) async fn read_turn(&self, token: &str) -> ReadTurn<'_> {
        let slot = self.keyed.hash_one(token);
        let gate = self
            .reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(slot)
            .or_default()
            .clone();
        let mut turn = ReadTurn {
            cache: self,
            slot,
            gate,
            held: None,
            waited: false,
        };
        match turn.gate.clone().try_lock_owned() {
            Ok(held) => turn.held = Some(held),
            Err(_) => {
                // Made before waiting, so a request dropped while it waits still takes the
                // gate away when nobody else needs it.
                turn.held = Some(turn.gate.clone().lock_owned().await);
                turn.waited = true;
            }
        }
        turn
    }

    /// Keeps the rows `token` resolved to; `device` is the device id that matched the
    /// session's binding, if it was checked and did.
    pub(crate) fn put(&self, generation: u64, token: &str, rows: Rows, device: Option<&str>) {
        self.put_at(
            generation,
            token,
            rows,
            device,
            tongban_core::clock::instant(),
        );
    }

    fn put_at(&self, generation: u64, token: &str, rows: Rows, device: Option<&str>, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        // Held until the entry is in, so no change falls between the check and the insert.
        let changes = lock(&self.changes);
        if !changes.unchanged_since(&rows.0.user_id, generation) {
            return;
        }
        let slot = self.keyed.hash_one(token);
        let mut entries = lock(&self.entries);
        if entries.by_slot.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|e| now.saturating_duration_since(e.read_at) < ttl);
            if entries.by_slot.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(
            slot,
            Entry {
                token: Zeroizing::new(token.to_owned()),
                rows,
                read_at: now,
                device: device.map(Box::from),
                refresh_claimed: None,
            },
        );
        drop(changes);
    }

    /// Held while an account or its sessions change; dropping it (on success or error) drops
    /// the account's entries, so no method that changes them can forget to. Until told the
    /// account ([`Changing::of_user`]) it stands for a change of every account.
    pub(crate) fn changing(&self) -> Changing<'_> {
        Changing {
            cache: self,
            user: None,
        }
    }

    /// [`SessionCache::changing`] for a change of the account `user_id` only.
    pub(crate) fn changing_user(&self, user_id: &str) -> Changing<'_> {
        Changing {
            cache: self,
            user: Some(user_id.into()),
        }
    }

    /// Forgets the entries of `user` (every entry when `None`), and keeps reads that began
    /// before now from being put.
    fn changed(&self, user: Option<&str>, now: Instant) {
        let mut changes = lock(&self.changes);
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        let mut entries = lock(&self.entries);
        match user {
            None => {
                *changes = Changes {
                    floor: generation,
                    ..Changes::default()
                };
                entries.clear();
            }
            Some(user) => {
                changes.record(user, generation, now, self.ttl);
                entries.remove_user(user);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// === impl Entries ===

impl Entries {
    fn insert(&mut self, slot: u64, entry: Entry) {
        let user: Box<str> = entry.rows.0.user_id.as_str().into();
        if let Some(old) = self.by_slot.insert(slot, entry) {
            if *old.rows.0.user_id == *user {
                return;
            }
            self.unlist(&old.rows.0.user_id, slot);
        }
        self.by_user.entry(user).or_default().push(slot);
    }

    fn unlist(&mut self, user: &str, slot: u64) {
        if let Some(slots) = self.by_user.get_mut(user) {
            slots.retain(|s| *s != slot);
            if slots.is_empty() {
                self.by_user.remove(user);
            }
        }
    }

    fn remove_user(&mut self, user: &str) {
        for slot in self.by_user.remove(user).unwrap_or_default() {
            self.by_slot.remove(&slot);
        }
    }

    fn retain(&mut self, keep: impl Fn(&Entry) -> bool) {
        self.by_slot.retain(|_, e| keep(e));
        self.by_user.clear();
        for (slot, e) in &self.by_slot {
            self.by_user
                .entry(e.rows.0.user_id.as_str().into())
                .or_default()
                .push(*slot);
        }
    }

    fn clear(&mut self) {
        self.by_slot.clear();
        self.by_user.clear();
    }
}

// === impl Changes ===

impl Changes {
    /// Rows of `user` read from `generation` on came after every change of it.
    fn unchanged_since(&self, user: &str, generation: u64) -> bool {
        generation >= self.floor && self.by_user.get(user).is_none_or(|g| *g <= generation)
    }

    /// Remembers a change of `user` for `keep` (a read takes far less; one that took longer
    /// is not kept, by the floor) and at most `MAX_ENTRIES` changes.
    fn record(&mut self, user: &str, generation: u64, now: Instant, keep: Duration) {
        self.by_user.insert(user.into(), generation);
        self.order.push_back((now, generation, user.into()));
        while let Some((at, _, _)) = self.order.front()
            && (now.saturating_duration_since(*at) >= keep || self.order.len() > MAX_ENTRIES)
        {
            let Some((_, g, u)) = self.order.pop_front() else {
                break;
            };
            if self.by_user.get(&u) == Some(&g) {
                self.by_user.remove(&u);
            }
            self.floor = self.floor.max(g);
        }
    }
}

/// See [`SessionCache::changing`].
#[derive(Debug)]
pub(crate) struct Changing<'a> {
    cache: &'a SessionCache,
    /// The account changing; `None` for every account.
    user: Option<Box<str>>,
}

impl Changing<'_> {
    /// Narrows the change to the account `user_id`, once it is known and before anything is
    /// written.
    pub(crate) fn of_user(&mut self, user_id: &str) {
        self.user = Some(user_id.into());
    }
}

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        self.cache
            .changed(self.user.as_deref(), tongban_core::clock::instant());
        // After the change is stored (or failed): another instance that hears it and reads
        // the store again finds it.
        if let Some(feed) = self.cache.feed.get() {
            feed.announce(self.user.as_deref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(hash: &str) -> Rows {
        rows_of("u1", hash)
    }

    fn rows_of(user: &str, hash: &str) -> Rows {
        let session = SessionRow {
            id: format!("s-{hash}"),
            user_id: user.into(),
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
            id: user.into(),
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

    fn hits(c: &SessionCache, token: &str) -> bool {
        c.get(token, None).is_some()
    }

    #[test]
    fn serves_what_was_put_until_a_change() {
        let c = SessionCache::new(Duration::from_secs(60));
        let r = rows("a");
        c.put(c.generation(), "token-a", r.clone(), None);
        assert_eq!(c.get("token-a", None).map(|h| h.rows), Some(r));
        assert!(!hits(&c, "token-b"));
        assert!(!hits(&c, "token-a-longer"));
        drop(c.changing());
        assert!(
            !hits(&c, "token-a"),
            "a change of every account empties the cache"
        );
    }

    #[test]
    fn a_change_of_one_account_drops_only_its_entries() {
        let c = SessionCache::new(Duration::from_secs(60));
        c.put(c.generation(), "token-a", rows_of("ua", "a"), None);
        c.put(c.generation(), "token-b1", rows_of("ub", "b1"), None);
        c.put(c.generation(), "token-b2", rows_of("ub", "b2"), None);
        drop(c.changing_user("ub"));
        assert!(hits(&c, "token-a"), "another account's entry stays");
        assert!(!hits(&c, "token-b1") && !hits(&c, "token-b2"));
        // Narrowed once the account is known.
        let mut changing = c.changing();
        changing.of_user("ua");
        c.put(c.generation(), "token-b1", rows_of("ub", "b1"), None);
        drop(changing);
        assert!(!hits(&c, "token-a"));
        assert!(hits(&c, "token-b1"));
        let e = lock(&c.entries);
        assert_eq!(e.by_user.len(), 1, "{:?}", e.by_user.keys());
        assert_eq!(e.by_user.get("ub").map(Vec::len), Some(1));
    }

    #[test]
    fn rows_read_across_a_change_are_not_kept() {
        let c = SessionCache::new(Duration::from_secs(60));
        let before = c.generation();
        drop(c.changing_user("ub"));
        c.put(before, "token-b", rows_of("ub", "b"), None);
        assert!(!hits(&c, "token-b"), "read before its account changed");
        c.put(before, "token-a", rows_of("ua", "a"), None);
        assert!(hits(&c, "token-a"), "another account's read is kept");
        c.put(c.generation(), "token-b", rows_of("ub", "b"), None);
        assert!(hits(&c, "token-b"), "read after the change");
        let before = c.generation();
        drop(c.changing());
        c.put(before, "token-a", rows_of("ua", "a"), None);
        assert!(
            !hits(&c, "token-a"),
            "read before a change of every account"
        );
    }

    #[test]
    fn a_forgotten_change_still_refuses_reads_begun_before_it() {
        let ttl = Duration::from_millis(1000);
        let c = SessionCache::new(ttl);
        let t0 = Instant::now();
        let before = c.generation();
        c.changed(Some("ub"), t0);
        let between = c.generation();
        // Another account's change a ttl later forgets the first one.
        c.changed(Some("uc"), t0 + ttl);
        assert!(!lock(&c.changes).by_user.contains_key("ub"));
        assert_eq!(lock(&c.changes).by_user.len(), 1);
        c.put(before, "token-b", rows_of("ub", "b"), None);
        assert!(!hits(&c, "token-b"), "began before the forgotten change");
        c.put(between, "token-b", rows_of("ub", "b"), None);
        assert!(hits(&c, "token-b"), "began after it");
        c.put(between, "token-c", rows_of("uc", "c"), None);
        assert!(!hits(&c, "token-c"), "uc's change is still remembered");
    }

    #[test]
    fn a_slot_taken_by_another_account_moves_in_the_index() {
        let c = SessionCache::new(Duration::from_secs(60));
        c.put(c.generation(), "token-a", rows_of("ua", "a"), None);
        c.put(c.generation(), "token-a", rows_of("ub", "a"), None);
        c.put(c.generation(), "token-a", rows_of("ub", "a"), None);
        {
            let e = lock(&c.entries);
            assert!(!e.by_user.contains_key("ua"));
            assert_eq!(e.by_user.get("ub").map(Vec::len), Some(1));
        }
        drop(c.changing_user("ua"));
        assert!(hits(&c, "token-a"));
        drop(c.changing_user("ub"));
        assert!(!hits(&c, "token-a"));
    }

    #[test]
    fn entries_expire_and_zero_turns_it_off() {
        let c = SessionCache::new(Duration::from_millis(20));
        let r = rows("a");
        c.put(c.generation(), "token-a", r.clone(), None);
        assert!(c.get("token-a", None).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.get("token-a", None).is_none(), "older than the ttl");
        let off = SessionCache::new(Duration::ZERO);
        off.put(off.generation(), "token-a", r, None);
        assert!(off.get("token-a", None).is_none());
    }

    #[test]
    fn one_request_refreshes_an_entry_about_to_expire() {
        let c = SessionCache::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let get = |ms| c.get_at("token-a", None, at(ms)).is_some();
        c.put_at(c.generation(), "token-a", rows("a"), None, t0);
        assert!(get(700));
        assert!(
            !get(760),
            "the first request past 3/4 of the ttl reads the store"
        );
        for ms in [761, 800, 880] {
            assert!(get(ms), "the others are served while it reads ({ms} ms)");
        }
        // Its read lands: the entry is fresh again and nobody else reads.
        c.put_at(c.generation(), "token-a", rows("a"), None, at(790));
        for ms in [1000, 1200, 1500] {
            assert!(get(ms), "{ms} ms");
        }
        assert!(!get(1540), "the next refresh");
        assert!(!get(1790), "never served past the ttl");
    }

    #[test]
    fn an_abandoned_refresh_passes_to_the_next_request() {
        let c = SessionCache::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        let get = |ms| {
            c.get_at("token-a", None, t0 + Duration::from_millis(ms))
                .is_some()
        };
        c.put_at(c.generation(), "token-a", rows("a"), None, t0);
        assert!(!get(750), "claimed");
        assert!(get(870), "claim held");
        assert!(
            !get(875),
            "not put back within an eighth of the ttl: the next one reads"
        );
        assert!(get(876));
        assert!(!get(1000), "expired");
    }

    /// A request waiting for its turn to read `token`; answers whether it waited.
    fn wait_for_turn(c: &Arc<SessionCache>, token: &'static str) -> tokio::task::JoinHandle<bool> {
        let c = c.clone();
        tokio::spawn(async move { c.read_turn(token).await.waited })
    }

    fn gates(c: &SessionCache) -> usize {
        c.reading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    #[tokio::test]
    async fn requests_that_miss_together_take_turns_to_read() {
        let c = Arc::new(SessionCache::new(Duration::from_secs(60)));
        let first = c.read_turn("token-a").await;
        assert!(!first.waited);
        let other = c.read_turn("token-b").await;
        assert!(!other.waited, "another token does not wait");
        let waiter = wait_for_turn(&c, "token-a");
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "the second waits for the first");
        c.put(c.generation(), "token-a", rows("a"), None);
        drop(first);
        assert!(
            waiter.await.expect("joined"),
            "and then looks in the cache again"
        );
        drop(other);
        assert_eq!(gates(&c), 0, "no gate is left behind");
    }

    #[tokio::test]
    async fn a_request_dropped_while_it_waits_leaves_no_gate() {
        let c = Arc::new(SessionCache::new(Duration::from_secs(60)));
        let first = c.read_turn("token-a").await;
        let waiter = wait_for_turn(&c, "token-a");
        tokio::task::yield_now().await;
        // The turn passes to the waiter, which is dropped before it runs again.
        drop(first);
        waiter.abort();
        assert!(waiter.await.expect_err("aborted").is_cancelled());
        assert_eq!(gates(&c), 0, "no gate is left behind");
    }

    #[test]
    fn stays_bounded() {
        let c = SessionCache::new(Duration::from_secs(60));
        for i in 0..=MAX_ENTRIES {
            c.put(c.generation(), &i.to_string(), rows("a"), None);
        }
        let e = lock(&c.entries);
        let n = e.by_slot.len();
        assert!(n <= MAX_ENTRIES, "{n} entries");
        assert_eq!(
            e.by_user.get("u1").map(Vec::len),
            Some(n),
            "the index follows"
        );
    }

    #[test]
    fn only_the_device_that_matched_skips_the_check() {
        let c = SessionCache::new(Duration::from_secs(60));
        c.put(c.generation(), "token-a", rows("a"), Some("phone-1"));
        let checked = |d| c.get("token-a", d).map(|h| h.device_checked);
        assert_eq!(checked(Some("phone-1")), Some(true));
        assert_eq!(checked(Some("phone-2")), Some(false));
        assert_eq!(checked(None), Some(false));
        c.put(c.generation(), "token-b", rows("b"), None);
        assert_eq!(
            c.get("token-b", Some("phone-1")).map(|h| h.device_checked),
            Some(false)
        );
    }
}
