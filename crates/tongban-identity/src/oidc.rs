//! An OpenID Connect relying party: authorization code with PKCE (S256), state and nonce,
//! ID-token validation (signature by the provider's JWKS, RS256 or ES256; issuer, audience,
//! authorized party, expiry and issue time on the injected clock; nonce), `acr`/`amr` kept.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::RwLock;
use tongban_core::Code;
use url::Url;

use crate::codes;
use crate::error::{IdentityError, ProviderFailure, http_failure};
use crate::login::{AuthorizeRequest, Callback, ExternalIdentity, LoginAdapter, Pending, short};
use tongban_core::clock::Clock;

/// The relying party's registration with one provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer identifier; discovery is read from
    /// `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// For `client_secret_basic` at the token endpoint.
    pub client_secret: String,
    /// Where the provider sends the user back (the login-callbacks route).
    pub redirect_uri: String,
    /// Scopes asked for; `openid` is always included.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// `acr` values that mean the provider verified the user's real name.
    #[serde(default)]
    pub real_name_acr: Vec<String>,
    /// `acr_values` to request, if any.
    #[serde(default)]
    pub acr_values: Option<String>,
    /// Timeout of each call to the provider, seconds.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

fn default_scopes() -> Vec<String> {
    vec!["openid".to_owned()]
}

fn default_timeout() -> u64 {
    10
}

/// The relying party.
#[derive(Debug)]
pub struct OidcRp {
    cfg: OidcConfig,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    discovery: RwLock<Option<Discovery>>,
    jwks: RwLock<Option<JwkSet>>,
}

#[derive(Clone, Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
}

#[derive(Deserialize)]
struct TokenError {
    error: String,
}

/// The claims of a validated ID token that Tongban keeps.
#[derive(Clone, Debug, Deserialize)]
pub struct IdTokenClaims {
    pub sub: String,
    pub aud: serde_json::Value,
    pub exp: i64,
    pub iat: i64,
    pub nonce: Option<String>,
    pub azp: Option<String>,
    pub acr: Option<String>,
    #[serde(default)]
    pub amr: Vec<String>,
    pub auth_time: Option<i64>,
}

/// Allowed clock skew between us and the provider, seconds.
const LEEWAY_SECS: i64 = 60;
const PROVIDER: &str = "oidc";

// === impl OidcRp ===

impl OidcRp {
    pub fn new(cfg: OidcConfig, clock: Arc<dyn Clock>) -> Result<Self, IdentityError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| fail(http_failure(&e)))?;
        Ok(Self {
            cfg,
            client,
            clock,
            discovery: RwLock::new(None),
            jwks: RwLock::new(None),
        })
    }

    async fn discovery(&self) -> Result<Discovery, IdentityError> {
        if let Some(d) = self.discovery.read().await.as_ref() {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.cfg.issuer.trim_end_matches('/')
        );
        let d: Discovery = self.get_json(&url).await?;
        if d.issuer != self.cfg.issuer {
            return Err(fail(ProviderFailure::BadData("issuer mismatch".to_owned())));
        }
        *self.discovery.write().await = Some(d.clone());
        Ok(d)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
    ) -> Result<T, IdentityError> {
        let resp = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| fail(http_failure(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(ProviderFailure::Status(resp.status().as_u16())));
        }
        resp.json().await.map_err(|e| fail(http_failure(&e)))
    }

    /// The key for `kid`, refetching the JWKS once when the provider has rotated.
    async fn key_for(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, IdentityError> {
        for refresh in [false, true] {
            if refresh || self.jwks.read().await.is_none() {
                let d = self.discovery().await?;
                let set: JwkSet = self.get_json(&d.jwks_uri).await?;
                *self.jwks.write().await = Some(set);
            }
            let guard = self.jwks.read().await;
            let found = guard.as_ref().and_then(|set| {
                set.keys.iter().find(|k| {
                    kid.is_none_or(|kid| k.common.key_id.as_deref() == Some(kid))
                        && k.common.key_algorithm.is_none_or(|ka| {
                            matches!(
                                (ka, alg),
                                (KeyAlgorithm::RS256, Algorithm::RS256)
                                    | (KeyAlgorithm::ES256, Algorithm::ES256)
                            )
                        })
                        && matches!(
                            (&k.algorithm, alg),
                            (
                                jsonwebtoken::jwk::AlgorithmParameters::RSA(_),
                                Algorithm::RS256
                            ) | (
                                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_),
                                Algorithm::ES256
                            )
                        )
                })
            });
            if let Some(jwk) = found {
                return DecodingKey::from_jwk(jwk)
                    .map_err(|_| fail(ProviderFailure::BadData("jwk".to_owned())));
            }
        }
        Err(IdentityError::code(codes::AUTH_CODE_INVALID))
    }

    /// Validates an ID token against this registration and the pending login's nonce; any
    /// defect answers 10005 (the authorization is void).
    pub async fn validate_id_token(
        &self,
        id_token: &str,
        nonce: &str,
    ) -> Result<IdTokenClaims, IdentityError> {
        let invalid = || IdentityError::code(codes::AUTH_CODE_INVALID);
        let header = jsonwebtoken::decode_header(id_token).map_err(|_| invalid())?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            tracing::warn!(alg = ?header.alg, "ID token refused: algorithm not allowed.");
            return Err(invalid());
        }
        let key = self.key_for(header.kid.as_deref(), header.alg).await?;
        let mut v = Validation::new(header.alg);
        v.set_audience(&[&self.cfg.client_id]);
        v.set_issuer(&[&self.cfg.issuer]);
        // Expiry is checked below on the injected clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = HashSet::from(["iss", "aud", "sub", "exp"].map(str::to_owned));
        let claims = jsonwebtoken::decode::<IdTokenClaims>(id_token, &key, &v)
            .map_err(|e| {
                tracing::warn!(error = %e, "ID token refused.");
                invalid()
            })?
            .claims;
        let now = self.clock.now_ms() / 1000;
        if claims.exp + LEEWAY_SECS <= now || claims.iat > now + LEEWAY_SECS {
            tracing::warn!("ID token refused: outside its validity.");
            return Err(invalid());
        }
        if claims.nonce.as_deref() != Some(nonce) {
            tracing::warn!("ID token refused: nonce mismatch.");
            return Err(invalid());
        }
        let several = claims.aud.as_array().is_some_and(|a| a.len() > 1);
        if (several || claims.azp.is_some())
            && claims.azp.as_deref() != Some(self.cfg.client_id.as_str())
        {
            tracing::warn!("ID token refused: authorized party mismatch.");
            return Err(invalid());
        }
        Ok(claims)
    }
}

