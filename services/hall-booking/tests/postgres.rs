//! The service's suite on PostgreSQL (`TONGBAN_TEST_POSTGRES_URL`, default the local `test`
//! database): each test gets its own schema, so tests run in parallel without seeing each other.

mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};

use tongban_store::{Store, StoreOptions};

fn base_url() -> String {
    std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn open() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "t_hall_booking_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = Store::open(&StoreOptions::new(base_url()))
        .await
        .expect("PostgreSQL must be running at 127.0.0.1:5432 with database `test` (see README)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .expect("schema");
    admin.close().await;
    let base = base_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

hall_booking_suite!(open);
