//! Identity for Tongban (clauses 6.2.2.1 a, 6.3.1.2, 6.3.2.1 and the login codes of Appendix A):
//! accounts and sessions, opaque tokens and silent re-login, real-name checks, face
//! verification with lockout, consent and minimal collection, and external login through an
//! OpenID Connect relying party or a provincial platform's ticket protocol.
//!
//! Nothing here stores a token, device id or personal value in the clear: tokens are SM3
//! hashes, personal values go through the vault, platform subjects are blind indexes. Nothing
//! here logs personal data.
#![forbid(unsafe_code)]

mod clock;
pub mod codes;
pub mod config;
pub mod consent;
mod error;
pub mod face;
mod flows;
mod http_provider;
pub mod login;
pub mod oidc;
pub mod realname;
pub mod routes;
mod service;
mod session;
mod session_cache;
pub mod signing;
pub mod ticket;
mod token;

pub use config::{IdentityConfig, PurposeConfig};
pub use error::{IdentityError, ProviderFailure};
pub use login::{ExternalIdentity, LoginAdapter};
pub use service::{Identity, IdentityParts};
pub use session::{Caller, Issued, Standing};
pub use session_cache::ChangeFeed;

/// Where the identity service gets its keys: the binary's key service implements it, so a
/// rotation made there is seen here on the next call.
pub trait KeySource: Send + Sync {
    fn ring(&self) -> std::sync::Arc<tongban_crypto::keyring::Keyring>;

    /// The digital envelope's key pairs, for bodies sent sealed (clause 6.3.2.2 d); without
    /// them a sealed body is refused (20004).
    fn envelope_keys(&self) -> Option<std::sync::Arc<tongban_crypto::envelope::EnvelopeKeySet>> {
        None
    }
}
