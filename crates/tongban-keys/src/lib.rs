//! The key service: assembles the root key from its components, keeps the keyring (root → KEK →
//! DEK) in memory, persists every change with its hash-chained audit records, and gives the
//! vault and the digital envelope their keys. It never logs or prints key material.
//! [`pii`] keeps citizens' personal information through the vault under these keys; [`http`]
//! publishes the envelope keys and opens and seals enveloped bodies.
#![forbid(unsafe_code)]

pub mod http;
pub mod pii;

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tongban_core::config::{Config, Profile};
use tongban_crypto::encoding::{hex_decode, hex_encode};
use tongban_crypto::envelope::EnvelopeKeySet;
use tongban_crypto::keyring::{
    AuditEvent, AuditRecord, ComponentSource, EnvSource, FileSource, Kcv, KeyChange, KeyKind,
    KeyPolicy, Keyring, LoadError, OpContext, RootKey, SplitScheme, WrappedKey, assemble_root,
    verify_chain,
};
use tongban_crypto::sm2::Sm2PrivateKey;
use tongban_crypto::vault::{FieldRef, Vault};
use tongban_store::keyring::{EnvelopeKeyRow, KeyAuditRow, KeyPolicyRow, KeyVersionRow};
use tongban_store::{Expect, Store, StoreError};
use zeroize::Zeroizing;

/// KEK and DEKs of personal data (the vault).
pub const PII_KEK: &str = "pii-kek";
pub const PII_DATA: &str = "pii-data";
pub const PII_INDEX: &str = "pii-index";
/// KEK and DEK protecting the envelope's SM2 private keys.
pub const ENVELOPE_KEK: &str = "envelope-kek";
pub const ENVELOPE_DATA: &str = "envelope-data";
/// KEK and DEK from which per-session request-signing keys are derived.
pub const SESSION_KEK: &str = "session-kek";
/// Identity derives each session's signing key from it (`tongban_identity::signing`).
pub const SESSION_SIGN: &str = "session-sign";
/// Each service's caller-context key derives from it (`tongban_crypto::caller_context`).
pub const CALLER_CONTEXT: &str = "caller-context";
/// The per-service pseudonyms of accounts derive from its first version, which is never
/// replaced: a rotation would give every account new ids at every service.
pub const CALLER_SUBJECT: &str = "caller-subject";

/// Every key a keyring must hold, parent first: `init` creates them, `open` adds any that a
/// keyring made by an older version lacks.
const REQUIRED: [(&str, Option<&str>); 9] = [
    (PII_KEK, None),
    (PII_DATA, Some(PII_KEK)),
    (PII_INDEX, Some(PII_KEK)),
    (ENVELOPE_KEK, None),
    (ENVELOPE_DATA, Some(ENVELOPE_KEK)),
    (SESSION_KEK, None),
    (SESSION_SIGN, Some(SESSION_KEK)),
    (CALLER_CONTEXT, Some(SESSION_KEK)),
    (CALLER_SUBJECT, Some(SESSION_KEK)),
];

/// Why a key operation could not be done; it names keys, components and files, never key
/// material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Refused as asked, or the stored keyring is not usable; the message says which.
    #[error("{0}")]
    Refused(String),
    /// A step failed for a reason of its own (random generator, file, encryption).
    #[error("{what}: {reason}")]
    Failed { what: String, reason: String },
    #[error("stored key data is malformed: {0}")]
    Malformed(String),
}

impl KeyError {
    fn context(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        KeyError::Failed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

impl From<serde_json::Error> for KeyError {
    fn from(e: serde_json::Error) -> Self {
        KeyError::Malformed(e.to_string())
    }
}

impl From<std::num::TryFromIntError> for KeyError {
    fn from(e: std::num::TryFromIntError) -> Self {
        KeyError::Malformed(e.to_string())
    }
}

const META_NS: &str = "keyring";
const META_KEY: &str = "root";

/// What is recorded about the root key: how to find and check it, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootMeta {
    /// Key check value, 8 hex digits.
    pub kcv: String,
    /// `xor` or `shamir`.
    pub scheme: String,
    pub threshold: u8,
    pub total: u8,
    /// Where the components were put at `init`.
    pub components: Vec<String>,
    /// A development keyring made automatically in the test profile; production refuses it.
    pub dev: bool,
    pub created_at_ms: i64,
}

/// The keyring in memory and its persistence.
pub struct KeyService {
    store: Store,
    root: RootKey,
    meta: RootMeta,
    ring: RwLock<Arc<Keyring>>,
    envelope: RwLock<Arc<EnvelopeKeySet>>,
    /// Counts keyring swaps, so that what is derived from the keys can tell it is stale with
    /// one atomic read.
    generation: std::sync::atomic::AtomicU64,
    // Serialises changes within this process; across processes the audit sequence does.
    change: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("kcv", &self.meta.kcv)
            .finish_non_exhaustive()
    }
}

