//! The one way identity calls a third-party verification service over HTTP: `POST url` with a
//! JSON body and a bearer key, answered by the envelope `{"code": 0, "data": …}`; any other
//! code, a non-2xx status, a timeout or unreadable data is a provider failure (30000 series).
//! The key is zeroized on drop and never logged.

use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use zeroize::Zeroizing;

use crate::error::{IdentityError, ProviderFailure, http_failure};

/// A JSON service and the key it wants.
#[derive(Debug)]
pub(crate) struct JsonService {
    /// Names the part in errors (`face`, `real_name`).
    part: &'static str,
    client: reqwest::Client,
    url: String,
    api_key: Zeroizing<String>,
}

#[derive(Deserialize)]
struct Answer<T> {
    code: i64,
    #[serde(default = "none")]
    data: Option<T>,
}

fn none<T>() -> Option<T> {
    None
}

impl JsonService {
    pub(crate) fn new(
        part: &'static str,
        url: &str,
        api_key: &str,
        timeout: Duration,
    ) -> Result<Self, IdentityError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| IdentityError::provider(part, http_failure(&e)))?;
        Ok(Self {
            part,
            client,
            url: url.to_owned(),
            api_key: Zeroizing::new(api_key.to_owned()),
        })
    }

    /// Posts `body` and returns the answer's `data` when its code is 0.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        body: &serde_json::Value,
    ) -> Result<T, IdentityError> {
        let fail = |f| IdentityError::provider(self.part, f);
        let resp = self
            .client
            .post(&self.url)
            .bearer_auth(self.api_key.as_str())
            .json(body)
            .send()
            .await
            .map_err(|e| fail(http_failure(&e)))?;
        if !resp.status().is_success() {
            return Err(fail(ProviderFailure::Status(resp.status().as_u16())));
        }
        let answer: Answer<T> = resp.json().await.map_err(|e| fail(http_failure(&e)))?;
        match (answer.code, answer.data) {
            (0, Some(data)) => Ok(data),
            (0, None) => Err(fail(ProviderFailure::BadData("no data".to_owned()))),
            (c, _) => Err(fail(ProviderFailure::ErrorCode(c.to_string()))),
        }
    }
}
