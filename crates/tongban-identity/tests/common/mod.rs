//! Test harness: an in-memory keyring, a fresh store per test (SQLite file or PostgreSQL
//! schema), a manual clock, simulators, and a log capture to prove no personal data is logged.
#![allow(dead_code, unreachable_pub)]

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tongban_core::clock::ManualClock;
use tongban_crypto::keyring::{Keyring, OpContext, RootKey};
use tongban_identity::face::FaceSimulator;
use tongban_identity::realname::RealNameSimulator;
use tongban_identity::{Identity, IdentityConfig, IdentityParts, KeySource, LoginAdapter};
use tongban_store::{Store, StoreOptions};

/// A start time: 2026-11-28T00:00:00Z.
pub const T0: i64 = 1_795_824_000_000;
pub const LIVE_FACE: &[u8] = b"live face of the test citizen";

#[derive(Debug)]
pub struct TestKeys(pub Arc<Keyring>);

impl KeySource for TestKeys {
    fn ring(&self) -> Arc<Keyring> {
        self.0.clone()
    }
}

pub fn keys() -> Arc<TestKeys> {
    let mut ring = Keyring::new(RootKey::generate().expect("root"));
    let ctx = OpContext {
        actor: "test".to_owned(),
        at_unix_ms: T0,
    };
    ring.create_kek("pii-kek", &ctx).expect("kek");
    ring.create_dek("pii-data", "pii-kek", &ctx).expect("data");
    ring.create_dek("pii-index", "pii-kek", &ctx)
        .expect("index");
    Arc::new(TestKeys(Arc::new(ring)))
}

static N: AtomicUsize = AtomicUsize::new(0);

pub async fn sqlite() -> Store {
    sqlite_at().await.0
}

/// A fresh SQLite store and its directory (to read the files at rest).
pub async fn sqlite_at() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "tongban-identity-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&StoreOptions::new(format!(
        "sqlite://{}/id.db",
        dir.display()
    )))
    .await
    .expect("sqlite");
    (store, dir)
}

pub async fn postgres() -> Store {
    let base = std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!(
        "t_identity_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    let admin = Store::open(&StoreOptions::new(base.clone()))
        .await
        .expect("PostgreSQL at 127.0.0.1:5432, database `test`");
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
    let sep = if base.contains('?') { '&' } else { '?' };
    Store::open(&StoreOptions::new(format!(
        "{base}{sep}options=-c%20search_path%3D{schema}"
    )))
    .await
    .expect("postgres")
}

/// Everything a test drives.
pub struct Env {
    pub id: Arc<Identity>,
    pub clock: Arc<ManualClock>,
    pub real_name: Arc<RealNameSimulator>,
    pub store: Store,
}

pub fn config() -> IdentityConfig {
    IdentityConfig::default()
}

pub fn env_with(
    store: Store,
    cfg: IdentityConfig,
    clock: Arc<ManualClock>,
    login: Option<Arc<dyn LoginAdapter>>,
) -> Env {
    let real_name = Arc::new(RealNameSimulator::new(true));
    let id = Arc::new(Identity::new(IdentityParts {
        store: store.clone(),
        keys: keys(),
        clock: clock.clone(),
        config: cfg,
        real_name: real_name.clone(),
        face: Arc::new(FaceSimulator {
            live_image: LIVE_FACE.to_vec(),
        }),
        login,
    }));
    Env {
        id,
        clock,
        real_name,
        store,
    }
}

pub async fn env() -> Env {
    env_with(
        sqlite().await,
        config(),
        Arc::new(ManualClock::at_ms(T0)),
        None,
    )
}

/// A valid ID number from its first 17 digits.
pub fn id_number(body: &str) -> String {
    tongban_core::idcard::with_check_char(body).expect("17 digits")
}

/// A log sink shared with a `tracing` subscriber, in the masked JSON shape of production.
#[derive(Clone, Default)]
pub struct LogBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log")).into_owned()
    }
}

/// Captures every log line of the current thread (use a current-thread runtime).
pub fn capture_logs() -> (LogBuf, tracing::subscriber::DefaultGuard) {
    let buf = LogBuf::default();
    let b2 = buf.clone();
    let sub = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || b2.clone())
        .finish();
    (buf, tracing::subscriber::set_default(sub))
}
