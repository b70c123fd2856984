//! The storage conformance suite: one body per behaviour, run by a thin file per backend.

use tongban_store::identity::{
    ConsentRow, FaceAttemptRow, LoginStateRow, SessionRow, UserFieldRow, UserRow,
};
use tongban_store::keyring::{KeyAuditRow, KeyPolicyRow, KeyVersionRow};
use tongban_store::persons::PersonRow;
use tongban_store::{Expect, Store, StoreError};

/// Declares one `#[tokio::test]` per case for the backend that `$open` opens.
#[macro_export]
macro_rules! store_suite {
    ($open:path) => {
        store_suite!(@cases $open;
            migrations_are_recorded_once, ping_answers, put_get_round_trip,
            versions_and_history_grow, optimistic_conflicts_leave_data_intact,
            delete_keeps_history_and_recreate_continues, invalid_names_and_sizes_are_refused,
            concurrent_writers_lose_nothing, list_is_per_namespace, unicode_values_round_trip,
            key_changes_are_atomic_and_the_audit_chain_cannot_fork, components_are_never_overwritten,
            persons_by_blind_index_and_field_paging, identity_sessions_rotate_once_and_revoke,
            identity_accounts_consents_fields_and_login_states);
    };
    (@cases $open:path; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let store = $open().await;
                suite::$case(&store).await;
            }
        )*
    };
}

pub(crate) async fn migrations_are_recorded_once(store: &Store) {
    let first = store.applied_migrations().await.expect("list");
    assert_eq!(first, vec![1, 2, 3]);
}

pub(crate) async fn ping_answers(store: &Store) {
    store.ping().await.expect("ping");
}

