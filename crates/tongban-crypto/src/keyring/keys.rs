//! KEKs and DEKs: versioned, wrapped by their parent, rotated and retired without I/O.
//!
//! Every method that changes the keyring returns a [`KeyChange`]: the rows the store must
//! upsert and the audit events it must append. The keyring never touches storage itself, so
//! the same core serves SQLite, PostgreSQL and tests. If persisting a change fails, reload
//! the keyring from the store rather than keep the in-memory state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    KeyLookup, KeyringError,
    audit::AuditEvent,
    kcv::{Kcv, kcv_of},
    root::RootKey,
};
use crate::{Sm4Key, gcm::Sm4Gcm};

/// Name of the wrapping parent of every KEK.
pub const ROOT_ID: &str = "root";

const WRAP_LABEL: &[u8] = b"tongban/key-wrap/v1";

/// Whether a key wraps other keys or encrypts data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Key-encryption key, one per purpose, wrapped by the root key.
    Kek,
    /// Data-encryption key, wrapped by a KEK.
    Dek,
}

/// One row per key id: which version encrypts, which versions may still decrypt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPolicy {
    /// Key id (`[a-z0-9._-]`, 1–64 characters; `root` is reserved).
    pub key_id: String,
    /// KEK or DEK.
    pub kind: KeyKind,
    /// The KEK wrapping this DEK; [`ROOT_ID`] for a KEK.
    pub parent: String,
    /// Version used for new encryptions.
    pub current_version: u32,
    /// Versions below this are retired: they no longer decrypt.
    pub min_decryption_version: u32,
}

/// One row per key version: the key material wrapped by its parent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// Key id.
    pub key_id: String,
    /// Version, from 1.
    pub version: u32,
    /// [`ROOT_ID`] or the id of the wrapping KEK.
    pub wrapped_by: String,
    /// Version of the wrapping KEK (0 for the root).
    pub wrapped_by_version: u32,
    /// `nonce (12) || SM4-GCM(parent, key) (16) || tag (16)`, Base64 in JSON.
    #[serde(with = "b64")]
    pub wrapped: Vec<u8>,
    /// Check value of the unwrapped key, to identify it in logs without revealing it.
    pub kcv: String,
    /// Creation time, Unix milliseconds.
    pub created_at_unix_ms: i64,
}

/// Who performs an operation and when (time is injected, never read here).
#[derive(Debug, Clone)]
pub struct OpContext {
    /// Operator or service name, recorded in the audit chain.
    pub actor: String,
    /// Current time in Unix milliseconds.
    pub at_unix_ms: i64,
}

/// Rows to upsert and audit events to append after an operation.
#[derive(Debug, Default, Clone)]
pub struct KeyChange {
    /// Policies to upsert by `key_id`.
    pub policies: Vec<KeyPolicy>,
    /// Versions to upsert by `(key_id, version)`.
    pub versions: Vec<WrappedKey>,
    /// Events to append to the audit chain, in order.
    pub events: Vec<AuditEvent>,
}

/// The unwrapped key hierarchy held in memory.
pub struct Keyring {
    root: RootKey,
    keys: BTreeMap<String, Entry>,
}

struct Entry {
    policy: KeyPolicy,
    versions: BTreeMap<u32, Version>,
}

struct Version {
    record: WrappedKey,
    key: Sm4Key,
}

// === impl Keyring ===

impl Keyring {
    /// An empty keyring under `root`.
    pub fn new(root: RootKey) -> Self {
        Self {
            root,
            keys: BTreeMap::new(),
        }
    }

    /// Rebuilds the keyring from stored rows, unwrapping every version. A version that does
    /// not unwrap (different root key, tampered row) is an error naming it.
    pub fn load(
        root: RootKey,
        policies: Vec<KeyPolicy>,
        versions: Vec<WrappedKey>,
    ) -> Result<Self, KeyringError> {
        let mut ring = Self::new(root);
        for p in policies {
            validate_id(&p.key_id)?;
            ring.keys.insert(
                p.key_id.clone(),
                Entry {
                    policy: p,
                    versions: BTreeMap::new(),
                },
            );
        }
        // KEKs first: DEKs need them to unwrap.
        let (keks, deks): (Vec<_>, Vec<_>) =
            versions.into_iter().partition(|v| v.wrapped_by == ROOT_ID);
        for record in keks.into_iter().chain(deks) {
            let kind = ring.entry(&record.key_id)?.policy.kind;
            let parent_key = ring.wrapping_key(&record)?;
            let key = unwrap_key(&parent_key, kind, &record)?;
            let entry = ring.entry_mut(&record.key_id)?;
            entry
                .versions
                .insert(record.version, Version { record, key });
        }
        for entry in ring.keys.values() {
            let p = &entry.policy;
            if !entry.versions.contains_key(&p.current_version) {
                return Err(KeyringError::UnknownVersion {
                    key_id: p.key_id.clone(),
                    version: p.current_version,
                });
            }
        }
        Ok(ring)
    }

