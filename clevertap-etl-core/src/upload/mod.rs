//! The load step's I/O boundary: the [`Uploader`] trait and its reqwest implementation.
//!
//! An uploader sends one request body to one account and says what came back. It makes no
//! retry decision: that belongs to the delivery engine.

mod error;
mod http;

use std::time::Duration;

use async_trait::async_trait;

pub use self::error::UploadError;
pub use self::http::{ensure_crypto_provider, Endpoint, HttpUploader, HttpUploaderConfig};
use crate::account::Credentials;
use crate::record::{UploadBody, UploadResponse};

/// Sends Upload API requests. Object-safe, so services hold an `Arc<dyn Uploader>` and tests,
/// examples and the sandbox plug in their own.
#[async_trait]
pub trait Uploader: Send + Sync {
    /// Sends one body (at most 1000 records) to one account.
    ///
    /// `Ok` means CleverTap answered with an HTTP status, whatever it was; `Err` means no answer
    /// (timeout, connection refused, ...).
    async fn upload(
        &self,
        account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError>;
}

/// What CleverTap answered to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadReply {
    /// The HTTP status code.
    pub status: u16,
    /// The parsed response body, when it was the Upload API's JSON.
    pub body: Option<UploadResponse>,
    /// The raw body text when it could not be parsed (truncated to 2 KiB).
    pub raw: Option<String>,
    /// The `Retry-After` header, when present.
    pub retry_after: Option<Duration>,
}

impl UploadReply {
    /// A 200 reply with the given body.
    pub fn ok(body: UploadResponse) -> Self {
        UploadReply {
            status: 200,
            body: Some(body),
            raw: None,
            retry_after: None,
        }
    }

    /// CleverTap's own words about the request, for reports: its `error` field, else the raw
    /// body, else the HTTP status.
    pub fn message(&self) -> String {
        self.body
            .as_ref()
            .and_then(|b| b.error.clone())
            .or_else(|| self.raw.clone().filter(|r| !r.trim().is_empty()))
            .unwrap_or_else(|| format!("HTTP {}", self.status))
    }
}