/// A component kept in a database row, fetched before assembly (assembly itself is sync).
struct DbSource {
    name: String,
    text: Option<Zeroizing<String>>,
}

impl ComponentSource for DbSource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn load(&self) -> Result<Zeroizing<String>, LoadError> {
        self.text.clone().ok_or(LoadError::NotFound)
    }
}

/// The component locations in force: configured, or the test profile's development pair.
pub fn component_locations(cfg: &Config) -> Vec<String> {
    if cfg.keys.components.is_empty() && cfg.profile == Profile::Test {
        vec![
            format!(
                "file:{}",
                cfg.data_dir.join("keys/root-component-1").display()
            ),
            "db:root-component-2".to_owned(),
        ]
    } else {
        cfg.keys.components.clone()
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ctx(actor: &str) -> OpContext {
    OpContext {
        actor: actor.to_owned(),
        at_unix_ms: now_ms(),
    }
}

/// Parses `xor`, `N` (n-of-n XOR) or `K-of-N` (Shamir).
pub fn parse_scheme(s: &str, total: usize) -> Result<SplitScheme, KeyError> {
    let total =
        u8::try_from(total).map_err(|_| KeyError::Refused("at most 255 components".to_owned()))?;
    if s == "xor" {
        return Ok(SplitScheme::Xor { total });
    }
    let (k, n) = s.split_once("-of-").ok_or_else(|| {
        KeyError::Refused(format!("scheme {s:?}: expected xor or K-of-N, e.g. 2-of-3"))
    })?;
    let (k, n): (u8, u8) = (
        k.parse()
            .map_err(|e| KeyError::context("scheme threshold", e))?,
        n.parse()
            .map_err(|e| KeyError::context("scheme total", e))?,
    );
    if n != total {
        return Err(KeyError::Refused(format!(
            "scheme {s} makes {n} components but {total} locations are configured"
        )));
    }
    if k < 2 || k > n {
        return Err(KeyError::Refused(format!("scheme {s}: need 2 <= K <= N")));
    }
    Ok(SplitScheme::Shamir {
        threshold: k,
        total: n,
    })
}

// === impl KeyService ===

impl KeyService {
    /// Whether `tongban keys init` has run against this store.
    pub async fn meta(store: &Store) -> Result<Option<RootMeta>, KeyError> {
        let Some(e) = store.kv().get(META_NS, META_KEY).await? else {
            return Ok(None);
        };
        let text = e.value.unwrap_or_default();
        Ok(Some(serde_json::from_str(&text).map_err(|e| {
            KeyError::context("stored keyring metadata is not readable", e)
        })?))
    }

    /// Creates the root key, writes its components to their places, and creates the KEKs, DEKs
    /// and the first envelope key pair. Refuses if a keyring exists. Returns the service and
    /// the text of any `env:` components, which the operator must move to their place.
    pub async fn init(
        store: &Store,
        locations: &[String],
        scheme: SplitScheme,
        dev: bool,
        actor: &str,
    ) -> Result<(KeyService, Vec<(String, Zeroizing<String>)>), KeyError> {
        if Self::meta(store).await?.is_some() {
            return Err(KeyError::Refused(
                "a keyring already exists in this database; use `tongban keys status`".to_owned(),
            ));
        }
        let root = RootKey::generate().map_err(|e| KeyError::context("random generator", e))?;
        let components = root
            .split(scheme)
            .map_err(|e| KeyError::Refused(format!("cannot split the root key: {e}")))?;
        if components.len() != locations.len() {
            return Err(KeyError::Refused(format!(
                "{} components for {} locations",
                components.len(),
                locations.len()
            )));
        }
        let mut env_out = Vec::new();
        for (loc, c) in locations.iter().zip(&components) {
            let text = c.to_text();
            if let Some(path) = loc.strip_prefix("file:") {
                write_new_private(std::path::Path::new(path), text.as_bytes())
                    .map_err(|e| KeyError::context(format!("component {loc}"), e))?;
            } else if let Some(name) = loc.strip_prefix("db:") {
                store
                    .keys()
                    .put_component(name, &text)
                    .await
                    .map_err(|e| KeyError::context(format!("component {loc}"), e))?;
            } else if let Some(var) = loc.strip_prefix("env:") {
                env_out.push((var.to_owned(), text));
            } else {
                return Err(KeyError::Refused(format!(
                    "component location {loc:?} is not file:, env: or db:"
                )));
            }
        }
        let (scheme_name, threshold, total) = match scheme {
            SplitScheme::Xor { total } => ("xor", total, total),
            SplitScheme::Shamir { threshold, total } => ("shamir", threshold, total),
        };
        let meta = RootMeta {
            kcv: root.kcv().to_string(),
            scheme: scheme_name.to_owned(),
            threshold,
            total,
            components: locations.to_vec(),
            dev,
            created_at_ms: now_ms(),
        };
        let svc = KeyService {
            store: store.clone(),
            root: root.clone(),
            meta: meta.clone(),
            ring: RwLock::new(Arc::new(Keyring::new(root))),
            envelope: RwLock::new(Arc::new(EnvelopeKeySet::new())),
            generation: std::sync::atomic::AtomicU64::new(1),
            change: tokio::sync::Mutex::new(()),
        };
        svc.ensure_keys(actor).await?;
        store
            .kv()
            .put(
                META_NS,
                META_KEY,
                &serde_json::to_string(&meta)?,
                Expect::Absent,
            )
            .await
            .map_err(|e| KeyError::context("saving keyring metadata", e))?;
        svc.new_envelope_key(actor).await?;
        Ok((svc, env_out))
    }

    /// Assembles the root key from `locations` and loads the keyring. A missing or wrong
    /// component stops here with an error naming the component, never its bytes.
    pub async fn open(
        store: &Store,
        locations: &[String],
        profile: Profile,
        actor: &str,
    ) -> Result<KeyService, KeyError> {
        let meta = Self::meta(store).await?.ok_or_else(|| {
            KeyError::Refused(
                "no keyring in this database: run `tongban keys init` first".to_owned(),
            )
        })?;
        if meta.dev && profile == Profile::Production {
            return Err(KeyError::Refused(
                "this database holds a development keyring (made automatically in the test \
                 profile); the production profile refuses it: initialise a new database with \
                 `tongban keys init`"
                    .to_owned(),
            ));
        }
        let expected: Kcv = meta
            .kcv
            .parse()
            .map_err(|_| KeyError::Refused("stored key check value is malformed".to_owned()))?;
        let mut sources: Vec<Box<dyn ComponentSource>> = Vec::new();
        for loc in locations {
            if let Some(path) = loc.strip_prefix("file:") {
                sources.push(Box::new(FileSource::new(path)));
            } else if let Some(var) = loc.strip_prefix("env:") {
                sources.push(Box::new(EnvSource::new(var)));
            } else if let Some(name) = loc.strip_prefix("db:") {
                let text = store.keys().component(name).await?.map(Zeroizing::new);
                sources.push(Box::new(DbSource {
                    name: loc.clone(),
                    text,
                }));
            } else {
                return Err(KeyError::Refused(format!(
                    "component location {loc:?} is not file:, env: or db:"
                )));
            }
        }
        let refs: Vec<&dyn ComponentSource> = sources.iter().map(|s| s.as_ref()).collect();
        let assembly = assemble_root(&refs, &expected)
            .map_err(|e| KeyError::Refused(format!("cannot assemble the root key: {e}")))?;
        for (name, reason) in &assembly.missing {
            tracing::warn!(component = %name, %reason, "Root-key component unavailable; assembled without it.");
        }
        let root = assembly.root;
        let ring = load_ring(store, root.clone()).await?;
        let envelope = load_envelope_keys(store, &ring).await?;
        let svc = KeyService {
            store: store.clone(),
            root,
            meta,
            ring: RwLock::new(Arc::new(ring)),
            envelope: RwLock::new(Arc::new(envelope)),
            generation: std::sync::atomic::AtomicU64::new(1),
            change: tokio::sync::Mutex::new(()),
        };
        svc.audit_only(actor, "assemble-root", "root", 0).await?;
        svc.ensure_keys(actor).await?;
        Ok(svc)
    }

    /// Creates whichever of the required keys the keyring lacks (all of them at `init`).
    async fn ensure_keys(&self, actor: &str) -> Result<(), KeyError> {
        let missing = |ring: &Keyring| {
            REQUIRED
                .iter()
                .any(|(id, _)| !ring.policies().any(|p| p.key_id == *id))
        };
        if !missing(&self.ring()) {
            return Ok(());
        }
        self.change(actor, |ring, c| {
            let mut all = KeyChange::default();
            for (id, parent) in REQUIRED {
                if ring.policies().any(|p| p.key_id == id) {
                    continue;
                }
                let step = match parent {
                    None => ring.create_kek(id, c)?,
                    Some(kek) => ring.create_dek(id, kek, c)?,
                };
                merge(&mut all, step);
            }
            Ok(all)
        })
        .await
    }

    /// `open`, or in the test profile with no keyring yet, a development keyring made on the spot.
    pub async fn open_or_init_dev(
        store: &Store,
        cfg: &Config,
        actor: &str,
    ) -> Result<KeyService, KeyError> {
        let locations = component_locations(cfg);
        if cfg.profile == Profile::Test
            && cfg.keys.components.is_empty()
            && Self::meta(store).await?.is_none()
        {
            tracing::warn!(
                "No keyring yet: made a development keyring (test profile only; components in the data directory and the database)."
            );
            let scheme = SplitScheme::Xor {
                total: u8::try_from(locations.len()).unwrap_or(2),
            };
            let (svc, _) = Self::init(store, &locations, scheme, true, actor).await?;
            return Ok(svc);
        }
        Self::open(store, &locations, cfg.profile, actor).await
    }

    pub fn meta_info(&self) -> &RootMeta {
        &self.meta
    }

    /// The keyring as of now (cheap to clone; a rotation swaps in a new one).
    pub fn ring(&self) -> Arc<Keyring> {
        self.ring
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The envelope key pairs as of now.
    pub fn envelope_keys(&self) -> Arc<EnvelopeKeySet> {
        self.envelope
            .read()
            .map(|g| g.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Re-reads the keyring from storage: picks up rotations made by other processes.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let ring = load_ring(&self.store, self.root.clone()).await?;
        let envelope = load_envelope_keys(&self.store, &ring).await?;
        self.swap(ring, envelope);
        Ok(())
    }

    /// Changes each time the keyring in memory is replaced (a rotation, a reload).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn swap(&self, ring: Keyring, envelope: EnvelopeKeySet) {
        match self.ring.write() {
            Ok(mut g) => *g = Arc::new(ring),
            Err(p) => *p.into_inner() = Arc::new(ring),
        }
        match self.envelope.write() {
            Ok(mut g) => *g = Arc::new(envelope),
            Err(p) => *p.into_inner() = Arc::new(envelope),
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Applies a keyring operation to the stored state and persists it with its audit records,
    /// atomically; retried when another process changed the keyring meanwhile.
    pub async fn change<F>(&self, actor: &str, mut op: F) -> Result<(), KeyError>
    where
        F: FnMut(
            &mut Keyring,
            &OpContext,
        ) -> Result<KeyChange, tongban_crypto::keyring::KeyringError>,
    {
        let _guard = self.change.lock().await;
        for _ in 0..5 {
            let mut ring = load_ring(&self.store, self.root.clone()).await?;
            let change = op(&mut ring, &ctx(actor))
                .map_err(|e| KeyError::Refused(format!("key operation refused: {e}")))?;
            match self.persist(&change).await {
                Ok(()) => {
                    let envelope = load_envelope_keys(&self.store, &ring).await?;
                    self.swap(ring, envelope);
                    for e in &change.events {
                        tracing::info!(actor = %e.actor, operation = %e.operation, key_id = %e.key_id, version = e.version, "Key operation.");
                    }
                    return Ok(());
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e).map_err(|e| KeyError::context("saving the key change", e)),
            }
        }
        Err(KeyError::Refused(
            "the keyring kept changing under this operation; try again".to_owned(),
        ))
    }

    async fn persist(&self, change: &KeyChange) -> Result<(), StoreError> {
        let head = self.store.keys().audit_head().await?;
        let mut prev = head.as_ref().and_then(record_of_row);
        if head.is_some() && prev.is_none() {
            return Err(StoreError::Invalid(
                "the newest audit record is malformed".to_owned(),
            ));
        }
        let mut audit = Vec::new();
        for ev in &change.events {
            let rec = AuditRecord::append(prev.as_ref(), ev.clone());
            audit.push(row_of_record(&rec));
            prev = Some(rec);
        }
        let policies: Vec<KeyPolicyRow> = change.policies.iter().map(policy_row).collect();
        let versions: Vec<KeyVersionRow> = change.versions.iter().map(version_row).collect();
        self.store.keys().apply(&policies, &versions, &audit).await
    }

    /// Records an operation that changes no key (assembly, verification).
    pub async fn audit_only(
        &self,
        actor: &str,
        operation: &str,
        key_id: &str,
        version: u32,
    ) -> Result<(), KeyError> {
        let event = AuditEvent {
            actor: actor.to_owned(),
            at_unix_ms: now_ms(),
            operation: operation.to_owned(),
            key_id: key_id.to_owned(),
            version,
        };
        for _ in 0..5 {
            let change = KeyChange {
                events: vec![event.clone()],
                ..KeyChange::default()
            };
            match self.persist(&change).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => {
                    return Err(e)
                        .map_err(|e| KeyError::context("writing the key audit record", e));
                }
            }
        }
        Err(KeyError::Refused(
            "the audit chain kept changing; try again".to_owned(),
        ))
    }

    /// Checks the whole audit chain; `Ok(n)` with the number of records.
    pub async fn verify_audit(store: &Store) -> Result<usize, KeyError> {
        let rows = store.keys().audit().await?;
        let mut records = Vec::with_capacity(rows.len());
        for r in &rows {
            records.push(record_of_row(r).ok_or_else(|| {
                KeyError::Refused(format!("audit record {} is malformed", r.seq))
            })?);
        }
        verify_chain(&records, None)
            .map_err(|e| KeyError::Refused(format!("audit chain does not verify: {e}")))?;
        Ok(records.len())
    }

    /// Generates a new envelope key pair, stores its private key vault-encrypted, makes it current.
    pub async fn new_envelope_key(&self, actor: &str) -> Result<String, KeyError> {
        let key =
            Sm2PrivateKey::generate().map_err(|e| KeyError::context("random generator", e))?;
        let kid = format!(
            "env-{}",
            hex_encode(
                &tongban_crypto::random::random_array::<6>()
                    .map_err(|e| KeyError::context("random generator", e))?
            )
        );
        let ring = self.ring();
        let vault = Vault::new(&*ring, ENVELOPE_DATA, ENVELOPE_DATA);
        let private_enc = vault
            .encrypt(&envelope_field(&kid), key.to_bytes().as_slice())
            .map_err(|e| KeyError::Refused(format!("cannot encrypt the envelope key: {e}")))?;
        self.store
            .keys()
            .add_envelope_key(&EnvelopeKeyRow {
                kid: kid.clone(),
                public_key: hex_encode(&key.public_key().to_bytes()),
                private_enc,
                is_current: true,
                created_at_ms: now_ms(),
            })
            .await?;
        self.audit_only(actor, "create-envelope-key", &kid, 1)
            .await?;
        self.reload().await?;
        Ok(kid)
    }
}

fn envelope_field(kid: &str) -> FieldRef<'_> {
    FieldRef {
        table: "tb_envelope_keys",
        column: "private_enc",
        row_id: kid,
    }
}

fn merge(all: &mut KeyChange, step: KeyChange) {
    all.policies.extend(step.policies);
    all.versions.extend(step.versions);
    all.events.extend(step.events);
}

async fn load_ring(store: &Store, root: RootKey) -> Result<Keyring, KeyError> {
    let policies = store.keys().policies().await?;
    let versions = store.keys().versions().await?;
    let policies = policies
        .iter()
        .map(policy_of_row)
        .collect::<Result<Vec<_>, KeyError>>()?;
    let versions = versions
        .iter()
        .map(version_of_row)
        .collect::<Result<Vec<_>, KeyError>>()?;
    Keyring::load(root, policies, versions)
        .map_err(|e| KeyError::Refused(format!("cannot load the keyring: {e}")))
}

async fn load_envelope_keys(store: &Store, ring: &Keyring) -> Result<EnvelopeKeySet, KeyError> {
    let mut set = EnvelopeKeySet::new();
    let vault = Vault::new(ring, ENVELOPE_DATA, ENVELOPE_DATA);
    let mut current = None;
    for row in store.keys().envelope_keys().await? {
        let raw = vault
            .decrypt(&envelope_field(&row.kid), &row.private_enc)
            .map_err(|e| {
                KeyError::Refused(format!("envelope key {} does not decrypt: {e}", row.kid))
            })?;
        let key = Sm2PrivateKey::from_bytes(&raw).map_err(|e| {
            KeyError::Refused(format!("envelope key {} is malformed: {e}", row.kid))
        })?;
        set.insert(&row.kid, key);
        if row.is_current {
            current = Some(row.kid);
        }
    }
    if let Some(kid) = current {
        set.set_current(&kid);
    }
    Ok(set)
}

fn policy_row(p: &KeyPolicy) -> KeyPolicyRow {
    KeyPolicyRow {
        key_id: p.key_id.clone(),
        kind: match p.kind {
            KeyKind::Kek => "kek",
            KeyKind::Dek => "dek",
        }
        .to_owned(),
        parent: p.parent.clone(),
        current_version: i64::from(p.current_version),
        min_decryption_version: i64::from(p.min_decryption_version),
    }
}

fn policy_of_row(r: &KeyPolicyRow) -> Result<KeyPolicy, KeyError> {
    Ok(KeyPolicy {
        key_id: r.key_id.clone(),
        kind: match r.kind.as_str() {
            "kek" => KeyKind::Kek,
            "dek" => KeyKind::Dek,
            other => {
                return Err(KeyError::Refused(format!(
                    "key {} has unknown kind {other:?}",
                    r.key_id
                )));
            }
        },
        parent: r.parent.clone(),
        current_version: u32::try_from(r.current_version)?,
        min_decryption_version: u32::try_from(r.min_decryption_version)?,
    })
}

fn version_row(v: &WrappedKey) -> KeyVersionRow {
    KeyVersionRow {
        key_id: v.key_id.clone(),
        version: i64::from(v.version),
        wrapped_by: v.wrapped_by.clone(),
        wrapped_by_version: i64::from(v.wrapped_by_version),
        wrapped: tongban_crypto::encoding::b64_encode(&v.wrapped),
        kcv: v.kcv.clone(),
        created_at_ms: v.created_at_unix_ms,
    }
}

fn version_of_row(r: &KeyVersionRow) -> Result<WrappedKey, KeyError> {
    Ok(WrappedKey {
        key_id: r.key_id.clone(),
        version: u32::try_from(r.version)?,
        wrapped_by: r.wrapped_by.clone(),
        wrapped_by_version: u32::try_from(r.wrapped_by_version)?,
        wrapped: tongban_crypto::encoding::b64_decode(&r.wrapped, "wrapped key").map_err(|_| {
            KeyError::Refused(format!(
                "key {} version {} is malformed",
                r.key_id, r.version
            ))
        })?,
        kcv: r.kcv.clone(),
        created_at_unix_ms: r.created_at_ms,
    })
}

fn row_of_record(r: &AuditRecord) -> KeyAuditRow {
    KeyAuditRow {
        seq: i64::try_from(r.seq).unwrap_or(i64::MAX),
        actor: r.event.actor.clone(),
        at_ms: r.event.at_unix_ms,
        operation: r.event.operation.clone(),
        key_id: r.event.key_id.clone(),
        version: i64::from(r.event.version),
        prev_hash: hex_encode(&r.prev_hash),
        hash: hex_encode(&r.hash),
    }
}

fn record_of_row(r: &KeyAuditRow) -> Option<AuditRecord> {
    let h = |s: &str| -> Option<[u8; 32]> { hex_decode(s, "hash").ok()?.try_into().ok() };
    Some(AuditRecord {
        seq: u64::try_from(r.seq).ok()?,
        event: AuditEvent {
            actor: r.actor.clone(),
            at_unix_ms: r.at_ms,
            operation: r.operation.clone(),
            key_id: r.key_id.clone(),
            version: u32::try_from(r.version).ok()?,
        },
        prev_hash: h(&r.prev_hash)?,
        hash: h(&r.hash)?,
    })
}

/// Writes a new file readable by its owner only; refuses to replace an existing one.
fn write_new_private(path: &std::path::Path, data: &[u8]) -> Result<(), KeyError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| KeyError::context(format!("cannot create {}", dir.display()), e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).map_err(|e| {
        KeyError::context(
            format!("cannot create {} (it must not exist yet)", path.display()),
            e,
        )
    })?;
    f.write_all(data)
        .and_then(|()| f.write_all(b"\n"))
        .map_err(|e| KeyError::context(format!("cannot write {}", path.display()), e))
}
