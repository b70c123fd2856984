//! The service's suite on SQLite, the embedded default: a fresh file per test.

mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};

async fn open() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "tongban-hall-booking-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    format!("sqlite://{}/hall-booking.db", dir.display())
}

hall_booking_suite!(open);
