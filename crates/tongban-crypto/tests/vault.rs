//! PII vault: binding to table/column/row, versions, blind index, resumable rewrap.

use std::collections::BTreeMap;

use tongban_crypto::{
    Sm4Key,
    keyring::{KeyLookup, Keyring, KeyringError, OpContext, RootKey},
    vault::{
        FieldCiphertext, FieldRef, RewrapStore, StaticKeys, StoredField, Vault, VaultError,
        normalize_for_index, rewrap_fields,
    },
};

const ID_NUMBER: &str = "11010519491231002X";

fn field(row: &str) -> FieldRef<'_> {
    FieldRef {
        table: "citizens",
        column: "id_number",
        row_id: row,
    }
}

fn static_keys() -> StaticKeys {
    let mut keys = StaticKeys::new();
    keys.insert("pii.data", 1, Sm4Key::from_bytes([1; 16]))
        .insert("pii.index", 1, Sm4Key::from_bytes([2; 16]));
    keys
}

#[test]
fn round_trip_and_binding_to_table_column_row() {
    let keys = static_keys();
    let vault = Vault::new(&keys, "pii.data", "pii.index");
    let stored = vault
        .encrypt_str(&field("42"), ID_NUMBER)
        .expect("encrypts");
    assert!(!stored.contains(ID_NUMBER));
    assert_eq!(
        vault
            .decrypt_str(&field("42"), &stored)
            .expect("decrypts")
            .as_str(),
        ID_NUMBER
    );
    // Fresh nonce each time.
    assert_ne!(
        stored,
        vault
            .encrypt_str(&field("42"), ID_NUMBER)
            .expect("encrypts")
    );

    for other in [
        field("43"),
        FieldRef {
            table: "citizens",
            column: "phone",
            row_id: "42",
        },
        FieldRef {
            table: "staff",
            column: "id_number",
            row_id: "42",
        },
    ] {
        assert_eq!(
            vault.decrypt(&other, &stored).err(),
            Some(VaultError::AuthenticationFailed)
        );
    }

    let parsed = FieldCiphertext::from_text(&stored).expect("parses");
    assert_eq!(
        (parsed.key_id.as_str(), parsed.key_version),
        ("pii.data", 1)
    );
    assert_eq!(parsed.sealed.len(), ID_NUMBER.len() + 16);

    // Claiming another key version in the header: unknown version, or (if it existed) a
    // failed tag, because the header is in the AAD.
    let mut relabeled = parsed.clone();
    relabeled.key_version = 7;
    assert!(matches!(
        vault.decrypt(&field("42"), &relabeled.to_text()),
        Err(VaultError::Key(KeyringError::UnknownVersion {
            version: 7,
            ..
        }))
    ));
    let mut keys2 = static_keys();
    keys2.insert("pii.data", 2, Sm4Key::from_bytes([1; 16]));
    let vault2 = Vault::new(&keys2, "pii.data", "pii.index");
    relabeled.key_version = 2;
    assert_eq!(
        vault2.decrypt(&field("42"), &relabeled.to_text()).err(),
        Some(VaultError::AuthenticationFailed)
    );

    let mut tampered = parsed.clone();
    tampered.sealed[0] ^= 0x80;
    assert_eq!(
        vault.decrypt(&field("42"), &tampered.to_text()).err(),
        Some(VaultError::AuthenticationFailed)
    );
    let mut bad_tag = parsed;
    let n = bad_tag.sealed.len();
    bad_tag.sealed[n - 1] ^= 1;
    assert_eq!(
        vault.decrypt(&field("42"), &bad_tag.to_text()).err(),
        Some(VaultError::AuthenticationFailed)
    );

    assert_eq!(
        vault.decrypt(&field("42"), "").err(),
        Some(VaultError::Malformed)
    );
    assert_eq!(
        vault
            .decrypt(&field("42"), &stored[..stored.len() - 30])
            .err(),
        Some(VaultError::Malformed)
    );
    assert_eq!(
        vault.decrypt(&field("42"), "AgAA").err(),
        Some(VaultError::UnsupportedFormat(2))
    );
}