    /// Check value of the root key this keyring runs under.
    pub fn root_kcv(&self) -> Kcv {
        self.root.kcv()
    }

    /// Policies of all keys, sorted by id.
    pub fn policies(&self) -> impl Iterator<Item = &KeyPolicy> {
        self.keys.values().map(|e| &e.policy)
    }

    /// Stored rows of all versions of `key_id`.
    pub fn versions(&self, key_id: &str) -> Result<Vec<&WrappedKey>, KeyringError> {
        Ok(self
            .entry(key_id)?
            .versions
            .values()
            .map(|v| &v.record)
            .collect())
    }

    /// Creates a KEK (version 1, wrapped by the root key).
    pub fn create_kek(&mut self, key_id: &str, ctx: &OpContext) -> Result<KeyChange, KeyringError> {
        self.create(key_id, KeyKind::Kek, ROOT_ID, ctx)
    }

    /// Creates a DEK (version 1, wrapped by the current version of `kek_id`).
    pub fn create_dek(
        &mut self,
        key_id: &str,
        kek_id: &str,
        ctx: &OpContext,
    ) -> Result<KeyChange, KeyringError> {
        if self.entry(kek_id)?.policy.kind != KeyKind::Kek {
            return Err(KeyringError::NotAKek(kek_id.to_owned()));
        }
        self.create(key_id, KeyKind::Dek, kek_id, ctx)
    }

    fn create(
        &mut self,
        key_id: &str,
        kind: KeyKind,
        parent: &str,
        ctx: &OpContext,
    ) -> Result<KeyChange, KeyringError> {
        validate_id(key_id)?;
        if self.keys.contains_key(key_id) {
            return Err(KeyringError::AlreadyExists(key_id.to_owned()));
        }
        let policy = KeyPolicy {
            key_id: key_id.to_owned(),
            kind,
            parent: parent.to_owned(),
            current_version: 1,
            min_decryption_version: 1,
        };
        self.keys.insert(
            key_id.to_owned(),
            Entry {
                policy,
                versions: BTreeMap::new(),
            },
        );
        match self.add_version(key_id, 1, ctx) {
            Ok(record) => Ok(KeyChange {
                policies: vec![self.entry(key_id)?.policy.clone()],
                versions: vec![record],
                events: vec![event(ctx, "create", key_id, 1)],
            }),
            Err(e) => {
                self.keys.remove(key_id);
                Err(e)
            }
        }
    }

