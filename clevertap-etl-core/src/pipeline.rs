//! The whole loop for one webhook body: decode → transform → deliver → report.
//!
//! Adapters (the axum service, the CLI) call this and only translate its errors; the rules live
//! here.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::account::{AccountId, Credentials};
use crate::config::Config;
use crate::deliver::{bodies, Deliverer, DeliverySettings};
use crate::explain::{explain, Explanation};
use crate::payload::{DecodeError, WebhookPayload};
use crate::record::UploadBody;
use crate::report::DeliveryReport;
use crate::spec::{Routing, TransformSpec};
use crate::transform::{transform, transform_owned, Plan, TransformError, UnixSeconds};
use crate::upload::Uploader;

/// Why a webhook body was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// The body is not a webhook payload.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The payload cannot be planned (e.g. it names an account that is not configured).
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// Too many records are waiting in the spool: try again later.
    #[error("{pending} records are waiting to be delivered (limit {limit}): try again later")]
    Backpressure {
        /// Records waiting.
        pending: u64,
        /// The limit.
        limit: u64,
    },
    /// The spool could not store or read the delivery.
    #[error("{0}")]
    Spool(String),
}

/// The configured loop: a transform spec, routing, and a delivery engine.
///
/// Cheap to clone (it shares its parts), so a service keeps one and hands clones to its
/// handlers. [`Pipeline::run`] is the sync mode's whole loop; [`Pipeline::explain`] plans and
/// uploads nothing.
///
/// ```
/// use std::sync::Arc;
/// use clevertap_etl_core::sandbox::SandboxUploader;
/// use clevertap_etl_core::{Config, DeliveryState, Pipeline, UnixSeconds};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let config = Config::from_toml_str(r#"
///     [[accounts]]
///     id = "W44-Z4K-K65Z"
///     passcode_env = "CT_PASSCODE"
/// "#)?;
/// // Secrets are resolved with lookups you pass in (here, a fixed one).
/// let credentials = config.credentials(
///     |_| Some("the-passcode".to_owned()),
///     |path| std::fs::read_to_string(path),
/// )?;
/// let pipeline = Pipeline::from_config(&config, Arc::new(SandboxUploader::default()), credentials);
///
/// let body = br#"{"targetId": 7, "key_values": {"target_account": "W44-Z4K-K65Z"},
///     "profiles": [{"objectId": "__1", "profileData": {"city": "Pune"}}]}"#;
/// let preview = pipeline.preview(body, UnixSeconds(0))?; // what would be sent
/// assert_eq!(preview.uploads[0].body.d.len(), 2);
/// let report = pipeline.run(body, "delivery-1".into(), UnixSeconds(0)).await?;
/// assert_eq!(report.state, DeliveryState::Delivered);
/// assert!(report.counts.is_consistent());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Pipeline {
    spec: Arc<TransformSpec>,
    routing: Arc<Routing>,
    deliverer: Arc<Deliverer>,
}

impl Pipeline {
    /// Assembles a pipeline.
    pub fn new(spec: TransformSpec, routing: Routing, deliverer: Arc<Deliverer>) -> Self {
        Pipeline {
            spec: Arc::new(spec),
            routing: Arc::new(routing),
            deliverer,
        }
    }

    /// Assembles a pipeline from a configuration, an uploader and the accounts' resolved
    /// credentials (see [`Config::credentials`]).
    pub fn from_config(
        config: &Config,
        uploader: Arc<dyn Uploader>,
        credentials: Vec<Credentials>,
    ) -> Self {
        let deliverer = Deliverer::new(uploader, credentials, config.delivery_settings());
        Pipeline::new(
            config.transform.clone(),
            config.routing(),
            Arc::new(deliverer),
        )
    }

    /// The transform spec in use.
    pub fn spec(&self) -> &TransformSpec {
        &self.spec
    }

    /// The routing in use.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The delivery engine in use.
    pub fn deliverer(&self) -> &Arc<Deliverer> {
        &self.deliverer
    }

    /// Decodes and plans a body without sending anything.
    pub fn plan(&self, body: &[u8], now: UnixSeconds) -> Result<Plan, PipelineError> {
        let payload = WebhookPayload::from_slice(body)?;
        // The payload is not needed afterwards: moving its maps into the records saves a copy.
        Ok(transform_owned(payload, &self.spec, &self.routing, now)?)
    }

