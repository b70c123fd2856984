//! Time, injected: policies read a [`Clock`] so tests drive limiters and breakers by hand.

use std::fmt::Debug;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Wall-clock time since the Unix epoch (shared limits compare it across gateway instances).
pub trait Clock: Send + Sync + Debug + 'static {
    fn now(&self) -> Duration;
}

/// The system clock, read once per stamped poll (`tongban_core::clock`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

/// A clock that moves only when told to: for tests.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    micros: Arc<AtomicU64>,
}

// === impl SystemClock ===

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // Read once per stamped poll: the policies of one request see one time.
        tongban_core::clock::wall()
    }
}

// === impl ManualClock ===

impl ManualClock {
    /// Starts at `start` since the epoch.
    pub fn new(start: Duration) -> Self {
        let c = Self::default();
        c.set(start);
        c
    }

    pub fn set(&self, t: Duration) {
        self.micros.store(
            u64::try_from(t.as_micros()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
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
