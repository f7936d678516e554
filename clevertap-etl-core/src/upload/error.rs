//! The uploader's error type: a request that got no HTTP answer.

/// Why an upload request got no answer from CleverTap. A passcode is never part of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The request took longer than the configured timeout.
    #[error("upload request timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// The connection could not be made or broke off.
    #[error("could not reach CleverTap at {url}: {message}")]
    Connect {
        /// The URL (never with credentials).
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The request body could not be encoded.
    #[error("could not encode the upload body: {0}")]
    Encode(String),
    /// Any other transport fault.
    #[error("upload failed: {0}")]
    Other(String),
}

impl UploadError {
    /// Whether sending the same request again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            UploadError::Timeout(_) | UploadError::Connect { .. } | UploadError::Other(_)
        )
    }
}
