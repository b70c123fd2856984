//! Locks that outlive a panic: a poisoned lock's data is still the last consistent state
//! (every critical section here leaves it whole), so it is used rather than propagated.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
