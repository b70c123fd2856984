//! Login through a provincial unified-identity platform, shaped like the published specs:
//! redirect to the platform's login page, a ticket back, ticket → token, token → user info with
//! its real-name level. The national platform's protocol is not public; the adapter speaks this
//! common shape and [`simulator`] answers it locally for development and tests.
//!
//! Wire format (JSON, every answer the envelope `{"code", "msg", "data"}`):
//! - `GET {login_url}?app_id&redirect_uri&state` → the platform redirects to
//!   `redirect_uri?ticket&state`;
//! - `POST {ticket_url}` `{"app_id", "app_secret", "ticket"}` → `{"token", "expires_in"}`;
//!   code 1001 means the ticket is invalid or used;
//! - `GET {userinfo_url}` with `Authorization: Bearer token` → `{"user_id", "real_name_level",
//!   "name"?, "id_number"?, "unbound"?}`; code 1002 means the token expired.

pub mod simulator;

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tongban_core::Code;
use url::Url;
use zeroize::Zeroizing;

use crate::codes;
use crate::error::{IdentityError, ProviderFailure, http_failure};
use crate::login::{
    AuthorizeRequest, Callback, ExternalIdentity, LoginAdapter, Pending, ReportedPerson,
};

/// The platform's code for an invalid or used ticket.
pub const PLATFORM_TICKET_INVALID: i64 = 1001;
/// The platform's code for an expired token.
pub const PLATFORM_TOKEN_EXPIRED: i64 = 1002;

/// Registration with a platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketConfig {
    pub login_url: String,
    pub ticket_url: String,
    pub userinfo_url: String,
    pub app_id: String,
    pub app_secret: String,
    /// Where the platform sends the user back (the login-callbacks route).
    pub redirect_uri: String,
    /// The platform's real-name level from which a user counts as `real_name` (levels are
    /// typically 1 registered, 2 real-name checked, 3 and up face or in person).
    #[serde(default = "default_level")]
    pub real_name_min_level: u32,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_level() -> u32 {
    2
}

fn default_timeout() -> u64 {
    10
}

/// The adapter.
#[derive(Debug)]
pub struct TicketAdapter {
    cfg: TicketConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer<T> {
    code: i64,
    data: Option<T>,
}

#[derive(Deserialize)]
struct TokenData {
    token: String,
}

#[derive(Deserialize)]
struct UserInfo {
    user_id: String,
    real_name_level: u32,
    name: Option<String>,
    id_number: Option<String>,
    #[serde(default)]
    unbound: bool,
}

const PROVIDER: &str = "ticket";

fn fail(f: ProviderFailure) -> IdentityError {
    IdentityError::provider(PROVIDER, f)
}

// === impl TicketAdapter ===

impl TicketAdapter {
    pub fn new(cfg: TicketConfig) -> Result<Self, IdentityError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| fail(http_failure(&e)))?;
        Ok(Self { cfg, client })
    }

    async fn read<T: serde::de::DeserializeOwned>(
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Answer<T>, IdentityError> {
        let resp = resp.map_err(|e| fail(http_failure(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(ProviderFailure::Status(resp.status().as_u16())));
        }
        resp.json().await.map_err(|e| fail(http_failure(&e)))
    }
}

#[async_trait]
impl LoginAdapter for TicketAdapter {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, IdentityError> {
        let mut url = Url::parse(&self.cfg.login_url)
            .map_err(|_| fail(ProviderFailure::BadData("login_url".to_owned())))?;
        url.query_pairs_mut()
            .append_pair("app_id", &self.cfg.app_id)
            .append_pair("redirect_uri", &self.cfg.redirect_uri)
            .append_pair("state", req.state);
        Ok(url.into())
    }

    async fn complete(
        &self,
        callback: &Callback,
        _pending: &Pending,
    ) -> Result<ExternalIdentity, IdentityError> {
        let ticket = callback
            .ticket
            .as_deref()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| IdentityError::code(Code::PARAMETER_MISSING))?;
        let answer: Answer<TokenData> = Self::read(
            self.client
                .post(&self.cfg.ticket_url)
                .json(&json!({
                    "app_id": self.cfg.app_id,
                    "app_secret": self.cfg.app_secret,
                    "ticket": ticket,
                }))
                .send()
                .await,
        )
        .await?;
        let token = match (answer.code, answer.data) {
            (0, Some(d)) => Zeroizing::new(d.token),
            (PLATFORM_TICKET_INVALID, _) => return Err(codes::AUTH_CODE_INVALID.into()),
            (0, None) => return Err(fail(ProviderFailure::BadData("no token".to_owned()))),
            (c, _) => return Err(fail(ProviderFailure::ErrorCode(c.to_string()))),
        };
        let answer: Answer<UserInfo> = Self::read(
            self.client
                .get(&self.cfg.userinfo_url)
                .bearer_auth(token.as_str())
                .send()
                .await,
        )
        .await?;
        let info = match (answer.code, answer.data) {
            (0, Some(i)) => i,
            (PLATFORM_TOKEN_EXPIRED, _) => return Err(Code::PLATFORM_TOKEN_EXPIRED.into()),
            (0, None) => return Err(codes::USER_INFO_EMPTY.into()),
            (c, _) => return Err(fail(ProviderFailure::ErrorCode(c.to_string()))),
        };
        if info.unbound {
            return Err(codes::UNBOUND.into());
        }
        let real_name = info.real_name_level >= self.cfg.real_name_min_level;
        let person = match (info.name, info.id_number) {
            (Some(n), Some(i)) if real_name => Some(ReportedPerson {
                name: Zeroizing::new(n),
                id_number: Zeroizing::new(i),
            }),
            _ => None,
        };
        Ok(ExternalIdentity {
            provider: PROVIDER.to_owned(),
            subject: info.user_id,
            real_name,
            person,
            acr: Some(format!("platform-level-{}", info.real_name_level)),
            amr: vec!["platform".to_owned()],
        })
    }
}