pub(crate) async fn put_get_round_trip(store: &Store) {
    let kv = store.kv();
    assert_eq!(kv.get("routes", "portal").await.expect("get"), None);
    let e = kv
        .put("routes", "portal", r#"{"prefix":"/"}"#, Expect::Absent)
        .await
        .expect("put");
    assert_eq!(e.version, 1);
    let got = kv
        .get("routes", "portal")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.value.as_deref(), Some(r#"{"prefix":"/"}"#));
    assert_eq!(got.version, 1);
    assert!(
        got.updated_at_ms > 1_700_000_000_000,
        "milliseconds since epoch"
    );
}

pub(crate) async fn versions_and_history_grow(store: &Store) {
    let kv = store.kv();
    for i in 1..=3 {
        let e = kv
            .put("limits", "api", &format!("rate={i}"), Expect::Any)
            .await
            .expect("put");
        assert_eq!(e.version, i);
    }
    let h = kv.history("limits", "api").await.expect("history");
    let versions: Vec<i64> = h.iter().map(|e| e.version).collect();
    assert_eq!(versions, vec![1, 2, 3]);
    assert_eq!(h[0].value.as_deref(), Some("rate=1"));
}

pub(crate) async fn optimistic_conflicts_leave_data_intact(store: &Store) {
    let kv = store.kv();
    kv.put("cfg", "a", "one", Expect::Absent)
        .await
        .expect("create");
    let err = kv
        .put("cfg", "a", "two", Expect::Absent)
        .await
        .expect_err("exists");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let err = kv
        .put("cfg", "a", "two", Expect::Version(7))
        .await
        .expect_err("stale");
    assert!(
        matches!(&err, StoreError::Conflict { expected, actual } if expected == "version 7" && actual == "version 1"),
        "{err}"
    );
    let err = kv
        .put("cfg", "missing", "x", Expect::Version(1))
        .await
        .expect_err("absent");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    let now = kv.get("cfg", "a").await.expect("get").expect("present");
    assert_eq!((now.version, now.value.as_deref()), (1, Some("one")));
    assert_eq!(kv.history("cfg", "a").await.expect("history").len(), 1);
    assert_eq!(kv.get("cfg", "missing").await.expect("get"), None);
    kv.put("cfg", "a", "two", Expect::Version(1))
        .await
        .expect("right version");
}

pub(crate) async fn delete_keeps_history_and_recreate_continues(store: &Store) {
    let kv = store.kv();
    kv.put("rules", "r", "v1", Expect::Absent)
        .await
        .expect("create");
    let err = kv
        .delete("rules", "r", Expect::Version(5))
        .await
        .expect_err("stale");
    assert!(matches!(err, StoreError::Conflict { .. }));
    assert!(
        kv.get("rules", "r").await.expect("get").is_some(),
        "failed delete keeps data"
    );
    kv.delete("rules", "r", Expect::Version(1))
        .await
        .expect("delete");
    assert_eq!(kv.get("rules", "r").await.expect("get"), None);
    assert!(matches!(
        kv.delete("rules", "r", Expect::Any).await,
        Err(StoreError::NotFound)
    ));
    let e = kv
        .put("rules", "r", "v3", Expect::Absent)
        .await
        .expect("recreate");
    assert_eq!(
        e.version, 3,
        "numbering continues after the deletion record (2)"
    );
    let h = kv.history("rules", "r").await.expect("history");
    assert_eq!(
        h.iter().map(|e| e.value.clone()).collect::<Vec<_>>(),
        vec![Some("v1".to_owned()), None, Some("v3".to_owned())]
    );
}

pub(crate) async fn invalid_names_and_sizes_are_refused(store: &Store) {
    let kv = store.kv();
    for (ns, key) in [
        ("", "k"),
        ("ns", ""),
        ("ns", "with space"),
        ("ns", "semi;colon"),
        ("ns", "引号"),
    ] {
        let err = kv
            .put(ns, key, "v", Expect::Any)
            .await
            .expect_err("bad name");
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "{ns:?}/{key:?}: {err}"
        );
    }
    let long = "k".repeat(tongban_store::kv::MAX_NAME_BYTES + 1);
    assert!(matches!(
        kv.put("ns", &long, "v", Expect::Any).await,
        Err(StoreError::Invalid(_))
    ));
    let big = "x".repeat(tongban_store::kv::MAX_VALUE_BYTES + 1);
    assert!(matches!(
        kv.put("ns", "big", &big, Expect::Any).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        kv.get("ns", "big").await.expect("get"),
        None,
        "nothing written"
    );
}

pub(crate) async fn concurrent_writers_lose_nothing(store: &Store) {
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                s.kv()
                    .put("race", "counter", &format!("{w}-{i}"), Expect::Any)
                    .await
                    .expect("put");
            }
        }));
    }
    for t in tasks {
        t.await.expect("join");
    }
    let h = store
        .kv()
        .history("race", "counter")
        .await
        .expect("history");
    assert_eq!(h.len(), 40, "every write is one version");
    let versions: Vec<i64> = h.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=40).collect::<Vec<_>>());
    assert_eq!(
        store
            .kv()
            .get("race", "counter")
            .await
            .expect("get")
            .map(|e| e.version),
        Some(40)
    );
}

pub(crate) async fn list_is_per_namespace(store: &Store) {
    let kv = store.kv();
    kv.put("ns-a", "2", "b", Expect::Any).await.expect("put");
    kv.put("ns-a", "1", "a", Expect::Any).await.expect("put");
    kv.put("ns-b", "1", "other", Expect::Any)
        .await
        .expect("put");
    let keys: Vec<String> = kv
        .list("ns-a")
        .await
        .expect("list")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(keys, vec!["1", "2"]);
}

pub(crate) async fn unicode_values_round_trip(store: &Store) {
    let v = "政务服务 🇨🇳 'quote\" ; DROP TABLE tb_kv; --";
    store
        .kv()
        .put("texts", "t", v, Expect::Any)
        .await
        .expect("put");
    let got = store
        .kv()
        .get("texts", "t")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.value.as_deref(), Some(v));
    // NUL is refused alike on both backends (PostgreSQL text cannot hold it), and nothing changes.
    let err = store
        .kv()
        .put("texts", "t", "a\u{0}b", Expect::Any)
        .await
        .expect_err("NUL");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let still = store
        .kv()
        .get("texts", "t")
        .await
        .expect("get")
        .expect("present");
    assert_eq!((still.version, still.value.as_deref()), (1, Some(v)));
}

