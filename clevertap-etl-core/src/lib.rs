//! # clevertap-etl-core
//!
//! The library behind clevertap-etl: a CleverTap webhook campaign POSTs its qualifying profiles
//! to us; this crate decodes that payload ([`WebhookPayload`]), maps it to CleverTap profile and
//! event records with a pure function ([`transform()`]), and loads them back through CleverTap's
//! Upload API ([`Deliverer`] over an [`Uploader`], with [`HttpUploader`] as the real one).
//!
//! What it does not do: serve HTTP (that is `clevertap-etl-axum`), parse command lines (that is
//! `clevertap-etl-cli`), or read files and the environment (callers pass text and lookups in).
//! The transform reads no clock: the time is an argument.
//!
//! ```
//! use clevertap_etl_core::{transform, Routing, TransformSpec, UnixSeconds, WebhookPayload};
//!
//! let body = br#"{"targetId": 1589621729,
//!   "key_values": {"target_account": "W44-Z4K-K65Z", "profile_upload": "yes", "event_upload": "no"},
//!   "profiles": [{"objectId": "__189f", "profileData": {"city": "Mumbai"}}]}"#;
//! let payload = WebhookPayload::from_slice(body)?;
//! let plan = transform(&payload, &TransformSpec::default(), &Routing::default(), UnixSeconds(0))?;
//! let record = &plan.accounts[0].records[0].record;
//! assert_eq!(
//!     record.to_value(),
//!     serde_json::json!({"type": "profile", "objectId": "__189f", "profileData": {"city": "Mumbai"}})
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod account;
pub mod config;
pub mod deliver;
mod env_override;
pub mod explain;
pub mod payload;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod retry;
pub mod sandbox;
pub mod spec;
pub mod spool;
pub mod timestamp;
pub mod transform;
pub mod upload;
pub mod validate;

pub use crate::account::{AccountId, Credentials, Passcode, Region, Secret};
pub use crate::config::{Config, ConfigError};
pub use crate::deliver::{ConcurrencyStats, Deliverer, DeliverySettings, FailingAccount, Job};
pub use crate::explain::{explain, Explanation};
pub use crate::payload::{DecodeError, WebhookPayload, WebhookProfile};
pub use crate::pipeline::{Explained, Pipeline, PipelineError, Preview};
pub use crate::record::{UploadBody, UploadRecord, UploadResponse};
pub use crate::report::{Counts, DeliveryReport, DeliveryState, Failure, RecordOutcome, Stage};
pub use crate::retry::{classify, Backoff, RetryAction};
pub use crate::spec::{EventSpec, ProfileSpec, Routing, TransformSpec, ValidationSettings};
pub use crate::transform::{
    transform, transform_owned, Plan, Skipped, Target, TransformError, UnixSeconds,
};
pub use crate::upload::{
    Endpoint, HttpUploader, HttpUploaderConfig, UploadError, UploadReply, Uploader,
};
pub use crate::validate::{validate, Fix, Rule, Violation};
