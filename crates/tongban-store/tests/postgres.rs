//! The storage suite on PostgreSQL (`TONGBAN_TEST_POSTGRES_URL`, default the local `test`
//! database): each test gets its own schema, so tests run in parallel without seeing each other.

mod suite;

use std::sync::atomic::{AtomicUsize, Ordering};

use tongban_store::{Backend, Store, StoreOptions};

fn base_url() -> String {
    std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn open() -> Store {
    static N: AtomicUsize = AtomicUsize::new(0);
    let schema = format!(
        "t_store_{}_{}_{}",
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
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE"
    )))
    .execute(admin.pool())
    .await
    .expect("drop");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .expect("schema");
    admin.close().await;
    let sep = if base_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{sep}options=-c%20search_path%3D{schema}", base_url());
    let store = Store::open(&StoreOptions::new(url))
        .await
        .expect("open postgres");
    assert_eq!(store.backend(), Backend::Postgres);
    store
}

store_suite!(open);
