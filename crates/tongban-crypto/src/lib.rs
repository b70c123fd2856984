//! National (SM) cryptography for Tongban: primitives, keyring, PII vault and digital envelope.
//!
//! Layers, bottom up: primitives ([`sm2`], [`sm3`], [`modes`], [`gcm`]); key material wrappers
//! ([`Sm4Key`], [`SecretBytes`]); the [`keyring`] (root → KEK → DEK, versions, audit chain);
//! the [`vault`] for PII columns and blind indexes; the digital [`envelope`] for requests.
//! Nothing here does I/O beyond reading key components through [`keyring::ComponentSource`]
//! and the OS random generator; storage is reached through traits the callers implement.
// `deny`, not `forbid`: `sm4::x86` is the one module allowed SIMD intrinsics.
#![deny(unsafe_code)]

mod block;
pub mod caller_context;
pub mod encoding;
pub mod envelope;
mod error;
pub mod gcm;
pub mod keyring;
pub mod modes;
pub mod random;
mod secret;
pub mod sm2;
pub mod sm3;
pub mod sm4;
pub mod text;
pub mod vault;

pub use error::CryptoError;
pub use secret::{SM4_KEY_LEN, SecretBytes, Sm4Key};
pub use text::{from_utf8, utf8_bytes};
