//! Root-key assembly, KEK/DEK lifecycle and the audit chain.

use std::io::Write;

use tongban_crypto::{
    Sm4Key,
    keyring::{
        AssemblyError, AuditError, AuditRecord, ComponentSource, EnvSource, FileSource, KeyLookup,
        KeyPolicy, Keyring, KeyringError, LoadError, MemorySource, OpContext, RootKey, SplitScheme,
        WrappedKey, assemble_root, verify_chain,
    },
};
use zeroize::Zeroizing;

fn ctx(t: i64) -> OpContext {
    OpContext {
        actor: "ops-alice".to_owned(),
        at_unix_ms: t,
    }
}

fn mem(name: &str, text: &str) -> MemorySource {
    MemorySource::new(name, Zeroizing::new(text.to_owned()))
}

#[test]
fn shamir_root_assembles_from_any_threshold_and_names_missing() {
    let root = RootKey::generate().expect("root");
    let parts = root
        .split(SplitScheme::Shamir {
            threshold: 2,
            total: 3,
        })
        .expect("split");
    let texts: Vec<String> = parts.iter().map(|c| c.to_text().to_string()).collect();
    assert!(!format!("{:?}", parts[0]).contains(&texts[0][40..]));

    let a = mem("db:c1", &texts[0]);
    let c = mem("db:c3", &texts[2]);
    let gone = EnvSource::new("TONGBAN_TEST_COMPONENT_THAT_IS_NOT_SET");
    let sources: [&dyn ComponentSource; 3] = [&a, &gone, &c];
    let assembly = assemble_root(&sources, &root.kcv()).expect("2 of 3 assemble");
    assert_eq!(assembly.root, root);
    assert_eq!(assembly.used, vec!["db:c1", "db:c3"]);
    assert_eq!(
        assembly.missing,
        vec![(
            "env:TONGBAN_TEST_COMPONENT_THAT_IS_NOT_SET".to_owned(),
            LoadError::NotFound
        )]
    );

    let only: [&dyn ComponentSource; 2] = [&a, &gone];
    match assemble_root(&only, &root.kcv()) {
        Err(AssemblyError::NotEnough {
            have: 1,
            need: 2,
            missing,
        }) => assert_eq!(missing, vec!["env:TONGBAN_TEST_COMPONENT_THAT_IS_NOT_SET"]),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn damaged_foreign_and_inconsistent_components_are_named() {
    let root = RootKey::generate().expect("root");
    let parts = root.split(SplitScheme::Xor { total: 2 }).expect("split");
    let t0 = parts[0].to_text().to_string();
    let t1 = parts[1].to_text().to_string();

    // One changed character in the data: checksum catches it, the source is named.
    let mut damaged = t1.clone().into_bytes();
    let pos = damaged.len() - 20;
    damaged[pos] = if damaged[pos] == b'A' { b'B' } else { b'A' };
    let bad = mem(
        "file:/mnt/usb/c2",
        std::str::from_utf8(&damaged).expect("ascii"),
    );
    let good = mem("file:/etc/tongban/c1", &t0);
    let err = assemble_root(&[&good, &bad], &root.kcv()).expect_err("damaged");
    assert_eq!(
        err,
        AssemblyError::Malformed {
            component: "file:/mnt/usb/c2".to_owned()
        }
    );
    assert!(err.to_string().contains("file:/mnt/usb/c2"));
    assert!(!err.to_string().contains(&t1[40..60]));

    // A component of another root key.
    let other = RootKey::generate().expect("root");
    let foreign_text = other.split(SplitScheme::Xor { total: 2 }).expect("split")[1]
        .to_text()
        .to_string();
    let foreign = mem("env:C2", &foreign_text);
    assert!(matches!(
        assemble_root(&[&good, &foreign], &root.kcv()),
        Err(AssemblyError::WrongKey { component, .. }) if component == "env:C2"
    ));

    // Same component twice.
    let dup = mem("db:c1-copy", &t0);
    assert!(matches!(
        assemble_root(&[&good, &dup], &root.kcv()),
        Err(AssemblyError::Inconsistent { component }) if component == "db:c1-copy"
    ));

    // XOR needs every component.
    let missing = EnvSource::new("TONGBAN_TEST_XOR_MISSING");
    assert!(matches!(
        assemble_root(&[&good, &missing], &root.kcv()),
        Err(AssemblyError::Missing { component, .. }) if component == "env:TONGBAN_TEST_XOR_MISSING"
    ));

    let ok = mem("db:c2", &t1);
    assert_eq!(
        assemble_root(&[&good, &ok], &root.kcv())
            .expect("assembles")
            .root,
        root
    );
    assert!(matches!(
        assemble_root(&[], &root.kcv()),
        Err(AssemblyError::NoSources)
    ));
}

#[test]
fn file_source_reads_and_refuses_shared_permissions() {
    let root = RootKey::generate().expect("root");
    let parts = root
        .split(SplitScheme::Shamir {
            threshold: 2,
            total: 2,
        })
        .expect("split");
    let dir = std::env::temp_dir().join(format!("tongban-crypto-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let mut paths = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let path = dir.join(format!("c{i}"));
        let mut f = std::fs::File::create(&path).expect("create");
        writeln!(f, "{}", p.to_text().as_str()).expect("write");
        paths.push(path);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in &paths {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let a = FileSource::new(&paths[0]);
        let b = FileSource::new(&paths[1]);
        assert_eq!(
            assemble_root(&[&a, &b], &root.kcv()).expect("ok").root,
            root
        );
        std::fs::set_permissions(&paths[1], std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert_eq!(b.load().err(), Some(LoadError::InsecurePermissions));
        let b_shared = FileSource::new(&paths[1]).allow_shared_permissions();
        assert_eq!(
            assemble_root(&[&a, &b_shared], &root.kcv())
                .expect("ok")
                .root,
            root
        );
    }
    let nothing = FileSource::new(dir.join("absent"));
    assert_eq!(nothing.load().err(), Some(LoadError::NotFound));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn kek_dek_rotation_retirement_and_reload() {
    let root = RootKey::generate().expect("root");
    let mut ring = Keyring::new(root.clone());
    let mut store = Rows::default();
    let mut apply = |c| store.apply(c);
    apply(ring.create_kek("pii", &ctx(1)).expect("kek"));
    apply(ring.create_dek("pii.data", "pii", &ctx(2)).expect("dek"));
    assert_eq!(
        ring.create_dek("x", "pii.data", &ctx(3)).err(),
        Some(KeyringError::NotAKek("pii.data".to_owned()))
    );
    assert!(matches!(
        ring.create_kek("Bad Id", &ctx(3)),
        Err(KeyringError::InvalidKeyId(_))
    ));
    assert!(matches!(
        ring.create_kek("root", &ctx(3)),
        Err(KeyringError::InvalidKeyId(_))
    ));
    assert!(matches!(
        ring.create_kek("pii", &ctx(3)),
        Err(KeyringError::AlreadyExists(_))
    ));

    let (v1, k1) = ring
        .current("pii.data")
        .map(|(v, k)| (v, k.clone()))
        .expect("current");
    assert_eq!(v1, 1);
    apply(ring.rotate("pii.data", &ctx(4)).expect("rotate dek"));
    let (v2, k2) = ring
        .current("pii.data")
        .map(|(v, k)| (v, k.clone()))
        .expect("current");
    assert_eq!(v2, 2);
    assert_ne!(k1, k2);
    assert_eq!(ring.get("pii.data", 1).expect("old still decrypts"), &k1);

    // Rotating the KEK leaves DEK versions wrapped by KEK v1 until rewrapped.
    apply(ring.rotate("pii", &ctx(5)).expect("rotate kek"));
    assert!(matches!(
        ring.set_min_decryption_version("pii", 2, &ctx(6)),
        Err(KeyringError::StillInUse { version: 1, .. })
    ));
    let change = ring.rewrap_children("pii", &ctx(7)).expect("rewrap");
    assert_eq!(change.versions.len(), 2);
    apply(change);
    assert!(
        ring.rewrap_children("pii", &ctx(8))
            .expect("again")
            .versions
            .is_empty()
    );
    apply(
        ring.set_min_decryption_version("pii", 2, &ctx(9))
            .expect("retire kek v1"),
    );

    apply(
        ring.set_min_decryption_version("pii.data", 2, &ctx(10))
            .expect("retire"),
    );
    assert_eq!(
        ring.get("pii.data", 1).err(),
        Some(KeyringError::Retired {
            key_id: "pii.data".to_owned(),
            version: 1
        })
    );
    assert!(matches!(
        ring.get("pii.data", 9),
        Err(KeyringError::UnknownVersion { version: 9, .. })
    ));
    assert!(matches!(
        ring.set_min_decryption_version("pii.data", 3, &ctx(11)),
        Err(KeyringError::InvalidVersion { .. })
    ));

    // Reload from rows: same keys come back.
    let Rows {
        mut policies,
        mut versions,
        mut events,
    } = std::mem::take(&mut store);
    let stored_json = serde_json::to_string(&versions).expect("rows serialize");
    assert!(!stored_json.contains(&format!("{:?}", k2.expose())));
    let rows: Vec<WrappedKey> = serde_json::from_str(&stored_json).expect("rows parse");
    let reloaded = Keyring::load(root.clone(), policies.clone(), rows.clone()).expect("load");
    assert_eq!(reloaded.current("pii.data").expect("current").1, &k2);
    assert!(reloaded.get("pii.data", 1).is_err());

    // Another root cannot unwrap; a row moved to another key id does not unwrap either.
    let other = RootKey::generate().expect("root");
    assert!(matches!(
        Keyring::load(other, policies.clone(), rows.clone()),
        Err(KeyringError::Unwrap { .. })
    ));
    let mut moved = rows.clone();
    for r in &mut moved {
        if r.key_id == "pii.data" && r.version == 2 {
            r.version = 1;
        }
    }
    moved.retain(|r| !(r.key_id == "pii.data" && r.version == 1 && r.kcv != kcv_hex(&k2)));
    assert!(matches!(
        Keyring::load(root.clone(), policies.clone(), moved),
        Err(KeyringError::Unwrap { version: 1, .. })
    ));

    // Debug output never shows key material.
    let debug = format!("{ring:?} {rows:?}");
    assert!(!debug.contains(&tongban_crypto::encoding::hex_encode(k2.expose())));
    assert!(!debug.contains(&tongban_crypto::encoding::b64_encode(&rows[0].wrapped)));

    // Root change: KEKs rewrapped, the hierarchy loads under the new root only.
    let new_root = RootKey::generate().expect("root");
    let change = ring
        .rewrap_under_root(new_root.clone(), &ctx(12))
        .expect("root change");
    let mut rows = Rows {
        policies,
        versions,
        events,
    };
    rows.apply(change);
    Rows {
        policies,
        versions,
        events,
    } = rows;
    assert!(Keyring::load(new_root, policies.clone(), versions.clone()).is_ok());
    assert!(Keyring::load(root, policies.clone(), versions.clone()).is_err());

    // Every change was audited; chain them and verify.
    let mut chain: Vec<AuditRecord> = Vec::new();
    for e in events {
        let r = AuditRecord::append(chain.last(), e);
        chain.push(r);
    }
    verify_chain(&chain, None).expect("valid chain");
}

#[derive(Default)]
struct Rows {
    policies: Vec<KeyPolicy>,
    versions: Vec<WrappedKey>,
    events: Vec<tongban_crypto::keyring::AuditEvent>,
}

impl Rows {
    fn apply(&mut self, c: tongban_crypto::keyring::KeyChange) {
        for p in c.policies {
            self.policies.retain(|q| q.key_id != p.key_id);
            self.policies.push(p);
        }
        for v in c.versions {
            self.versions
                .retain(|w| !(w.key_id == v.key_id && w.version == v.version));
            self.versions.push(v);
        }
        self.events.extend(c.events);
    }
}

fn kcv_hex(k: &Sm4Key) -> String {
    tongban_crypto::keyring::kcv_of(k).to_string()
}

#[test]
fn audit_chain_detects_edit_delete_reorder_and_truncation() {
    let mut chain: Vec<AuditRecord> = Vec::new();
    for (i, op) in ["create", "rotate", "retire-below", "rewrap"]
        .iter()
        .enumerate()
    {
        let e = tongban_crypto::keyring::AuditEvent {
            actor: "ops-bob".to_owned(),
            at_unix_ms: 1_700_000_000_000 + i as i64,
            operation: (*op).to_owned(),
            key_id: "pii".to_owned(),
            version: i as u32 + 1,
        };
        let r = AuditRecord::append(chain.last(), e);
        chain.push(r);
    }
    let head = (chain[3].seq, chain[3].hash);
    verify_chain(&chain, Some(head)).expect("intact");

    let mut edited = chain.clone();
    edited[1].event.actor = "mallory".to_owned();
    assert_eq!(
        verify_chain(&edited, None),
        Err(AuditError::Modified { seq: 1 })
    );

    let mut deleted = chain.clone();
    deleted.remove(1);
    assert_eq!(
        verify_chain(&deleted, None),
        Err(AuditError::Broken { seq: 2 })
    );

    let mut reordered = chain.clone();
    reordered.swap(1, 2);
    assert!(matches!(
        verify_chain(&reordered, None),
        Err(AuditError::Broken { .. })
    ));

    let truncated = &chain[..3];
    verify_chain(truncated, None).expect("a prefix is a valid chain by itself");
    assert_eq!(
        verify_chain(truncated, Some(head)),
        Err(AuditError::Truncated {
            expected: 3,
            found: Some(2)
        })
    );

    // Rehashing an edited record does not help: the next record's prev_hash no longer matches.
    let mut forged = chain.clone();
    forged[1].event.version = 99;
    let rehashed = AuditRecord::append(Some(&forged[0]), forged[1].event.clone());
    forged[1] = rehashed;
    assert_eq!(
        verify_chain(&forged, None),
        Err(AuditError::Broken { seq: 2 })
    );

    let json = serde_json::to_string(&chain).expect("serialize");
    let back: Vec<AuditRecord> = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, chain);
}