fn fail(f: ProviderFailure) -> IdentityError {
    IdentityError::provider(PROVIDER, f)
}

#[async_trait]
impl LoginAdapter for OidcRp {
    fn name(&self) -> &str {
        PROVIDER
    }

    async fn authorize_url(&self, req: &AuthorizeRequest<'_>) -> Result<String, IdentityError> {
        let d = self.discovery().await?;
        let mut url = Url::parse(&d.authorization_endpoint).map_err(|_| {
            fail(ProviderFailure::BadData(
                "authorization_endpoint".to_owned(),
            ))
        })?;
        let mut scopes = self.cfg.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_owned());
        }
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.cfg.client_id)
                .append_pair("redirect_uri", &self.cfg.redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", req.state)
                .append_pair("nonce", req.nonce)
                .append_pair("code_challenge", req.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(acr) = &self.cfg.acr_values {
                q.append_pair("acr_values", acr);
            }
        }
        Ok(url.into())
    }

    async fn complete(
        &self,
        callback: &Callback,
        pending: &Pending,
    ) -> Result<ExternalIdentity, IdentityError> {
        let code = callback
            .code
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| IdentityError::code(Code::PARAMETER_MISSING))?;
        let d = self.discovery().await?;
        let resp = self
            .client
            .post(&d.token_endpoint)
            .basic_auth(&self.cfg.client_id, Some(&self.cfg.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.cfg.redirect_uri.as_str()),
                ("code_verifier", pending.code_verifier.as_str()),
            ])
            .send()
            .await
            .map_err(|e| fail(http_failure(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let err = resp.json::<TokenError>().await.ok();
            if let Some(e) = err {
                tracing::info!(error = %short(&e.error), "Token endpoint refused the code.");
                if e.error == "invalid_grant" {
                    return Err(codes::AUTH_CODE_INVALID.into());
                }
            }
            return Err(fail(ProviderFailure::Status(status.as_u16())));
        }
        let tokens: TokenResponse = resp.json().await.map_err(|e| fail(http_failure(&e)))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| fail(ProviderFailure::BadData("no id_token".to_owned())))?;
        let claims = self.validate_id_token(&id_token, &pending.nonce).await?;
        let real_name = claims
            .acr
            .as_ref()
            .is_some_and(|a| self.cfg.real_name_acr.contains(a));
        Ok(ExternalIdentity {
            provider: PROVIDER.to_owned(),
            subject: format!("{}#{}", self.cfg.issuer, claims.sub),
            real_name,
            person: None,
            acr: claims.acr,
            amr: claims.amr,
        })
    }
}
