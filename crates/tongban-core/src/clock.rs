//! The time, read once per task poll where the caller asks for it.
//!
//! A proxied request would read the clock about sixteen times (the gateway's policies,
//! identity, the session cache, timers, logging), each a vDSO call of about 19 ns plus the
//! conversion around it (`docs/performance.md`). Inside a [`Stamped`] poll (the
//! server's connection tasks) [`instant`] and [`wall`] read the clock at their first call and
//! answer every later call of that poll with the same reading, as nginx reads the time once
//! per turn of its event loop. A poll is the work done between two waits, microseconds long
//! for a request, so decisions (a limiter's, a breaker's, an expiry check) all see the time of
//! the poll's first reading. What measures a duration within one poll reads the real clock
//! (`Instant::elapsed`); outside a stamped poll both read the real clock every time.

use std::cell::Cell;
use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Wall-clock time since the Unix epoch, injected: policies (limiters, breakers) and expiries
/// (sessions, face checks, lockouts) read a `Clock`, so their tests run on a clock that moves
/// only when told to, and instances compare times across a cluster.
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> Duration;

    /// [`now`](Self::now) in Unix milliseconds, saturating.
    fn now_ms(&self) -> i64 {
        i64::try_from(self.now().as_millis()).unwrap_or(i64::MAX)
    }
}

/// The system clock, read once per stamped poll ([`wall`]): the policies of one request see
/// one time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// A clock that moves only when told to: for tests and simulations. Clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        wall()
    }
}

impl ManualClock {
    /// Starts at `start` since the epoch.
    pub fn new(start: Duration) -> Self {
        let c = Self::default();
        c.set(start);
        c
    }

    /// Starts at `ms` Unix milliseconds (before the epoch counts as the epoch).
    pub fn at_ms(ms: i64) -> Self {
        Self::new(Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    pub fn set(&self, t: Duration) {
        self.micros.store(
            u64::try_from(t.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Sets the time to `ms` Unix milliseconds.
    pub fn set_ms(&self, ms: i64) {
        self.set(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }

    pub fn advance(&self, d: Duration) {
        self.micros.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

/// The thread's readings: separate cells, so that a call moves one word, not the three.
struct Stamps {
    /// In a stamped poll.
    active: Cell<bool>,
    instant: Cell<Option<Instant>>,
    wall: Cell<Option<Duration>>,
}

thread_local! {
    static STAMPS: Stamps = const {
        Stamps {
            active: Cell::new(false),
            instant: Cell::new(None),
            wall: Cell::new(None),
        }
    };
}

/// The monotonic time: the poll's reading inside a stamped poll, else the clock's.
pub fn instant() -> Instant {
    STAMPS.with(|s| {
        if !s.active.get() {
            return Instant::now();
        }
        if let Some(t) = s.instant.get() {
            return t;
        }
        let t = Instant::now();
        s.instant.set(Some(t));
        t
    })
}

/// The wall-clock time since the Unix epoch (zero before it): the poll's reading inside a
/// stamped poll, else the clock's.
pub fn wall() -> Duration {
    fn read() -> Duration {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
    }
    STAMPS.with(|s| {
        if !s.active.get() {
            return read();
        }
        if let Some(t) = s.wall.get() {
            return t;
        }
        let t = read();
        s.wall.set(Some(t));
        t
    })
}

/// Marks a poll as stamped until dropped (then the thread is as before, also if the poll
/// panicked). For a future's `poll`, as the server's connection tasks do.
#[must_use = "the poll is stamped until this is dropped"]
#[derive(Debug)]
pub struct Stamped {
    prev: (bool, Option<Instant>, Option<Duration>),
}

impl Stamped {
    pub fn enter() -> Self {
        let prev = STAMPS.with(|s| (s.active.replace(true), s.instant.take(), s.wall.take()));
        Self { prev }
    }
}

impl Drop for Stamped {
    fn drop(&mut self) {
        let (active, instant, wall) = self.prev;
        let _ = STAMPS.try_with(|s| {
            s.active.set(active);
            s.instant.set(instant);
            s.wall.set(wall);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn advance() {
        let t = Instant::now();
        while Instant::now() == t {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn a_stamped_poll_reads_the_clock_once() {
        let outside = instant();
        advance();
        assert!(instant() > outside, "outside, every call reads the clock");
        {
            let _poll = Stamped::enter();
            let (t, w) = (instant(), wall());
            advance();
            std::thread::sleep(Duration::from_millis(2));
            assert_eq!((instant(), wall()), (t, w));
            {
                // A poll inside another has its own reading, and gives the outer one back.
                let _inner = Stamped::enter();
                assert!(instant() > t);
                assert!(wall() > w);
            }
            assert_eq!((instant(), wall()), (t, w));
        }
        let after = instant();
        advance();
        assert!(instant() > after);
        assert!(wall() > Duration::from_secs(1_700_000_000));
    }

    #[test]
    fn a_reading_is_taken_when_first_asked_for() {
        let before = instant();
        let _poll = Stamped::enter();
        advance();
        assert!(instant() > before);
    }

    #[test]
    fn a_panicking_poll_leaves_the_thread_unstamped() {
        let r = std::panic::catch_unwind(|| {
            let _poll = Stamped::enter();
            let _ = instant();
            panic!("in the poll");
        });
        assert!(r.is_err());
        let t = instant();
        advance();
        assert!(instant() > t);
    }
}