fn audit(seq: i64, op: &str) -> KeyAuditRow {
    KeyAuditRow {
        seq,
        actor: "test".into(),
        at_ms: 1,
        operation: op.into(),
        key_id: "pii".into(),
        version: 1,
        prev_hash: "00".into(),
        hash: format!("h{seq}"),
    }
}

pub(crate) async fn key_changes_are_atomic_and_the_audit_chain_cannot_fork(store: &Store) {
    let keys = store.keys();
    let policy = KeyPolicyRow {
        key_id: "pii".into(),
        kind: "kek".into(),
        parent: "root".into(),
        current_version: 1,
        min_decryption_version: 1,
    };
    let version = KeyVersionRow {
        key_id: "pii".into(),
        version: 1,
        wrapped_by: "root".into(),
        wrapped_by_version: 0,
        wrapped: "AAAA".into(),
        kcv: "01020304".into(),
        created_at_ms: 1,
    };
    keys.apply(
        std::slice::from_ref(&policy),
        std::slice::from_ref(&version),
        &[audit(0, "create")],
    )
    .await
    .expect("apply");
    // A second writer that read the chain before the first wrote tries seq 0 again.
    let mut rotated = policy.clone();
    rotated.current_version = 2;
    let err = keys
        .apply(&[rotated], &[], &[audit(0, "rotate")])
        .await
        .expect_err("fork");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert_eq!(
        keys.policies().await.expect("policies"),
        vec![policy.clone()],
        "nothing of the loser persisted"
    );
    assert_eq!(keys.audit().await.expect("audit").len(), 1);
    // A gap is refused too.
    assert!(keys.apply(&[], &[], &[audit(5, "x")]).await.is_err());
    keys.apply(&[], &[], &[audit(1, "verify")])
        .await
        .expect("next in chain");
    assert_eq!(
        keys.audit_head().await.expect("head").map(|a| a.seq),
        Some(1)
    );
    assert_eq!(keys.versions().await.expect("versions"), vec![version]);
}