    /// Adds a new version of `key_id` and makes it current; older versions still decrypt.
    pub fn rotate(&mut self, key_id: &str, ctx: &OpContext) -> Result<KeyChange, KeyringError> {
        let entry = self.entry(key_id)?;
        let next = entry
            .versions
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| KeyringError::InvalidVersion {
                key_id: key_id.to_owned(),
                version: u32::MAX,
            })?;
        let record = self.add_version(key_id, next, ctx)?;
        let entry = self.entry_mut(key_id)?;
        entry.policy.current_version = next;
        Ok(KeyChange {
            policies: vec![entry.policy.clone()],
            versions: vec![record],
            events: vec![event(ctx, "rotate", key_id, next)],
        })
    }

    /// Retires every version of `key_id` below `min_version` (they stop decrypting).
    ///
    /// Refused for a KEK version that still wraps a DEK version: run
    /// [`Keyring::rewrap_children`] first, or those DEKs would be lost.
    pub fn set_min_decryption_version(
        &mut self,
        key_id: &str,
        min_version: u32,
        ctx: &OpContext,
    ) -> Result<KeyChange, KeyringError> {
        let entry = self.entry(key_id)?;
        if min_version == 0 || min_version > entry.policy.current_version {
            return Err(KeyringError::InvalidVersion {
                key_id: key_id.to_owned(),
                version: min_version,
            });
        }
        if entry.policy.kind == KeyKind::Kek {
            for child in self.keys.values() {
                if let Some(v) = child.versions.values().find(|v| {
                    v.record.wrapped_by == key_id && v.record.wrapped_by_version < min_version
                }) {
                    return Err(KeyringError::StillInUse {
                        key_id: key_id.to_owned(),
                        version: v.record.wrapped_by_version,
                        child: child.policy.key_id.clone(),
                    });
                }
            }
        }
        let entry = self.entry_mut(key_id)?;
        entry.policy.min_decryption_version = min_version;
        Ok(KeyChange {
            policies: vec![entry.policy.clone()],
            versions: Vec::new(),
            events: vec![event(ctx, "retire-below", key_id, min_version)],
        })
    }

    /// Re-wraps every DEK version under `kek_id` that is not wrapped by the KEK's current
    /// version. Idempotent: a second call changes nothing.
    pub fn rewrap_children(
        &mut self,
        kek_id: &str,
        ctx: &OpContext,
    ) -> Result<KeyChange, KeyringError> {
        let kek = self.entry(kek_id)?;
        if kek.policy.kind != KeyKind::Kek {
            return Err(KeyringError::NotAKek(kek_id.to_owned()));
        }
        let kek_version = kek.policy.current_version;
        let kek_key = self.get(kek_id, kek_version)?.clone();
        let mut change = KeyChange::default();
        for entry in self.keys.values_mut() {
            for v in entry.versions.values_mut() {
                if v.record.wrapped_by == kek_id && v.record.wrapped_by_version != kek_version {
                    let mut record = v.record.clone();
                    record.wrapped_by_version = kek_version;
                    record.wrapped = wrap_key(&kek_key, KeyKind::Dek, &record, &v.key)?;
                    v.record = record.clone();
                    change
                        .events
                        .push(event(ctx, "rewrap", &record.key_id, record.version));
                    change.versions.push(record);
                }
            }
        }
        Ok(change)
    }

    /// Moves the whole hierarchy under a new root key (after re-splitting it): every KEK
    /// version is re-wrapped; DEKs are untouched.
    pub fn rewrap_under_root(
        &mut self,
        new_root: RootKey,
        ctx: &OpContext,
    ) -> Result<KeyChange, KeyringError> {
        let mut change = KeyChange::default();
        for entry in self.keys.values_mut() {
            if entry.policy.kind != KeyKind::Kek {
                continue;
            }
            for v in entry.versions.values_mut() {
                let mut record = v.record.clone();
                record.wrapped = wrap_key(new_root.key(), KeyKind::Kek, &record, &v.key)?;
                v.record = record.clone();
                change.versions.push(record);
            }
        }
        change.events.push(event(
            ctx,
            &format!("root-change:{}", new_root.kcv()),
            ROOT_ID,
            0,
        ));
        self.root = new_root;
        Ok(change)
    }

    fn add_version(
        &mut self,
        key_id: &str,
        version: u32,
        ctx: &OpContext,
    ) -> Result<WrappedKey, KeyringError> {
        let entry = self.entry(key_id)?;
        let kind = entry.policy.kind;
        let parent = entry.policy.parent.clone();
        let (parent_key, parent_version) = if parent == ROOT_ID {
            (self.root.key().clone(), 0)
        } else {
            let (v, k) = self.current(&parent)?;
            (k.clone(), v)
        };
        let key = Sm4Key::generate().map_err(|_| KeyringError::Random)?;
        let mut record = WrappedKey {
            key_id: key_id.to_owned(),
            version,
            wrapped_by: parent,
            wrapped_by_version: parent_version,
            wrapped: Vec::new(),
            kcv: kcv_of(&key).to_string(),
            created_at_unix_ms: ctx.at_unix_ms,
        };
        record.wrapped = wrap_key(&parent_key, kind, &record, &key)?;
        self.entry_mut(key_id)?.versions.insert(
            version,
            Version {
                record: record.clone(),
                key,
            },
        );
        Ok(record)
    }

    fn wrapping_key(&self, record: &WrappedKey) -> Result<Sm4Key, KeyringError> {
        if record.wrapped_by == ROOT_ID {
            return Ok(self.root.key().clone());
        }
        let parent = self.entry(&record.wrapped_by)?;
        parent
            .versions
            .get(&record.wrapped_by_version)
            .map(|v| v.key.clone())
            .ok_or_else(|| KeyringError::UnknownVersion {
                key_id: record.wrapped_by.clone(),
                version: record.wrapped_by_version,
            })
    }

    fn entry(&self, key_id: &str) -> Result<&Entry, KeyringError> {
        self.keys
            .get(key_id)
            .ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))
    }

    fn entry_mut(&mut self, key_id: &str) -> Result<&mut Entry, KeyringError> {
        self.keys
            .get_mut(key_id)
            .ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))
    }
}

