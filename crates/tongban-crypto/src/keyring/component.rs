//! Root-key components: their text format and the places they are loaded from.
//!
//! A component is one line of ASCII, self-checking and naming the root key it belongs to:
//!
//! ```text
//! tongban-root-component:v1:<scheme>:<threshold>:<total>:<index>:<kcv>:<data>:<check>
//! ```
//!
//! `scheme` is `shamir` or `xor`; `kcv` is the root key's check value (hex); `data` the share
//! bytes (Base64 URL-safe, unpadded); `check` the first 4 bytes of SM3 over everything before
//! it (hex), so a damaged copy is reported as such instead of producing a wrong root key.

use std::{fmt, path::PathBuf};

use zeroize::Zeroizing;

use super::kcv::Kcv;
use crate::{
    SecretBytes,
    encoding::{b64url_decode, b64url_encode, hex_decode, hex_encode},
    sm3::{ct_eq, sm3},
};

const MAGIC: &str = "tongban-root-component";

/// How the root key was split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitScheme {
    /// k-of-n Shamir sharing over GF(2^8).
    Shamir {
        /// Shares needed (k).
        threshold: u8,
        /// Shares made (n).
        total: u8,
    },
    /// n-of-n: the root key is the XOR of all components.
    Xor {
        /// Components made, all needed.
        total: u8,
    },
}

/// One parsed component.
#[derive(Clone)]
pub struct KeyComponent {
    /// Scheme and parameters of the split this component belongs to.
    pub scheme: SplitScheme,
    /// 1-based index of this component.
    pub index: u8,
    /// Check value of the root key the component belongs to.
    pub kcv: Kcv,
    /// The share bytes.
    pub data: SecretBytes,
}

/// Where a component is read from. Implementations: [`FileSource`], [`EnvSource`],
/// [`MemorySource`]; the store provides one over a database row.
pub trait ComponentSource {
    /// Human-readable location used in errors and audit records (e.g. `file:/etc/x`),
    /// never the component itself.
    fn name(&self) -> String;

    /// Reads the component text.
    fn load(&self) -> Result<Zeroizing<String>, LoadError>;
}

/// Why a source could not produce its component text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Nothing is there (file or variable absent, row missing).
    #[error("not found")]
    NotFound,
    /// Something is there but could not be read; the reason is an OS/store message, never data.
    #[error("unreadable: {0}")]
    Unreadable(String),
    /// The file may be read by other users than its owner.
    #[error("readable by group or others; chmod 600 it")]
    InsecurePermissions,
}

/// A component in a file (e.g. on a separate mounted volume or a removable medium).
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
    require_private: bool,
}

/// A component in an environment variable (e.g. injected by an operator's secret manager).
///
/// The process environment cannot be wiped safely once read; prefer files for long-running
/// services and use this for one-shot commands.
#[derive(Debug, Clone)]
pub struct EnvSource {
    var: String,
}

/// A component already in memory, e.g. a row the store fetched; `name` says where it came from.
pub struct MemorySource {
    name: String,
    text: Zeroizing<String>,
}

// === impl KeyComponent ===

impl KeyComponent {
    /// The one-line text form written to a file or row.
    pub fn to_text(&self) -> Zeroizing<String> {
        let (scheme, threshold, total) = match self.scheme {
            SplitScheme::Shamir { threshold, total } => ("shamir", threshold, total),
            SplitScheme::Xor { total } => ("xor", total, total),
        };
        let body = Zeroizing::new(format!(
            "{MAGIC}:v1:{scheme}:{threshold}:{total}:{}:{}:{}",
            self.index,
            self.kcv,
            b64url_encode(self.data.expose())
        ));
        let check = hex_encode(&sm3(body.as_bytes())[..4]);
        Zeroizing::new(format!("{}:{check}", body.as_str()))
    }

    /// Parses the text form (surrounding whitespace allowed), checking its checksum.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (body, check) = text.rsplit_once(':')?;
        let expected = hex_decode(check, "component check").ok()?;
        if !ct_eq(&sm3(body.as_bytes())[..4], &expected) {
            return None;
        }
        let fields: Vec<&str> = body.split(':').collect();
        let [magic, "v1", scheme, threshold, total, index, kcv, data] = fields.as_slice() else {
            return None;
        };
        if *magic != MAGIC {
            return None;
        }
        let threshold: u8 = threshold.parse().ok()?;
        let total: u8 = total.parse().ok()?;
        let index: u8 = index.parse().ok()?;
        let scheme = match *scheme {
            "shamir" if threshold >= 2 && threshold <= total => {
                SplitScheme::Shamir { threshold, total }
            }
            "xor" if threshold == total && total >= 2 => SplitScheme::Xor { total },
            _ => return None,
        };
        if index == 0 || index > total {
            return None;
        }
        let kcv = kcv.parse().ok()?;
        let data = SecretBytes::new(b64url_decode(data, "component data").ok()?);
        Some(Self {
            scheme,
            index,
            kcv,
            data,
        })
    }
}

impl fmt::Debug for KeyComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyComponent")
            .field("scheme", &self.scheme)
            .field("index", &self.index)
            .field("kcv", &self.kcv)
            .finish_non_exhaustive()
    }
}

// === impl FileSource ===

impl FileSource {
    /// A file component; on Unix the file must not be readable by group or others.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            require_private: true,
        }
    }

    /// Accepts a group/world-readable file (e.g. a container secret mounted 0644).
    pub fn allow_shared_permissions(mut self) -> Self {
        self.require_private = false;
        self
    }
}

impl ComponentSource for FileSource {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn load(&self) -> Result<Zeroizing<String>, LoadError> {
        let meta = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(LoadError::NotFound),
            Err(e) => return Err(LoadError::Unreadable(e.kind().to_string())),
        };
        #[cfg(unix)]
        if self.require_private {
            use std::os::unix::fs::PermissionsExt;
            if meta.permissions().mode() & 0o077 != 0 {
                return Err(LoadError::InsecurePermissions);
            }
        }
        #[cfg(not(unix))]
        let _ = (meta, self.require_private);
        std::fs::read_to_string(&self.path)
            .map(Zeroizing::new)
            .map_err(|e| LoadError::Unreadable(e.kind().to_string()))
    }
}

// === impl EnvSource ===

impl EnvSource {
    /// A component in the environment variable `var`.
    pub fn new(var: impl Into<String>) -> Self {
        Self { var: var.into() }
    }
}

impl ComponentSource for EnvSource {
    fn name(&self) -> String {
        format!("env:{}", self.var)
    }

    fn load(&self) -> Result<Zeroizing<String>, LoadError> {
        match std::env::var(&self.var) {
            Ok(v) => Ok(Zeroizing::new(v)),
            Err(std::env::VarError::NotPresent) => Err(LoadError::NotFound),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(LoadError::Unreadable("not valid UTF-8".to_owned()))
            }
        }
    }
}

// === impl MemorySource ===

impl MemorySource {
    /// A component held in memory; `name` is its origin (e.g. `db:key_components/2`).
    pub fn new(name: impl Into<String>, text: Zeroizing<String>) -> Self {
        Self {
            name: name.into(),
            text,
        }
    }
}

impl ComponentSource for MemorySource {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn load(&self) -> Result<Zeroizing<String>, LoadError> {
        Ok(self.text.clone())
    }
}

impl fmt::Debug for MemorySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySource")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
