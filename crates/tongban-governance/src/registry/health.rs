//! Health decisions, free of I/O and clocks: how long since the last heartbeat decides health,
//! and the protect threshold decides what a caller gets when most instances are down.

use std::time::Duration;

use super::{Instance, Timings};

/// Where an instance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    /// Past `remove_after`: the instance is removed.
    Expired,
}

/// The health of an ephemeral instance whose last heartbeat was `silent` ago.
pub fn of_heartbeat(silent: Duration, t: &Timings) -> Health {
    if silent >= t.remove_after {
        Health::Expired
    } else if silent >= t.unhealthy_after {
        Health::Unhealthy
    } else {
        Health::Healthy
    }
}

/// The instances a caller should use: the healthy ones, unless their share is below
/// `threshold`, in which case every instance (so that the load spreads over all of them rather
/// than crushing the few survivors or emptying the service).
pub fn select(all: Vec<Instance>, threshold: f64) -> Vec<Instance> {
    if all.is_empty() {
        return all;
    }
    let healthy = all.iter().filter(|i| i.healthy).count();
    // Counts of instances are small; the float conversion is exact.
    #[allow(clippy::cast_precision_loss)]
    let share = healthy as f64 / all.len() as f64;
    if share < threshold {
        all
    } else {
        all.into_iter().filter(|i| i.healthy).collect()
    }
}