pub(crate) async fn components_are_never_overwritten(store: &Store) {
    let keys = store.keys();
    assert_eq!(keys.component("root-2").await.expect("get"), None);
    keys.put_component("root-2", "tbk1.first")
        .await
        .expect("put");
    assert!(matches!(
        keys.put_component("root-2", "tbk1.second").await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        keys.component("root-2").await.expect("get").as_deref(),
        Some("tbk1.first")
    );
}

pub(crate) async fn persons_by_blind_index_and_field_paging(store: &Store) {
    let persons = store.persons();
    for i in 0..4 {
        persons
            .insert(&PersonRow {
                id: format!("p{i}"),
                name_enc: format!("n{i}"),
                id_number_enc: format!("i{i}"),
                id_number_bidx: format!("b{i}"),
                phone_enc: (i % 2 == 0).then(|| format!("t{i}")),
                phone_bidx: None,
            })
            .await
            .expect("insert");
    }
    let dup = PersonRow {
        id: "p9".into(),
        name_enc: "x".into(),
        id_number_enc: "x".into(),
        id_number_bidx: "b1".into(),
        phone_enc: None,
        phone_bidx: None,
    };
    assert!(matches!(
        persons.insert(&dup).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(persons.count().await.expect("count"), 4);
    assert_eq!(
        persons
            .find_by_id_number("b2")
            .await
            .expect("find")
            .map(|p| p.id),
        Some("p2".into())
    );
    // Paging through every field, two at a time, visits each exactly once.
    let mut seen = Vec::new();
    let mut after: Option<(String, usize)> = None;
    loop {
        let batch = persons
            .fields_after(after.as_ref().map(|(id, i)| (id.as_str(), *i)), 2)
            .await
            .expect("page");
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 2);
        for f in batch {
            after = Some((f.id.clone(), f.column_index));
            seen.push(f.stored);
        }
    }
    assert_eq!(
        seen,
        ["n0", "i0", "t0", "n1", "i1", "n2", "i2", "t2", "n3", "i3"]
    );
    assert!(
        !persons
            .replace_field("p1", 0, "stale", "new")
            .await
            .expect("cas"),
        "stale value"
    );
    assert!(
        persons
            .replace_field("p1", 0, "n1", "new")
            .await
            .expect("cas")
    );
    assert_eq!(
        persons.get("p1").await.expect("get").map(|p| p.name_enc),
        Some("new".into())
    );
    assert!(matches!(
        persons.replace_field("p1", 7, "a", "b").await,
        Err(StoreError::Invalid(_))
    ));
}

fn id_user(id: &str, subject: &str) -> UserRow {
    UserRow {
        id: id.to_owned(),
        subject_hash: subject.to_owned(),
        provider: "oidc".to_owned(),
        level: "anonymous".to_owned(),
        person_id: None,
        status: "active".to_owned(),
        created_at: 1,
        updated_at: 1,
    }
}

fn id_session(id: &str, user: &str, access: &str) -> SessionRow {
    SessionRow {
        id: id.to_owned(),
        user_id: user.to_owned(),
        device_hash: Some("dev-hash".to_owned()),
        acr: Some("urn:acr:1".to_owned()),
        amr: Some("pwd".to_owned()),
        access_hash: access.to_owned(),
        access_expires_at: 100,
        relogin_hash: format!("r-{id}"),
        face_verified_at: None,
        created_at: 10,
        expires_at: 1000,
        revoked_at: None,
        revoked_reason: None,
    }
}

pub(crate) async fn identity_sessions_rotate_once_and_revoke(store: &Store) {
    let id = store.identity();
    let u = id.upsert_user(&id_user("u1", "sub-a")).await.expect("user");
    assert_eq!(u.id, "u1");
    // The same subject again keeps the first account.
    let again = id.upsert_user(&id_user("u2", "sub-a")).await.expect("user");
    assert_eq!(again.id, "u1");
    id.insert_session(&id_session("s1", "u1", "a1"))
        .await
        .expect("s1");
    id.insert_session(&id_session("s2", "u1", "a2"))
        .await
        .expect("s2");
    // An access hash is unique.
    let dup = id.insert_session(&id_session("s3", "u1", "a1")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    let s = id
        .session_by_access("a1")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(s, id_session("s1", "u1", "a1"));
    // The re-login secret works once: a second rotation with the old hash changes nothing.
    assert!(
        id.rotate_access("s1", "r-s1", "a1b", 200, "r2")
            .await
            .expect("rotate")
    );
    assert!(
        !id.rotate_access("s1", "r-s1", "a1c", 300, "r3")
            .await
            .expect("again")
    );
    assert_eq!(id.session_by_access("a1").await.expect("old"), None);
    let s = id
        .session_by_access("a1b")
        .await
        .expect("new")
        .expect("found");
    assert_eq!((s.access_expires_at, s.relogin_hash.as_str()), (200, "r2"));
    id.set_face_verified("s1", 150).await.expect("face");
    assert_eq!(
        id.session("s1")
            .await
            .expect("get")
            .expect("s1")
            .face_verified_at,
        Some(150)
    );
    assert!(
        id.revoke_session("s2", 160, "logout")
            .await
            .expect("revoke")
    );
    assert!(!id.revoke_session("s2", 170, "logout").await.expect("twice"));
    assert_eq!(
        id.revoke_sessions_of("u1", 180, "logout_all")
            .await
            .expect("all"),
        1
    );
    let all = id.sessions_of("u1").await.expect("list");
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| s.revoked_at.is_some()));
    // A revoked session cannot be refreshed.
    assert!(
        !id.rotate_access("s1", "r2", "a1d", 400, "r4")
            .await
            .expect("revoked")
    );
}

pub(crate) async fn identity_accounts_consents_fields_and_login_states(store: &Store) {
    let id = store.identity();
    id.upsert_user(&id_user("u1", "sub-a")).await.expect("u1");
    id.upsert_user(&id_user("u2", "sub-b")).await.expect("u2");
    id.update_user("u1", "real_name", Some("p1"), "active", 5)
        .await
        .expect("bind");
    // One person binds to one account only.
    let taken = id
        .update_user("u2", "real_name", Some("p1"), "active", 6)
        .await;
    assert!(
        matches!(taken, Err(StoreError::Conflict { .. })),
        "{taken:?}"
    );
    assert_eq!(
        id.user_by_person("p1")
            .await
            .expect("by person")
            .map(|u| u.id),
        Some("u1".to_owned())
    );
    assert!(matches!(
        id.update_user("nope", "anonymous", None, "active", 7).await,
        Err(StoreError::NotFound)
    ));

    for (i, outcome) in ["fail", "fail", "pass", "fail"].iter().enumerate() {
        id.insert_face_attempt(&FaceAttemptRow {
            id: format!("f{i}"),
            user_id: "u1".to_owned(),
            session_id: "s1".to_owned(),
            provider: "sim".to_owned(),
            outcome: (*outcome).to_owned(),
            at: 100 + i64::try_from(i).expect("small"),
        })
        .await
        .expect("attempt");
    }
    assert_eq!(id.face_failures_since("u1", 0).await.expect("count"), 3);
    assert_eq!(id.face_failures_since("u1", 101).await.expect("count"), 2);
    assert_eq!(id.face_failures_since("u2", 0).await.expect("count"), 0);
    assert_eq!(id.face_attempts_of("u1").await.expect("list").len(), 4);

    let consent = ConsentRow {
        id: "c1".to_owned(),
        user_id: "u1".to_owned(),
        purpose: "contact".to_owned(),
        fields: "phone,email".to_owned(),
        notice_version: "2026-01".to_owned(),
        granted_at: 10,
        withdrawn_at: None,
    };
    id.insert_consent(&consent).await.expect("consent");
    assert_eq!(
        id.consents_of("u1").await.expect("list"),
        vec![consent.clone()]
    );
    assert_eq!(
        id.withdraw_consent("u1", "contact", 20)
            .await
            .expect("withdraw"),
        1
    );
    assert_eq!(
        id.withdraw_consent("u1", "contact", 30)
            .await
            .expect("again"),
        0
    );
    assert_eq!(
        id.consents_of("u1").await.expect("list")[0].withdrawn_at,
        Some(20)
    );

    let mut field = UserFieldRow {
        user_id: "u1".to_owned(),
        field: "phone".to_owned(),
        purpose: "contact".to_owned(),
        value_enc: "ct1".to_owned(),
        collected_at: 11,
    };
    id.put_field(&field).await.expect("field");
    field.value_enc = "ct2".to_owned();
    id.put_field(&field).await.expect("replace");
    assert_eq!(id.fields_of("u1").await.expect("fields"), vec![field]);
    assert_eq!(
        id.delete_fields("u1", Some("other")).await.expect("none"),
        0
    );
    assert_eq!(id.delete_fields("u1", None).await.expect("all"), 1);
    assert_eq!(id.delete_consents("u1").await.expect("consents"), 1);

    let state = LoginStateRow {
        state_hash: "st".to_owned(),
        provider: "oidc".to_owned(),
        nonce: "n".to_owned(),
        verifier_enc: "v".to_owned(),
        device_hash: None,
        created_at: 1,
        expires_at: 50,
    };
    id.insert_login_state(&state).await.expect("state");
    assert!(matches!(
        id.insert_login_state(&state).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        id.take_login_state("st").await.expect("take"),
        Some(state.clone())
    );
    assert_eq!(id.take_login_state("st").await.expect("once"), None);
    id.insert_login_state(&state).await.expect("again");
    assert_eq!(id.purge_login_states(49).await.expect("not yet"), 0);
    assert_eq!(id.purge_login_states(51).await.expect("expired"), 1);
}
