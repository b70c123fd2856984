//! The root key: generated once, split into components kept apart, assembled in memory only.

use std::fmt;

use super::{
    component::{ComponentSource, KeyComponent, LoadError, SplitScheme},
    kcv::{Kcv, kcv_of},
    shamir::{self, Share},
};
use crate::{CryptoError, SecretBytes, Sm4Key};

/// The root key. Exists only in memory, zeroized on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct RootKey(Sm4Key);

/// What a successful assembly used and what it did without.
#[derive(Debug)]
pub struct Assembly {
    /// The assembled root key.
    pub root: RootKey,
    /// Names of the sources whose components were used.
    pub used: Vec<String>,
    /// Names of the sources that had no component, with the reason; tolerated for k-of-n.
    pub missing: Vec<(String, LoadError)>,
}

/// Why the root key could not be assembled. Components are named by source, never shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssemblyError {
    /// No sources were configured.
    #[error("no key component sources configured")]
    NoSources,
    /// An n-of-n component is missing or unreadable.
    #[error("key component {component} is missing: {reason}")]
    Missing {
        /// Source name.
        component: String,
        /// Why it could not be read.
        reason: LoadError,
    },
    /// None of several sources had a component.
    #[error("no key component is available; missing: {missing:?}")]
    NoneAvailable {
        /// Every source name.
        missing: Vec<String>,
    },
    /// Fewer k-of-n components were available than the threshold.
    #[error("only {have} of the {need} key components needed are available; missing: {missing:?}")]
    NotEnough {
        /// Components read.
        have: usize,
        /// Threshold.
        need: usize,
        /// Sources that could not be read.
        missing: Vec<String>,
    },
    /// A component's text is damaged or not a component at all.
    #[error("key component {component} is malformed or damaged")]
    Malformed {
        /// Source name.
        component: String,
    },
    /// A component belongs to another root key (its KCV differs from the expected one).
    #[error("key component {component} belongs to root key {found}, expected {expected}")]
    WrongKey {
        /// Source name.
        component: String,
        /// KCV carried by the component.
        found: Kcv,
        /// Configured KCV.
        expected: Kcv,
    },
    /// A component disagrees with the others on the split (scheme, threshold, index).
    #[error("key component {component} does not match the other components' split")]
    Inconsistent {
        /// Source name.
        component: String,
    },
    /// The assembled key's KCV differs from the expected one (a component was forged with a
    /// valid checksum, or shares of different splits were mixed).
    #[error("assembled root key fails its check value; components used: {used:?}")]
    CheckFailed {
        /// Sources whose components were combined.
        used: Vec<String>,
    },
}

// === impl RootKey ===

impl RootKey {
    /// A fresh random root key.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(Sm4Key::generate()?))
    }

    /// Wraps existing key bytes (tests, and restoring from components).
    pub fn from_key(key: Sm4Key) -> Self {
        Self(key)
    }

    /// The key's check value.
    pub fn kcv(&self) -> Kcv {
        kcv_of(&self.0)
    }

    pub(crate) fn key(&self) -> &Sm4Key {
        &self.0
    }

    /// Splits the key into components to be stored apart.
    pub fn split(&self, scheme: SplitScheme) -> Result<Vec<KeyComponent>, shamir::ShamirError> {
        let kcv = self.kcv();
        let secret = self.0.expose();
        let datas: Vec<(u8, SecretBytes)> = match scheme {
            SplitScheme::Shamir { threshold, total } => {
                shamir::split(secret, usize::from(threshold), usize::from(total))?
                    .into_iter()
                    .map(|s| (s.x, SecretBytes::new(s.y.to_vec())))
                    .collect()
            }
            SplitScheme::Xor { total } => shamir::xor_split(secret, usize::from(total))?
                .into_iter()
                .zip(1u8..)
                .map(|(d, i)| (i, SecretBytes::new(d.to_vec())))
                .collect(),
        };
        Ok(datas
            .into_iter()
            .map(|(index, data)| KeyComponent {
                scheme,
                index,
                kcv,
                data,
            })
            .collect())
    }
}

impl fmt::Debug for RootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootKey(kcv={})", self.kcv())
    }
}

// === assembly ===

/// Reads every source and assembles the root key whose check value is `expected`.
///
/// Missing k-of-n components are tolerated while at least `threshold` remain; a present but
/// damaged, foreign or inconsistent component is always an error naming its source, because
/// it means someone changed it.
pub fn assemble_root(
    sources: &[&dyn ComponentSource],
    expected: &Kcv,
) -> Result<Assembly, AssemblyError> {
    if sources.is_empty() {
        return Err(AssemblyError::NoSources);
    }
    let mut found: Vec<(String, KeyComponent)> = Vec::new();
    let mut missing = Vec::new();
    for source in sources {
        let name = source.name();
        let text = match source.load() {
            Ok(t) => t,
            Err(reason) => {
                missing.push((name, reason));
                continue;
            }
        };
        let Some(component) = KeyComponent::parse(&text) else {
            return Err(AssemblyError::Malformed { component: name });
        };
        if !component.kcv.ct_eq(expected) {
            return Err(AssemblyError::WrongKey {
                component: name,
                found: component.kcv,
                expected: *expected,
            });
        }
        if let Some((_, first)) = found.first()
            && (first.scheme != component.scheme
                || found.iter().any(|(_, c)| c.index == component.index)
                || first.data.len() != component.data.len())
        {
            return Err(AssemblyError::Inconsistent { component: name });
        }
        found.push((name, component));
    }

    let Some((_, first)) = found.first() else {
        return Err(match missing.into_iter().next() {
            Some((component, reason)) if sources.len() == 1 => {
                AssemblyError::Missing { component, reason }
            }
            _ => AssemblyError::NoneAvailable {
                missing: sources.iter().map(|s| s.name()).collect(),
            },
        });
    };
    let secret = match first.scheme {
        SplitScheme::Xor { total } => {
            if let Some((component, reason)) = missing.first() {
                return Err(AssemblyError::Missing {
                    component: component.clone(),
                    reason: reason.clone(),
                });
            }
            if found.len() != usize::from(total) {
                return Err(AssemblyError::NotEnough {
                    have: found.len(),
                    need: usize::from(total),
                    missing: Vec::new(),
                });
            }
            let parts: Vec<&[u8]> = found.iter().map(|(_, c)| c.data.expose()).collect();
            shamir::xor_combine(&parts)
        }
        SplitScheme::Shamir { threshold, .. } => {
            let need = usize::from(threshold);
            if found.len() < need {
                return Err(AssemblyError::NotEnough {
                    have: found.len(),
                    need,
                    missing: missing.into_iter().map(|(n, _)| n).collect(),
                });
            }
            found.truncate(need);
            let shares: Vec<Share> = found
                .iter()
                .map(|(_, c)| Share {
                    x: c.index,
                    y: zeroize::Zeroizing::new(c.data.expose().to_vec()),
                })
                .collect();
            shamir::combine(&shares)
        }
    };
    let used: Vec<String> = found.into_iter().map(|(n, _)| n).collect();
    let root = secret
        .ok()
        .and_then(|s| Sm4Key::from_slice(&s).ok())
        .map(RootKey)
        .ok_or_else(|| AssemblyError::CheckFailed { used: used.clone() })?;
    if root.kcv() != *expected {
        return Err(AssemblyError::CheckFailed { used });
    }
    Ok(Assembly {
        root,
        used,
        missing,
    })
}
