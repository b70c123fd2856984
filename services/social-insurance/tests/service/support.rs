//! What every test starts from: the real province simulator on `127.0.0.1:0`, the service in
//! process on SQLite or PostgreSQL (`TONGBAN_TEST_POSTGRES_URL`, default the local `test`
//! database, a schema per test), caller contexts sealed as the gateway seals them, and an
//! HTTP client.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tongban_crypto::caller_context::{
    self, CallerPart, ContextKey, Person, RequestPart, seal_caller, seal_person, seal_request,
};
use tongban_province_sim::ProvinceSim;
use tongban_social_insurance::{Config, IndexKey, Platform, RunningService, serve};
use zeroize::Zeroizing;

pub const INDEX_KEY: &str = "8f0e1d2c3b4a59687766554433221100";

static N: AtomicUsize = AtomicUsize::new(0);

/// Which database the service runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running simulator and service.
pub struct Env {
    pub sim: ProvinceSim,
    pub svc: RunningService,
    pub key: ContextKey,
    pub http: reqwest::Client,
    pg_schema: Option<String>,
    sqlite_dir: Option<std::path::PathBuf>,
}

/// Who calls, as the gateway would say it.
#[derive(Clone, Debug)]
pub struct As {
    pub svc: &'static str,
    pub sub: Option<&'static str>,
    pub lvl: &'static str,
    /// Name and ID number of the real-name person.
    pub person: Option<(&'static str, &'static str)>,
    /// Milliseconds from now the context expires.
    pub exp_in: i64,
}

/// 张伟, the identity simulator's first test account, as the province knows him.
pub fn zhang() -> (&'static str, &'static str) {
    let p = &tongban_province_sim::persons()[0];
    (p.name.as_str(), p.id_number.as_str())
}

/// 李娜, the second test account.
pub fn li() -> (&'static str, &'static str) {
    let p = &tongban_province_sim::persons()[1];
    (p.name.as_str(), p.id_number.as_str())
}

/// 张伟 at real-name level, his person handed over.
pub fn as_zhang() -> As {
    As {
        svc: "social-insurance",
        sub: Some("sub-zhang"),
        lvl: "real_name",
        person: Some(zhang()),
        exp_in: 60_000,
    }
}

pub fn pg_base_url() -> String {
    std::env::var("TONGBAN_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
    )
}

/// A database URL of its own for one test, and the PostgreSQL schema or SQLite directory to
/// remove after it.
async fn database(db: Db) -> (String, Option<String>, Option<std::path::PathBuf>) {
    match db {
        Db::Sqlite => {
            let dir = std::env::temp_dir().join(unique("tongban-si"));
            let _ = std::fs::remove_dir_all(&dir);
            (format!("sqlite://{}/si.db", dir.display()), None, Some(dir))
        }
        Db::Postgres => {
            let schema = unique("t_si");
            let admin = admin_pool().await;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .expect("create schema");
            admin.close().await;
            let base = pg_base_url();
            let sep = if base.contains('?') { '&' } else { '?' };
            (
                format!("{base}{sep}options=-c%20search_path%3D{schema}"),
                Some(schema),
                None,
            )
        }
    }
}

async fn admin_pool() -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&pg_base_url())
        .await
        .expect("PostgreSQL must be running at 127.0.0.1:5432 with database `test` (see README)")
}

pub fn context_key() -> ContextKey {
    ContextKey::from_bytes(1, &[7; 32])
}

/// The simulator and the service on `db`, the service's configuration adjusted by `tweak`.
pub async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Env {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let sim = tongban_province_sim::serve(listener).expect("simulator");
    start_with(sim, db, tweak).await
}

/// The service in front of an already running simulator.
pub async fn start_with(sim: ProvinceSim, db: Db, tweak: impl FnOnce(&mut Config)) -> Env {
    let (url, pg_schema, sqlite_dir) = database(db).await;
    let key = context_key();
    let mut config = Config::new(
        url,
        sim.url(),
        IndexKey::from_hex(1, INDEX_KEY).expect("key"),
        Platform::Keys(vec![key.clone()]),
    );
    tweak(&mut config);
    let svc = serve(config).await.expect("service starts");
    Env {
        sim,
        svc,
        key,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client"),
        pg_schema,
        sqlite_dir,
    }
}