#[test]
fn blind_index_is_deterministic_scoped_and_url_safe() {
    let keys = static_keys();
    let vault = Vault::new(&keys, "pii.data", "pii.index");
    let a = vault
        .blind_index(
            "citizens",
            "id_number",
            &normalize_for_index(" 11010519491231002x "),
        )
        .expect("index");
    let b = vault
        .blind_index("citizens", "id_number", ID_NUMBER)
        .expect("index");
    assert_eq!(a, b);
    assert_eq!(a.value.len(), 43);
    assert!(
        a.value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    let other_col = vault
        .blind_index("citizens", "phone", ID_NUMBER)
        .expect("index");
    assert_ne!(a.value, other_col.value);

    // Independent check of the definition: HMAC-SM3(index key, label || scope || value).
    let mut input = b"tongban/blind-index/v1".to_vec();
    for part in ["citizens", "id_number"] {
        input.extend_from_slice(&(part.len() as u32).to_be_bytes());
        input.extend_from_slice(part.as_bytes());
    }
    input.extend_from_slice(ID_NUMBER.as_bytes());
    let expected = tongban_crypto::sm3::hmac_sm3(&[2; 16], &[&input]);
    assert_eq!(a.value, tongban_crypto::encoding::b64url_encode(&expected));

    let (stored, index) = vault
        .seal_with_index(&field("42"), ID_NUMBER)
        .expect("seal with index");
    assert_eq!(index, a);
    assert_eq!(
        vault
            .decrypt_str(&field("42"), &stored)
            .expect("decrypts")
            .as_str(),
        ID_NUMBER
    );
}

/// An in-memory store paging by cursor, with compare-and-set replace.
#[derive(Default)]
struct MemStore {
    rows: BTreeMap<String, StoredField>,
    fail_after_replaces: Option<usize>,
    replaces: usize,
}

impl RewrapStore for MemStore {
    type Error = &'static str;

    fn next_batch(
        &mut self,
        after: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredField>, Self::Error>> + Send {
        let out: Vec<StoredField> = self
            .rows
            .values()
            .filter(|f| after.is_none_or(|a| f.cursor.as_str() > a))
            .take(limit)
            .cloned()
            .collect();
        std::future::ready(Ok(out))
    }

    fn replace(
        &mut self,
        field: &StoredField,
        new: &str,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        if self.fail_after_replaces == Some(self.replaces) {
            return std::future::ready(Err("disk full"));
        }
        self.replaces += 1;
        let row = self.rows.get_mut(&field.cursor);
        std::future::ready(Ok(match row {
            Some(r) if r.stored == field.stored => {
                r.stored = new.to_owned();
                true
            }
            _ => false,
        }))
    }
}

/// Drives a future that never waits on I/O (the in-memory store is always ready).
fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

#[test]
fn rotation_then_resumable_idempotent_rewrap() {
    let ctx = OpContext {
        actor: "test".to_owned(),
        at_unix_ms: 0,
    };
    let mut ring = Keyring::new(RootKey::generate().expect("root"));
    ring.create_kek("pii", &ctx).expect("kek");
    ring.create_dek("pii.data", "pii", &ctx).expect("dek");
    ring.create_dek("pii.index", "pii", &ctx).expect("dek");

    let mut store = MemStore::default();
    {
        let vault = Vault::new(&ring, "pii.data", "pii.index");
        for i in 0..10 {
            let row = format!("{i:03}");
            let stored = vault
                .encrypt_str(&field(&row), &format!("secret-{i}"))
                .expect("encrypts");
            store.rows.insert(
                row.clone(),
                StoredField {
                    cursor: row.clone(),
                    table: "citizens".to_owned(),
                    column: "id_number".to_owned(),
                    row_id: row,
                    stored,
                },
            );
        }
    }
    ring.rotate("pii.data", &ctx).expect("rotate");
    let vault = Vault::new(&ring, "pii.data", "pii.index");

    // New writes use version 2; old rows still decrypt.
    let fresh = vault.encrypt_str(&field("new"), "x").expect("encrypts");
    assert_eq!(
        FieldCiphertext::from_text(&fresh)
            .expect("parses")
            .key_version,
        2
    );
    assert_eq!(
        vault
            .decrypt_str(&field("003"), &store.rows["003"].stored)
            .expect("v1 decrypts")
            .as_str(),
        "secret-3"
    );

    // Interrupted run: the store fails on the 5th replace; the report says where it got.
    store.fail_after_replaces = Some(4);
    let err = block_on(rewrap_fields(&vault, &mut store, None, 3, None)).expect_err("fails");
    let tongban_crypto::vault::RewrapError::Store { report, .. } = err else {
        panic!("expected a store error");
    };
    assert_eq!(report.rewrapped, 4);
    assert_eq!(report.last_cursor.as_deref(), Some("003"));

    // Resume from the cursor; then a full rerun skips everything.
    store.fail_after_replaces = None;
    let report = block_on(rewrap_fields(
        &vault,
        &mut store,
        report.last_cursor,
        3,
        None,
    ))
    .expect("resumes");
    assert_eq!((report.scanned, report.rewrapped), (6, 6));
    let again = block_on(rewrap_fields(&vault, &mut store, None, 4, None)).expect("reruns");
    assert_eq!(
        (again.scanned, again.rewrapped, again.already_current),
        (10, 0, 10)
    );

    for (row, f) in &store.rows {
        let ct = FieldCiphertext::from_text(&f.stored).expect("parses");
        assert_eq!(ct.key_version, 2);
        let i: usize = row.parse().expect("numeric row");
        assert_eq!(
            vault
                .decrypt_str(&field(row), &f.stored)
                .expect("decrypts")
                .as_str(),
            format!("secret-{i}")
        );
    }

    // Now version 1 can be retired; a leftover v1 value is then refused with a typed error.
    let leftover = {
        let mut keys = StaticKeys::new();
        keys.insert("pii.data", 1, ring.get("pii.data", 1).expect("v1").clone());
        Vault::new(&keys, "pii.data", "pii.index")
            .encrypt_str(&field("old"), "y")
            .expect("encrypts")
    };
    ring.set_min_decryption_version("pii.data", 2, &ctx)
        .expect("retire");
    let vault = Vault::new(&ring, "pii.data", "pii.index");
    assert!(matches!(
        vault.decrypt(&field("old"), &leftover),
        Err(VaultError::Key(KeyringError::Retired { version: 1, .. }))
    ));

    // Limited runs stop at max_fields.
    let limited = block_on(rewrap_fields(&vault, &mut store, None, 4, Some(5))).expect("runs");
    assert_eq!(limited.scanned, 5);
}
