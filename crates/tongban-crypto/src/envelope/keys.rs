//! The server's SM2 key pairs for the envelope, by key id.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{
    CryptoError,
    encoding::hex_encode,
    sm2::{Sm2PrivateKey, Sm2PublicKey},
};

/// Looks up the private key for a `kid` (server side).
pub trait EnvelopeKeys {
    /// The key pair named `kid`, if this server has it.
    fn private_key(&self, kid: &str) -> Option<&Sm2PrivateKey>;
}

/// An in-memory set of key pairs: the one clients should use now, and older ones still
/// accepted during a rotation. The store persists the private keys encrypted by the vault.
#[derive(Debug, Default)]
pub struct EnvelopeKeySet {
    keys: BTreeMap<String, Sm2PrivateKey>,
    current: Option<String>,
}

/// A public key as published to clients (`GET .../envelope-keys`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedKey {
    /// Key id to put in requests.
    pub kid: String,
    /// `04 || x || y`, lowercase hex (130 characters).
    pub public_key: String,
    /// Whether clients should use this key for new requests.
    pub current: bool,
}

// === impl EnvelopeKeySet ===

impl EnvelopeKeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a key pair; the first one added becomes current.
    pub fn insert(&mut self, kid: &str, key: Sm2PrivateKey) {
        if self.current.is_none() {
            self.current = Some(kid.to_owned());
        }
        self.keys.insert(kid.to_owned(), key);
    }

    /// Generates a new key pair under `kid` and makes it current (key rotation).
    pub fn rotate_to(&mut self, kid: &str) -> Result<Sm2PublicKey, CryptoError> {
        let key = Sm2PrivateKey::generate()?;
        let public = key.public_key();
        self.keys.insert(kid.to_owned(), key);
        self.current = Some(kid.to_owned());
        Ok(public)
    }

    /// Makes an existing `kid` current; false when there is none.
    pub fn set_current(&mut self, kid: &str) -> bool {
        let known = self.keys.contains_key(kid);
        if known {
            self.current = Some(kid.to_owned());
        }
        known
    }

    /// Stops accepting `kid` (its private key is zeroized as it drops).
    pub fn remove(&mut self, kid: &str) -> Option<Sm2PublicKey> {
        if self.current.as_deref() == Some(kid) {
            self.current = None;
        }
        self.keys.remove(kid).map(|k| k.public_key())
    }

    /// The current key id.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Public keys for clients.
    pub fn published(&self) -> Vec<PublishedKey> {
        self.keys
            .iter()
            .map(|(kid, key)| PublishedKey {
                kid: kid.clone(),
                public_key: hex_encode(&key.public_key().to_bytes()),
                current: self.current.as_deref() == Some(kid.as_str()),
            })
            .collect()
    }
}

impl EnvelopeKeys for EnvelopeKeySet {
    fn private_key(&self, kid: &str) -> Option<&Sm2PrivateKey> {
        self.keys.get(kid)
    }
}