    /// Decodes and plans a body, and splits it into the request bodies it would send.
    pub fn preview(&self, body: &[u8], now: UnixSeconds) -> Result<Preview, PipelineError> {
        Ok(Preview::of(
            &self.plan(body, now)?,
            self.deliverer.settings(),
        ))
    }

    /// Decodes and plans a body, and explains it profile by profile, with the request bodies
    /// it would send. Uploads nothing.
    pub fn explain(&self, body: &[u8], now: UnixSeconds) -> Result<Explained, PipelineError> {
        let payload = WebhookPayload::from_slice(body)?;
        let plan = transform(&payload, &self.spec, &self.routing, now)?;
        Ok(Explained {
            explanation: explain(&payload, &plan),
            preview: Preview::of(&plan, self.deliverer.settings()),
        })
    }

    /// Plans a body and delivers it, answering once CleverTap has replied to every request.
    /// CleverTap's test call (`is_test`) is planned but nothing is uploaded.
    pub async fn run(
        &self,
        body: &[u8],
        delivery_id: String,
        now: UnixSeconds,
    ) -> Result<DeliveryReport, PipelineError> {
        let plan = self.plan(body, now)?;
        Ok(self.deliver(delivery_id, &plan).await)
    }

    /// Delivers an already planned payload.
    pub async fn deliver(&self, delivery_id: String, plan: &Plan) -> DeliveryReport {
        let outcomes = if plan.is_test {
            Vec::new()
        } else {
            self.deliverer.deliver(plan).await
        };
        let mut report = DeliveryReport::build(delivery_id, plan, &outcomes);
        if plan.is_test {
            // Nothing of a test call is ever sent: its records count as skipped, not pending.
            report.counts.skipped += report.counts.pending;
            report.counts.pending = 0;
        }
        report
    }
}

/// A payload explained: the request bodies it would send (`uploads`, `skipped`, as in
/// [`Preview`]) and, per input profile, its records with their verdicts (`explanation`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explained {
    /// The request bodies and skipped records.
    #[serde(flatten)]
    pub preview: Preview,
    /// Profile by profile.
    pub explanation: Explanation,
}

impl std::fmt::Display for Explained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.explanation)?;
        writeln!(f, "\nrequest bodies: {}", self.preview.uploads.len())?;
        for (i, upload) in self.preview.uploads.iter().enumerate() {
            let profiles = upload.body.d.iter().filter(|r| r.is_profile()).count();
            let bytes = serde_json::to_vec(&upload.body).map_or(0, |b| b.len());
            writeln!(
                f,
                "  #{} → account {}: {} records ({} profiles, {} events), {} bytes",
                i + 1,
                upload.account_id,
                upload.body.d.len(),
                profiles,
                upload.body.d.len() - profiles,
                bytes
            )?;
        }
        Ok(())
    }
}

/// What a plan would send, request by request: the `transform` command's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Preview {
    /// One entry per request body.
    pub uploads: Vec<PreviewUpload>,
    /// Records that will not be sent, with CleverTap's code and the reason.
    pub skipped: Vec<PreviewSkipped>,
}

/// One request body of a [`Preview`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewUpload {
    /// The account it goes to.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub account_id: AccountId,
    /// The body, as sent.
    pub body: UploadBody,
}

/// One skipped record of a [`Preview`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PreviewSkipped {
    /// The record, or what is known of it.
    pub record: Value,
    /// CleverTap's code.
    pub code: u16,
    /// Why.
    pub reason: String,
}

impl Preview {
    /// Splits a plan into the request bodies the engine would send with `settings`.
    pub fn of(plan: &Plan, settings: &DeliverySettings) -> Self {
        let mut uploads = Vec::new();
        for group in &plan.accounts {
            let records: Vec<_> = group.records.iter().map(|r| r.record.clone()).collect();
            for body in bodies(&records, settings) {
                uploads.push(PreviewUpload {
                    account_id: group.target.account_id().clone(),
                    body,
                });
            }
        }
        let skipped = plan
            .skipped
            .iter()
            .map(|s| PreviewSkipped {
                record: s.record.clone(),
                code: s.code,
                reason: s.reason.clone(),
            })
            .collect();
        Preview { uploads, skipped }
    }
}
