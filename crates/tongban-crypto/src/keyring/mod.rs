//! Key management: root key from components, KEKs and DEKs with versions, audit chain.
//!
//! Hierarchy (standard clause 6.3.2.3 b, c): the root key is assembled in memory from
//! components kept in separate places ([`assemble_root`]) and is never stored whole; it wraps
//! one KEK per purpose; each KEK wraps DEKs. All wrapping is SM4-GCM with AAD naming the key
//! id, version and parent. This module must never log, print or return key material except
//! through [`KeyLookup`] to the vault and envelope code of this crate's callers.

mod audit;
mod component;
mod kcv;
mod keys;
mod root;
pub mod shamir;

pub use audit::{AuditError, AuditEvent, AuditRecord, GENESIS_HASH, verify_chain};
pub use component::{
    ComponentSource, EnvSource, FileSource, KeyComponent, LoadError, MemorySource, SplitScheme,
};
pub use kcv::{Kcv, kcv_of};
pub use keys::{KeyChange, KeyKind, KeyPolicy, Keyring, OpContext, ROOT_ID, WrappedKey};
pub use root::{Assembly, AssemblyError, RootKey, assemble_root};

use crate::Sm4Key;

/// Read access to versioned symmetric keys, as the vault needs it. Implemented by
/// [`Keyring`] and by [`crate::vault::StaticKeys`] (benchmarks, tests).
pub trait KeyLookup {
    /// The version used for new encryptions under `key_id`, and its key.
    fn current(&self, key_id: &str) -> Result<(u32, &Sm4Key), KeyringError>;

    /// A specific version, refused when unknown or retired.
    fn get(&self, key_id: &str, version: u32) -> Result<&Sm4Key, KeyringError>;
}

/// Why a keyring operation failed. Keys are named by id and version only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key has this id.
    #[error("unknown key {0}")]
    UnknownKey(String),
    /// The key has no such version.
    #[error("unknown version {version} of key {key_id}")]
    UnknownVersion {
        /// Key id.
        key_id: String,
        /// Version asked for.
        version: u32,
    },
    /// The version is below the key's minimum decryption version.
    #[error("version {version} of key {key_id} is retired")]
    Retired {
        /// Key id.
        key_id: String,
        /// Version asked for.
        version: u32,
    },
    /// Ids are `[a-z0-9._-]{1,64}` and not `root`.
    #[error("invalid key id {0:?}")]
    InvalidKeyId(String),
    /// A key with this id exists already.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// A DEK's parent (or a rewrap target) must be a KEK.
    #[error("key {0} is not a KEK")]
    NotAKek(String),
    /// A minimum decryption version out of range.
    #[error("invalid version {version} for key {key_id}")]
    InvalidVersion {
        /// Key id.
        key_id: String,
        /// Version given.
        version: u32,
    },
    /// Retiring this KEK version would orphan a DEK still wrapped by it.
    #[error("version {version} of KEK {key_id} still wraps key {child}; rewrap it first")]
    StillInUse {
        /// KEK id.
        key_id: String,
        /// KEK version still in use.
        version: u32,
        /// A DEK wrapped by it.
        child: String,
    },
    /// A stored key did not unwrap: another root key, or the row was altered.
    #[error("key {key_id} version {version} does not unwrap (wrong root key or altered row)")]
    Unwrap {
        /// Key id.
        key_id: String,
        /// Version.
        version: u32,
    },
    /// The OS random generator failed.
    #[error("random number generator failed")]
    Random,
}
