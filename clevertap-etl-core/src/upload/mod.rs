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
///
/// An implementation answers as CleverTap would: an HTTP status and, with 200, an
/// [`UploadResponse`] whose `unprocessed[]` lists the records it refused ("Skipped record
/// number : N", counting from 1). The delivery engine reads that answer per record, retries
/// what may be retried (429, 5xx, transport errors, per-record 555) and never sends a processed
/// record again. A fuller example, writing to a file: `examples/custom_uploader.rs`.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use async_trait::async_trait;
/// use clevertap_etl_core::record::ResponseStatus;
/// use clevertap_etl_core::{
///     transform, Credentials, Deliverer, DeliverySettings, Passcode, RecordOutcome, Routing,
///     TransformSpec, UnixSeconds, UploadBody, UploadError, UploadRecord, UploadReply,
///     UploadResponse, Uploader, WebhookPayload,
/// };
///
/// /// Keeps every record in memory.
/// #[derive(Default)]
/// struct Queue(Mutex<Vec<UploadRecord>>);
///
/// #[async_trait]
/// impl Uploader for Queue {
///     async fn upload(&self, _: &Credentials, body: &UploadBody) -> Result<UploadReply, UploadError> {
///         let mut queue = self.0.lock().map_err(|_| UploadError::Other("poisoned".into()))?;
///         queue.extend(body.d.iter().cloned());
///         Ok(UploadReply::ok(UploadResponse {
///             status: ResponseStatus::Success,
///             processed: body.d.len() as u64,
///             unprocessed: vec![],
///             error: None,
///             code: None,
///         }))
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let queue = Arc::new(Queue::default());
/// let account = Credentials { account_id: "W44-Z4K-K65Z".try_into()?, passcode: Passcode::new("-") };
/// let deliverer = Deliverer::new(queue.clone(), [account], DeliverySettings::default());
/// let payload = WebhookPayload::from_slice(br#"{"key_values": {"target_account": "W44-Z4K-K65Z"},
///     "profiles": [{"objectId": "__1", "profileData": {"a": 1}}]}"#)?;
/// let routing = Routing::default();
/// let plan = transform(&payload, &TransformSpec::default(), &routing, UnixSeconds(0))?;
/// let outcomes = deliverer.deliver(&plan).await;
/// assert_eq!(outcomes, [RecordOutcome::Processed, RecordOutcome::Processed]);
/// assert_eq!(queue.0.lock().unwrap().len(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
