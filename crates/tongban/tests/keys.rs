//! The key hierarchy and PII vault wired to storage: root key from components, rotation and
//! rewrap under concurrent readers, no plaintext at rest, a tamper-evident audit chain, and the
//! `tongban keys` commands end to end.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{temp_dir, tongban, write_config};
use tongban_keys::{KeyService, PII_DATA, pii};

use tongban_core::config::Profile;
use tongban_crypto::keyring::SplitScheme;
use tongban_store::{Store, StoreOptions};

async fn sqlite_store(tag: &str) -> (Store, std::path::PathBuf) {
    let dir = temp_dir(tag);
    let path = dir.join("tongban.db");
    let store = Store::open(&StoreOptions::new(format!("sqlite://{}", path.display())))
        .await
        .expect("sqlite");
    (store, dir)
}

/// A PostgreSQL store in a fresh schema of the `test` database; returns it and the schema.
async fn pg_store(tag: &str) -> (Store, String) {
    let (url, schema) = common::pg_schema_url(tag).await;
    (
        Store::open(&StoreOptions::new(url))
            .await
            .expect("postgres schema"),
        schema,
    )
}

fn citizen(i: u32) -> (String, String, String) {
    const SURNAMES: [char; 8] = ['张', '王', '李', '赵', '欧', '陈', '刘', '黄'];
    const GIVEN: [char; 10] = ['伟', '芳', '娜', '敏', '静', '丽', '强', '磊', '洋', '艳'];
    let name: String = [
        SURNAMES[(i % 8) as usize],
        GIVEN[(i / 8 % 10) as usize],
        GIVEN[(i / 80 % 10) as usize],
    ]
    .into_iter()
    .collect();
    let body = format!(
        "{:06}{:04}{:02}{:02}{:03}",
        110101 + i % 500,
        1950 + i % 60,
        1 + i % 12,
        1 + i % 28,
        i % 1000
    );
    let id = tongban_core::idcard::with_check_char(&body).expect("17 digits");
    let phone = format!("139{:08}", 10_000_000 + i * 7919);
    (name, id, phone)
}

async fn dev_keys(store: &Store, dir: &std::path::Path) -> KeyService {
    let locations = vec![
        format!("file:{}", dir.join("keys/c1").display()),
        "db:c2".to_owned(),
    ];
    let (svc, _) = KeyService::init(
        store,
        &locations,
        SplitScheme::Xor { total: 2 },
        true,
        "test",
    )
    .await
    .expect("init");
    svc
}

/// Stores 1,000 generated citizens and returns their plaintext, for the no-plaintext checks.
async fn store_citizens(svc: &KeyService, store: &Store) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    for i in 0..1000 {
        let (name, id, phone) = citizen(i);
        let pid = pii::insert(svc, store, &name, &id, Some(&phone))
            .await
            .expect("insert");
        out.push((pid, name, id, phone));
    }
    out
}

