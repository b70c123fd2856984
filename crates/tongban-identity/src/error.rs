//! Errors of the identity service and their mapping to Appendix A codes: what the client may
//! learn is the code; the cause stays in the log, which never carries personal data.

use tongban_core::{ApiError, Code};
use tongban_crypto::CryptoError;
use tongban_crypto::vault::VaultError;
use tongban_governance::third_party::ThirdPartyError;
use tongban_store::StoreError;

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// An answer for the client: a code of Appendix A with optional data.
    #[error("{0}")]
    Api(ApiError),
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("vault: {0}")]
    Vault(#[from] VaultError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// A third party (OIDC provider, platform, real-name or face service) failed.
    #[error("provider {provider}: {failure}")]
    Provider {
        provider: String,
        failure: ProviderFailure,
    },
}

/// How a third party failed, mapped to the 30000 series.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderFailure {
    #[error("request failed: {0}")]
    Request(String),
    #[error("timed out")]
    Timeout,
    #[error("connection failed")]
    Connect,
    #[error("unreadable answer: {0}")]
    BadData(String),
    #[error("error code {0}")]
    ErrorCode(String),
    #[error("HTTP status {0}")]
    Status(u16),
    /// A call through the shared third-party client, which has mapped it to its code.
    #[error("{}", .0.reason())]
    ThirdParty(ThirdPartyError),
}

// === impl IdentityError ===

impl IdentityError {
    pub fn code(code: Code) -> Self {
        Self::Api(ApiError::new(code))
    }

    pub fn provider(provider: &str, failure: ProviderFailure) -> Self {
        Self::Provider {
            provider: provider.to_owned(),
            failure,
        }
    }

    /// The code this error answers with.
    pub fn api_code(&self) -> Code {
        match self {
            Self::Api(e) => e.code,
            Self::Store(_) | Self::Vault(_) | Self::Crypto(_) => Code::BUSY,
            Self::Provider { failure, .. } => match failure {
                ProviderFailure::Request(_) => Code::THIRD_PARTY_FAILED,
                ProviderFailure::Timeout => Code::THIRD_PARTY_TIMEOUT,
                ProviderFailure::Connect => Code::THIRD_PARTY_CONNECT_TIMEOUT,
                ProviderFailure::BadData(_) => Code::THIRD_PARTY_BAD_DATA,
                ProviderFailure::ErrorCode(_) => Code::THIRD_PARTY_ERROR_CODE,
                ProviderFailure::Status(_) => Code::THIRD_PARTY_NON_200,
                ProviderFailure::ThirdParty(e) => e.code(),
            },
        }
    }
}

impl From<ApiError> for IdentityError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

impl From<Code> for IdentityError {
    fn from(c: Code) -> Self {
        Self::code(c)
    }
}

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        let code = e.api_code();
        match e {
            IdentityError::Api(api) => api,
            other => {
                // Store, vault and provider errors name keys, tables and statuses, never values.
                tracing::warn!(error = %other, code = code.0, "Identity operation failed.");
                ApiError::new(code)
            }
        }
    }
}

/// Maps a reqwest failure to the 30000 series.
pub(crate) fn http_failure(e: &reqwest::Error) -> ProviderFailure {
    if e.is_timeout() {
        ProviderFailure::Timeout
    } else if e.is_connect() {
        ProviderFailure::Connect
    } else if e.is_decode() {
        ProviderFailure::BadData("body".to_owned())
    } else if let Some(s) = e.status() {
        ProviderFailure::Status(s.as_u16())
    } else {
        // Not the error's text: it names the URL, which may carry a code or ticket.
        let what = if e.is_body() {
            "body"
        } else if e.is_redirect() {
            "redirect"
        } else {
            "request"
        };
        ProviderFailure::Request(what.to_owned())
    }
}
