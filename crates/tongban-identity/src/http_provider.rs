//! The one way identity calls a third-party verification service over HTTP: `POST url` with a
//! JSON body and a bearer key, answered by the envelope `{"code": 0, "data": …}`, through the
//! shared third-party client (`tongban_governance::third_party`: timeouts, retries of what
//! never reached the service, a breaker, and every failure mapped to the 30000 series). The
//! key is zeroized on drop and never logged.

use std::time::Duration;

use serde::de::DeserializeOwned;
use tongban_governance::third_party::{BearerKey, ThirdPartyClient, ThirdPartyConfig};

use crate::error::{IdentityError, ProviderFailure};

/// A JSON service and the key it wants.
#[derive(Debug)]
pub(crate) struct JsonService {
    /// Names the part in errors (`face`, `real_name`).
    part: &'static str,
    client: ThirdPartyClient,
}

impl JsonService {
    /// The service at `url`; `timeout` bounds each call as a whole.
    pub(crate) fn new(
        part: &'static str,
        url: &str,
        api_key: &str,
        timeout: Duration,
    ) -> Result<Self, IdentityError> {
        let mut config = ThirdPartyConfig::new(part, url);
        let ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        config.total_timeout_ms = ms;
        // One limit, as configured: silence and a slow connect count against the whole call.
        config.read_timeout_ms = ms;
        config.connect_timeout_ms = config.connect_timeout_ms.min(ms);
        config.bearer_key = Some(BearerKey::new(api_key));
        let client = ThirdPartyClient::new(config).map_err(|e| {
            IdentityError::provider(part, ProviderFailure::Request(e.reason.clone()))
        })?;
        Ok(Self { part, client })
    }

    /// Posts `body` to the URL itself and returns the answer's `data` when its code is 0.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        body: &serde_json::Value,
    ) -> Result<T, IdentityError> {
        self.client
            .post("", body)
            .await
            .map_err(|e| IdentityError::provider(self.part, ProviderFailure::ThirdParty(e)))
    }
}
