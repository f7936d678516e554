//! The reqwest implementation of [`Uploader`], over rustls.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{UploadError, UploadReply, Uploader};
use crate::account::{Credentials, Region};
use crate::record::{UploadBody, UploadResponse};

/// Where the Upload API is: a region, or a full base URL (a proxy, a fake in tests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Endpoint {
    /// One of CleverTap's regions.
    Region(Region),
    /// A base URL such as `http://127.0.0.1:9000`; `/1/upload` is appended.
    BaseUrl(String),
}

impl Endpoint {
    /// The full upload URL.
    pub fn upload_url(&self) -> String {
        let base = match self {
            Endpoint::Region(r) => r.base_url(),
            Endpoint::BaseUrl(u) => u.as_str(),
        };
        format!("{}/1/upload", base.trim_end_matches('/'))
    }
}

/// Settings of the HTTP uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUploaderConfig {
    /// Where to send.
    pub endpoint: Endpoint,
    /// How long one request may take, connection included.
    pub timeout: Duration,
}

/// Sends bodies to CleverTap's Upload API with reqwest (rustls, no OpenSSL).
#[derive(Debug, Clone)]
pub struct HttpUploader {
    client: reqwest::Client,
    url: String,
    timeout: Duration,
}

/// How much of an unparsable response body is kept for the report.
const RAW_LIMIT: usize = 2048;

impl HttpUploader {
    /// Builds an uploader. TLS is rustls; when the process has no default crypto provider yet,
    /// the `ring` one is installed.
    pub fn new(config: HttpUploaderConfig) -> Result<Self, UploadError> {
        ensure_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("clevertap-etl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| UploadError::Other(e.without_url().to_string()))?;
        Ok(HttpUploader {
            client,
            url: config.endpoint.upload_url(),
            timeout: config.timeout,
        })
    }

    /// The URL requests go to.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn map_error(&self, e: reqwest::Error) -> UploadError {
        let e = e.without_url();
        if e.is_timeout() {
            UploadError::Timeout(self.timeout)
        } else if e.is_connect() || e.is_request() {
            UploadError::Connect {
                url: self.url.clone(),
                message: error_chain(&e),
            }
        } else {
            UploadError::Other(error_chain(&e))
        }
    }
}

/// Installs rustls' `ring` crypto provider as the process default, unless one is installed
/// already. reqwest is built without a provider of its own (it builds faster), so any code that
/// makes its own `reqwest::Client` calls this first.
pub fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another thread installing one is fine: either will do.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[async_trait]
impl Uploader for HttpUploader {
    async fn upload(
        &self,
        account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError> {
        let bytes = serde_json::to_vec(body).map_err(|e| UploadError::Encode(e.to_string()))?;
        let response = self
            .client
            .post(&self.url)
            .header("X-CleverTap-Account-Id", account.account_id.as_str())
            .header("X-CleverTap-Passcode", account.passcode.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(bytes)
            .send()
            .await
            .map_err(|e| self.map_error(e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.bytes().await.map_err(|e| self.map_error(e))?;
        let parsed = serde_json::from_slice::<UploadResponse>(&text).ok();
        let raw = parsed.is_none().then(|| {
            let t = String::from_utf8_lossy(&text);
            t.chars().take(RAW_LIMIT).collect()
        });
        Ok(UploadReply {
            status,
            body: parsed,
            raw,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_url_from_region_or_base() {
        assert_eq!(
            Endpoint::Region(Region::In1).upload_url(),
            "https://in1.api.clevertap.com/1/upload"
        );
        assert_eq!(
            Endpoint::BaseUrl("http://127.0.0.1:9/".into()).upload_url(),
            "http://127.0.0.1:9/1/upload"
        );
    }
}
