//! A component's own migrations (`Store::migrate_component`) on SQLite and on PostgreSQL
//! (`TONGBAN_TEST_POSTGRES_URL`, default the local `test` database, a schema per test): applied
//! once, in order, all or none, apart from the platform's and other components', and an edited
//! applied migration refused.

use std::sync::atomic::{AtomicUsize, Ordering};

use tongban_store::{Backend, ComponentMigration, Store, StoreError, StoreOptions};

static N: AtomicUsize = AtomicUsize::new(0);

async fn sqlite() -> Store {
    let dir = std::env::temp_dir().join(format!(
        "tongban-component-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let url = format!("sqlite://{}/t.db", dir.display());
    let store = Store::open(&StoreOptions::new(url))
        .await
        .expect("open sqlite");
    assert_eq!(store.backend(), Backend::Sqlite);
    store
}

fn pg_base_url() -> String {
    std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn postgres() -> Store {
    let schema = format!(
        "t_component_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    );
    let admin = Store::open(&StoreOptions::new(pg_base_url()))
        .await
        .expect("PostgreSQL must be running at 127.0.0.1:5432 with database `test` (see README)");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(admin.pool())
        .await
        .expect("schema");
    admin.close().await;
    let base = pg_base_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let store = Store::open(&StoreOptions::new(url))
        .await
        .expect("open postgres");
    assert_eq!(store.backend(), Backend::Postgres);
    store
}

/// Declares each case once per backend.
macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::sqlite().await).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(&super::postgres().await).await;
                }
            )*
        }
    };
}

both_backends!(
    applied_once_in_order_and_usable,
    an_edited_applied_migration_stops_start_up,
    a_failing_migration_applies_none_of_the_batch,
    components_are_recorded_apart,
    concurrent_starts_apply_once,
    bad_names_and_versions_are_refused_before_anything_runs,
);

fn m(version: i64, name: &'static str, sql: &'static str) -> ComponentMigration {
    ComponentMigration {
        version,
        name,
        sqlite: sql,
        postgres: sql,
    }
}

const ITEMS: &str = "CREATE TABLE dm_items (id TEXT PRIMARY KEY, n BIGINT NOT NULL)";
const ITEMS_INDEX: &str = "CREATE INDEX dm_items_n ON dm_items (n); \
                           INSERT INTO dm_items (id, n) VALUES ('seed', 1)";

async fn count(store: &Store, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}

async fn applied_once_in_order_and_usable(store: &Store) {
    assert!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list")
            .is_empty()
    );
    store
        .migrate_component("demo", &[m(1, "items", ITEMS)])
        .await
        .expect("first release");
    let two = [m(1, "items", ITEMS), m(2, "items_index", ITEMS_INDEX)];
    // The second release applies only its new migration (a second CREATE TABLE would fail, a
    // second INSERT of the seed would break the primary key), and again nothing.
    store
        .migrate_component("demo", &two)
        .await
        .expect("second release");
    store.migrate_component("demo", &two).await.expect("again");
    assert_eq!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list"),
        vec![1, 2]
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM dm_items").await, 1);
    // The platform's own record is untouched.
    assert_eq!(
        store.applied_migrations().await.expect("platform"),
        vec![1, 2, 3]
    );
}

async fn an_edited_applied_migration_stops_start_up(store: &Store) {
    store
        .migrate_component("demo", &[m(1, "items", ITEMS)])
        .await
        .expect("applied");
    let edited = m(
        1,
        "items",
        "CREATE TABLE dm_items (id TEXT PRIMARY KEY, n BIGINT)",
    );
    match store
        .migrate_component("demo", &[edited, m(2, "items_index", ITEMS_INDEX)])
        .await
    {
        Err(StoreError::Migration { version, name, .. }) => {
            assert_eq!((version, name.as_str()), (1, "demo/items"));
        }
        other => panic!("an edited migration must stop start-up: {other:?}"),
    }
    // Nothing after it ran.
    assert_eq!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list"),
        vec![1]
    );
}

async fn a_failing_migration_applies_none_of_the_batch(store: &Store) {
    let batch = [
        m(1, "items", ITEMS),
        m(2, "broken", "CREATE TABLE dm_broken (id TEXT PRIMARY KEY"),
    ];
    match store.migrate_component("demo", &batch).await {
        Err(StoreError::Migration { version, name, .. }) => {
            assert_eq!((version, name.as_str()), (2, "demo/broken"));
        }
        other => panic!("a broken migration must fail: {other:?}"),
    }
    assert!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list")
            .is_empty()
    );
    // Migration 1 was rolled back with it: applying the fixed batch creates the table anew.
    store
        .migrate_component("demo", &[m(1, "items", ITEMS)])
        .await
        .expect("fixed");
    assert_eq!(count(store, "SELECT COUNT(*) FROM dm_items").await, 0);
}

async fn components_are_recorded_apart(store: &Store) {
    store
        .migrate_component("demo", &[m(1, "items", ITEMS)])
        .await
        .expect("demo");
    store
        .migrate_component(
            "other-service",
            &[m(
                1,
                "things",
                "CREATE TABLE os_things (id TEXT PRIMARY KEY)",
            )],
        )
        .await
        .expect("other");
    for c in ["demo", "other-service"] {
        assert_eq!(
            store.applied_component_migrations(c).await.expect("list"),
            vec![1]
        );
    }
    assert!(
        store
            .applied_component_migrations("third")
            .await
            .expect("list")
            .is_empty()
    );
}

async fn concurrent_starts_apply_once(store: &Store) {
    static BATCH: &[ComponentMigration] = &[
        ComponentMigration {
            version: 1,
            name: "items",
            sqlite: ITEMS,
            postgres: ITEMS,
        },
        ComponentMigration {
            version: 2,
            name: "items_index",
            sqlite: ITEMS_INDEX,
            postgres: ITEMS_INDEX,
        },
    ];
    // Eight instances starting at once: the lock (PostgreSQL) or the write transaction
    // (SQLite) lets one apply; the others find nothing left. A second application would fail.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.migrate_component("demo", BATCH).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("every start succeeds");
    }
    assert_eq!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list"),
        vec![1, 2]
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM dm_items").await, 1);
}

async fn bad_names_and_versions_are_refused_before_anything_runs(store: &Store) {
    for name in ["", "Demo", "demo_service", "démo", &"a".repeat(65)] {
        // The name is `&'static str` in real use; leak the test's few bytes.
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        assert!(
            matches!(
                store.migrate_component(name, &[m(1, "items", ITEMS)]).await,
                Err(StoreError::Invalid(_))
            ),
            "{name:?}"
        );
    }
    for batch in [
        vec![m(0, "items", ITEMS)],
        vec![m(2, "items", ITEMS), m(1, "items_index", ITEMS_INDEX)],
        vec![m(1, "items", ITEMS), m(1, "items_index", ITEMS_INDEX)],
    ] {
        assert!(matches!(
            store.migrate_component("demo", &batch).await,
            Err(StoreError::Invalid(_))
        ));
    }
    assert!(
        store
            .applied_component_migrations("demo")
            .await
            .expect("list")
            .is_empty()
    );
}