impl KeyLookup for Keyring {
    fn current(&self, key_id: &str) -> Result<(u32, &Sm4Key), KeyringError> {
        let entry = self.entry(key_id)?;
        let v = entry.policy.current_version;
        Ok((v, self.get(key_id, v)?))
    }

    fn get(&self, key_id: &str, version: u32) -> Result<&Sm4Key, KeyringError> {
        let entry = self.entry(key_id)?;
        if version < entry.policy.min_decryption_version {
            return Err(KeyringError::Retired {
                key_id: key_id.to_owned(),
                version,
            });
        }
        entry
            .versions
            .get(&version)
            .map(|v| &v.key)
            .ok_or_else(|| KeyringError::UnknownVersion {
                key_id: key_id.to_owned(),
                version,
            })
    }
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("root", &self.root)
            .field(
                "keys",
                &self.keys.values().map(|e| &e.policy).collect::<Vec<_>>(),
            )
            .finish()
    }
}

// === impl WrappedKey ===

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WrappedKey")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .field("wrapped_by", &self.wrapped_by)
            .field("wrapped_by_version", &self.wrapped_by_version)
            .field("kcv", &self.kcv)
            .finish_non_exhaustive()
    }
}

// === wrapping ===

fn validate_id(key_id: &str) -> Result<(), KeyringError> {
    let ok = !key_id.is_empty()
        && key_id.len() <= 64
        && key_id != ROOT_ID
        && key_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyringError::InvalidKeyId(key_id.to_owned()))
    }
}

/// AAD binding a wrapped key to its id, version, kind and parent, so a wrapped key cannot be
/// moved to another row and still unwrap.
fn wrap_aad(kind: KeyKind, r: &WrappedKey) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64 + r.key_id.len() + r.wrapped_by.len());
    aad.extend_from_slice(WRAP_LABEL);
    aad.push(match kind {
        KeyKind::Kek => 1,
        KeyKind::Dek => 2,
    });
    for part in [r.key_id.as_bytes(), r.wrapped_by.as_bytes()] {
        aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad.extend_from_slice(&r.version.to_be_bytes());
    aad.extend_from_slice(&r.wrapped_by_version.to_be_bytes());
    aad
}

fn wrap_key(
    parent: &Sm4Key,
    kind: KeyKind,
    record: &WrappedKey,
    key: &Sm4Key,
) -> Result<Vec<u8>, KeyringError> {
    let (nonce, ct) = Sm4Gcm::new(parent)
        .seal_random(&wrap_aad(kind, record), key.expose())
        .map_err(|_| KeyringError::Random)?;
    let mut out = Vec::with_capacity(nonce.len() + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn unwrap_key(parent: &Sm4Key, kind: KeyKind, record: &WrappedKey) -> Result<Sm4Key, KeyringError> {
    let fail = || KeyringError::Unwrap {
        key_id: record.key_id.clone(),
        version: record.version,
    };
    let (nonce, ct) = record
        .wrapped
        .split_first_chunk::<{ crate::gcm::NONCE_LEN }>()
        .ok_or_else(fail)?;
    let key = Sm4Gcm::new(parent)
        .open(nonce, &wrap_aad(kind, record), ct)
        .map_err(|_| fail())?;
    Sm4Key::from_slice(&key).map_err(|_| fail())
}

fn event(ctx: &OpContext, operation: &str, key_id: &str, version: u32) -> AuditEvent {
    AuditEvent {
        actor: ctx.actor.clone(),
        at_unix_ms: ctx.at_unix_ms,
        operation: operation.to_owned(),
        key_id: key_id.to_owned(),
        version,
    }
}

mod b64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::encoding::b64_encode(v))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        crate::encoding::b64_decode(&text, "wrapped key").map_err(D::Error::custom)
    }
}