impl Env {
    /// `X-Tb-Caller` for `who`, sealed as the gateway seals it.
    pub fn context(&self, who: &As) -> String {
        seal_context(&self.key, who)
    }

    pub async fn get(&self, path_and_query: &str, ctx: Option<&str>) -> (u16, Value) {
        let mut req = self.http.get(format!("{}{path_and_query}", self.svc.url()));
        if let Some(c) = ctx {
            req = req.header(caller_context::HEADER, c);
        }
        answer(req).await
    }

    /// POSTs `body` as JSON (`Content-Type: application/json`).
    pub async fn post(
        &self,
        path: &str,
        ctx: Option<&str>,
        body: impl Into<String>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.svc.url()))
            .header("content-type", "application/json")
            .body(body.into());
        if let Some(c) = ctx {
            req = req.header(caller_context::HEADER, c);
        }
        answer(req).await
    }

    /// A contribution-record query for `(name, id_number)` by `who`.
    pub async fn query(
        &self,
        who: &As,
        person: (&str, &str),
        from: &str,
        to: &str,
    ) -> (u16, Value) {
        let body = serde_json::json!({
            "id_number": person.1, "name": person.0, "from": from, "to": to,
        });
        self.post(
            "/api/v1/contribution-record-queries",
            Some(&self.context(who)),
            body.to_string(),
        )
        .await
    }

    /// Every row of the query log, every column as text, read straight from the table.
    pub async fn log_rows(&self) -> Vec<Vec<String>> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT CAST(id AS TEXT), CAST(at_ms AS TEXT), COALESCE(subject, ''), \
             COALESCE(request_id, ''), CAST(own AS TEXT), person_index, \
             CAST(index_key_version AS TEXT), period_from, period_to, CAST(code AS TEXT), \
             CAST(records AS TEXT) FROM si_query_log ORDER BY id",
        )
        .fetch_all(self.svc.query_log().store().pool())
        .await
        .expect("read the log");
        rows.iter()
            .map(|r| (0..11).map(|i| r.get::<String, _>(i)).collect())
            .collect()
    }

    /// The simulator's `/sim/stats`, over HTTP.
    pub async fn sim_stats(&self) -> Value {
        let (_, v) = answer(self.http.get(format!("{}/sim/stats", self.sim.url()))).await;
        v["data"].clone()
    }

    /// Stops the service and removes the test's database.
    pub async fn finish(self) {
        self.svc.shutdown().await;
        if let Some(dir) = &self.sqlite_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(schema) = self.pg_schema {
            let admin = admin_pool().await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE"
            )))
            .execute(&admin)
            .await;
            admin.close().await;
        }
    }
}

pub fn seal_context(key: &ContextKey, who: &As) -> String {
    seal_context_with(key, key, who)
}

/// A context tagged with `key` whose person is sealed with `person_key`.
pub fn seal_context_with(key: &ContextKey, person_key: &ContextKey, who: &As) -> String {
    let person = who.person.map(|(name, id)| {
        seal_person(
            &Person {
                name: Zeroizing::new(name.to_owned()),
                id_number: Zeroizing::new(id.to_owned()),
            },
            person_key,
        )
        .expect("seal person")
    });
    let now = now_ms();
    let caller = seal_caller(
        &CallerPart {
            svc: who.svc.to_owned(),
            sub: who.sub.map(str::to_owned),
            lvl: who.lvl.to_owned(),
            face_at: None,
            sid: who.sub.map(|_| "s-1".to_owned()),
            dev: who.sub.map(|_| "D1".to_owned()),
            app: None,
            person,
        },
        key,
    );
    seal_request(
        &caller,
        &RequestPart {
            route: "contribution-records".to_owned(),
            rid: Some(format!("r-{}", N.fetch_add(1, Ordering::SeqCst))),
            iat: now,
            exp: now + who.exp_in,
        },
        key,
    )
}

async fn answer(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("the service answers");
    let status = resp.status().as_u16();
    let body = resp.bytes().await.expect("body");
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("an envelope, not {:?}", String::from_utf8_lossy(&body)));
    (status, v)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