fn assert_no_plaintext(dump: &[u8], people: &[(String, String, String, String)], what: &str) {
    let text = String::from_utf8_lossy(dump);
    for (_, name, id, phone) in people {
        assert!(
            !text.contains(name.as_str()),
            "{what}: a name is stored in plaintext"
        );
        assert!(
            !text.contains(id.as_str()),
            "{what}: an ID number is stored in plaintext"
        );
        assert!(
            !text.contains(phone.as_str()),
            "{what}: a phone is stored in plaintext"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_citizens_leave_no_plaintext_in_a_sqlite_dump() {
    let (store, dir) = sqlite_store("dump").await;
    let svc = dev_keys(&store, &dir).await;
    let people = store_citizens(&svc, &store).await;
    // Found again by ID number through the blind index, and decrypted.
    let (pid, name, id, phone) = &people[417];
    let found = pii::find_by_id_number(&svc, &store, &id.to_lowercase())
        .await
        .expect("find")
        .expect("found");
    assert_eq!(
        (&found.id, &found.name, &found.phone),
        (pid, name, &Some(phone.clone()))
    );
    store.close().await;
    // The database file and its WAL, byte for byte.
    let mut dump = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let p = entry.expect("entry").path();
        if p.is_file() {
            dump.extend(std::fs::read(&p).expect("read"));
        }
    }
    assert!(dump.len() > 100_000, "the dump holds the records");
    assert_no_plaintext(&dump, &people, "SQLite");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_citizens_leave_no_plaintext_in_pg_dump() {
    let (store, schema) = pg_store("dump").await;
    let dir = temp_dir("pgdump");
    let svc = dev_keys(&store, &dir).await;
    let people = store_citizens(&svc, &store).await;
    let out = std::process::Command::new("pg_dump")
        .args(["--schema", &schema, "--data-only", &common::pg_url()])
        .output()
        .expect("pg_dump must be installed (postgresql-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.len() > 100_000, "the dump holds the records");
    assert_no_plaintext(&out.stdout, &people, "pg_dump");
}

/// Rotation and rewrap while readers decrypt continuously: no read fails, no record is lost.
async fn rotate_and_rewrap_under_readers(store: Store, svc: KeyService) {
    let svc = Arc::new(svc);
    let mut people = Vec::new();
    for i in 0..150 {
        let (name, id, phone) = citizen(i);
        people.push((
            pii::insert(&svc, &store, &name, &id, Some(&phone))
                .await
                .expect("insert"),
            name,
            id,
        ));
    }
    let people = Arc::new(people);
    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for r in 0..3 {
        let (svc, store, people, stop, reads) = (
            svc.clone(),
            store.clone(),
            people.clone(),
            stop.clone(),
            reads.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut i = r * 37;
            while !stop.load(Ordering::Relaxed) {
                let (pid, name, id) = &people[i % people.len()];
                let p = pii::get(&svc, &store, pid)
                    .await
                    .expect("read during rotation")
                    .expect("present");
                assert_eq!((&p.name, &p.id_number), (name, id));
                reads.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    // A second service instance, as `tongban keys` in another process would be.
    let ops = KeyService::open(&store, &svc.meta_info().components, Profile::Test, "ops")
        .await
        .expect("open");
    for _ in 0..2 {
        ops.change("ops", |ring, c| ring.rotate(PII_DATA, c))
            .await
            .expect("rotate");
        ops.change("ops", |ring, c| ring.rotate("pii-kek", c))
            .await
            .expect("rotate kek");
        ops.change("ops", |ring, c| ring.rewrap_children("pii-kek", c))
            .await
            .expect("rewrap deks");
        // In small steps, as an interrupted and resumed run would go.
        let mut cursor = None;
        loop {
            let rep = pii::rewrap(&ops, &store, cursor.clone(), 40, Some(40))
                .await
                .expect("rewrap");
            assert!(rep.failures.is_empty());
            cursor = rep.last_cursor;
            if rep.scanned < 40 {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Idempotent: a second full run finds everything current.
    let again = pii::rewrap(&ops, &store, None, 100, None)
        .await
        .expect("rewrap again");
    assert_eq!((again.rewrapped, again.already_current), (0, 450));
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader never failed");
    }
    assert!(reads.load(Ordering::Relaxed) > 0);
    // Old data-key versions can now be retired, and every record still reads.
    ops.change("ops", |ring, c| {
        ring.set_min_decryption_version(PII_DATA, 3, c)
    })
    .await
    .expect("retire");
    svc.reload().await.expect("reload");
    for (pid, name, _) in people.iter() {
        let p = pii::get(&svc, &store, pid)
            .await
            .expect("read")
            .expect("present");
        assert_eq!(&p.name, name);
    }
    assert_eq!(store.persons().count().await.expect("count"), 150);
    assert!(
        KeyService::verify_audit(&store)
            .await
            .expect("audit verifies")
            > 10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_rewrap_lose_nothing_under_readers_sqlite() {
    let (store, dir) = sqlite_store("rotate").await;
    let svc = dev_keys(&store, &dir).await;
    rotate_and_rewrap_under_readers(store, svc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_rewrap_lose_nothing_under_readers_postgres() {
    let (store, _) = pg_store("rotate").await;
    let dir = temp_dir("pgrotate");
    let svc = dev_keys(&store, &dir).await;
    rotate_and_rewrap_under_readers(store, svc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_or_deleted_audit_records_are_detected() {
    let (store, dir) = sqlite_store("audit").await;
    let svc = dev_keys(&store, &dir).await;
    svc.change("ops", |ring, c| ring.rotate(PII_DATA, c))
        .await
        .expect("rotate");
    let n = KeyService::verify_audit(&store).await.expect("verifies");
    sqlx::query("UPDATE tb_key_audit SET actor = 'someone-else' WHERE seq = 2")
        .execute(store.pool())
        .await
        .expect("edit");
    let e = KeyService::verify_audit(&store)
        .await
        .expect_err("edited")
        .to_string();
    assert!(e.contains("record 2"), "{e}");
    sqlx::query("UPDATE tb_key_audit SET actor = 'test' WHERE seq = 2")
        .execute(store.pool())
        .await
        .expect("undo");
    KeyService::verify_audit(&store).await.expect("restored");
    sqlx::query("DELETE FROM tb_key_audit WHERE seq = 3")
        .execute(store.pool())
        .await
        .expect("delete");
    let e = KeyService::verify_audit(&store)
        .await
        .expect_err("deleted")
        .to_string();
    assert!(e.contains("broken") || e.contains("deleted"), "{e}");
    assert!(n >= 7);
}

fn keys_cmd(
    cfg: &std::path::Path,
    data: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (bool, String, String) {
    let mut cmd = tongban();
    cmd.arg("keys")
        .args(args)
        .arg("--config")
        .arg(cfg)
        .arg("--data-dir")
        .arg(data);
    cmd.env_remove("TB_ROOT_3");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The CLI's database in `data`, and its key service from `components` (two of three are
/// present: the `env:` one is not set in this process).
async fn cli_store(data: &std::path::Path, components: &[String]) -> (Store, KeyService) {
    let url = format!("sqlite://{}", data.join("tongban.db").display());
    let store = Store::open(&StoreOptions::new(url))
        .await
        .expect("the CLI's database");
    let svc = KeyService::open(&store, components, Profile::Test, "test")
        .await
        .expect("key service");
    (store, svc)
}

/// Writes `n` citizens through the vault; returns their ids and plaintext.
async fn write_people(
    data: &std::path::Path,
    components: &[String],
    n: u32,
) -> Vec<(String, String, String, String)> {
    let (store, svc) = cli_store(data, components).await;
    let mut people = Vec::new();
    for i in 0..n {
        let (name, id, phone) = citizen(i);
        let pid = pii::insert(&svc, &store, &name, &id, Some(&phone))
            .await
            .expect("insert");
        people.push((pid, name, id, phone));
    }
    assert_eq!(store.persons().count().await.expect("count"), i64::from(n));
    store.close().await;
    people
}

/// Every person decrypts to what was written.
async fn read_people(
    data: &std::path::Path,
    components: &[String],
    people: &[(String, String, String, String)],
) {
    let (store, svc) = cli_store(data, components).await;
    for (pid, name, id, phone) in people {
        let p = pii::get(&svc, &store, pid)
            .await
            .expect("decrypts under the current key")
            .expect("present");
        assert_eq!(
            (&p.name, &p.id_number, &p.phone),
            (name, id, &Some(phone.clone()))
        );
    }
    store.close().await;
}

/// The counts of `tongban keys rewrap`'s summary line: (re-encrypted, already current,
/// changed meanwhile, failed).
fn rewrap_counts(out: &str) -> (u64, u64, u64, u64) {
    let line = out
        .lines()
        .find(|l| l.starts_with("rewrap: "))
        .unwrap_or_else(|| panic!("no summary line: {out}"));
    let n: Vec<u64> = line
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    match n[..] {
        [a, b, c, d] => (a, b, c, d),
        _ => panic!("not four counts: {line}"),
    }
}

#[test]
fn keys_commands_end_to_end_with_shamir_components() {
    let dir = temp_dir("keyscli");
    let data = dir.join("data");
    let c1 = dir.join("vol1/root-1");
    let cfg = write_config(
        &dir,
        &format!(
            "[keys]\ncomponents = [\"file:{}\", \"db:root-2\", \"env:TB_ROOT_3\"]\n",
            c1.display()
        ),
    );
    let (ok, out, err) = keys_cmd(&cfg, &data, &["init", "--scheme", "2-of-3"], &[]);
    assert!(ok, "{out}{err}");
    let env_line = out
        .lines()
        .find(|l| l.starts_with("TB_ROOT_3="))
        .expect("env component shown once");
    let env_value = env_line.trim_start_matches("TB_ROOT_3=").to_owned();
    // Init refuses to run twice.
    let (ok, _, err) = keys_cmd(&cfg, &data, &["init", "--scheme", "2-of-3"], &[]);
    assert!(!ok && err.contains("already exists"), "{err}");

    // All three present, then any two of three.
    let (ok, out, err) = keys_cmd(&cfg, &data, &["status"], &[("TB_ROOT_3", &env_value)]);
    assert!(ok, "{err}");
    assert!(
        out.contains("scheme shamir (2 of 3)") && out.contains("chain verified"),
        "{out}"
    );
    let (ok, _, err) = keys_cmd(&cfg, &data, &["status"], &[]);
    assert!(ok, "2 of 3 suffice: {err}");

    // Personal data under version 1 of the data key, written as the platform writes it.
    let components = [
        format!("file:{}", c1.display()),
        "db:root-2".to_owned(),
        "env:TB_ROOT_3".to_owned(),
    ];
    const PEOPLE: u32 = 25;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let people = rt.block_on(write_people(&data, &components, PEOPLE));

    let (ok, out, err) = keys_cmd(&cfg, &data, &["rotate", "pii-data"], &[]);
    assert!(ok && out.contains("version 2 is current"), "{out}{err}");
    // Every field of every row moves to version 2: name, ID number and phone per person.
    let (ok, out, err) = keys_cmd(&cfg, &data, &["rewrap"], &[]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        rewrap_counts(&out),
        (3 * u64::from(PEOPLE), 0, 0, 0),
        "re-encrypted, already current, changed meanwhile, failed: {out}"
    );
    // Idempotent: a second run finds them all current.
    let (ok, out, err) = keys_cmd(&cfg, &data, &["rewrap", "--restart"], &[]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        rewrap_counts(&out),
        (0, 3 * u64::from(PEOPLE), 0, 0),
        "{out}"
    );
    // With version 1 retired, only what was rewrapped can still be read: all of it is.
    let (ok, out, err) = keys_cmd(&cfg, &data, &["retire", "pii-data", "--below", "2"], &[]);
    assert!(ok, "{out}{err}");
    rt.block_on(read_people(&data, &components, &people));
    let (ok, out, err) = keys_cmd(&cfg, &data, &["verify"], &[]);
    assert!(ok && out.contains("records verified"), "{out}{err}");

    // A wrong component is named, its content is not shown.
    let original = std::fs::read_to_string(&c1).expect("component");
    let (ok, _, err) = keys_cmd(
        &cfg,
        &data,
        &["status"],
        &[("TB_ROOT_3", "tongban-root-component:v1:garbage")],
    );
    assert!(!ok && err.contains("env:TB_ROOT_3"), "{err}");
    assert!(!err.contains(env_value.as_str()));
    // Too few components: the missing ones are named.
    std::fs::remove_file(&c1).expect("remove");
    let (ok, _, err) = keys_cmd(&cfg, &data, &["status"], &[]);
    assert!(!ok, "1 of 3 must not assemble");
    assert!(
        err.contains(&format!("file:{}", c1.display())) || err.contains("env:TB_ROOT_3"),
        "{err}"
    );
    assert!(
        !err.contains(original.trim()),
        "component bytes must never be printed"
    );
    std::fs::write(&c1, &original).expect("restore");
    // A component readable by others is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&c1, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        // Two others remain, so it assembles, and says why it skipped the file.
        let (ok, _, err) = keys_cmd(&cfg, &data, &["status"], &[("TB_ROOT_3", &env_value)]);
        assert!(ok && err.contains("chmod 600"), "{err}");
        let (ok, _, err) = keys_cmd(&cfg, &data, &["status"], &[]);
        assert!(!ok && err.contains("only 1 of the 2"), "{err}");
    }
}
