//! Prometheus metrics, served at `GET /metrics`, and an uploader decorator that feeds them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use clevertap_etl_core::{
    Counts, Credentials, Deliverer, RecordOutcome, UploadBody, UploadError, UploadReply, Uploader,
};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The service's metrics. Cheap to clone; clones share the same series.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    records: Family<Labels, Counter>,
    uploads: Family<Labels, Counter>,
    in_flight: Family<Labels, Gauge>,
    concurrency_limit: Family<Labels, Gauge>,
    retries: Counter,
    spool_depth: Gauge,
    webhook_seconds: Histogram,
    upload_seconds: Histogram,
    retries_seen: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics in its own registry.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("clevertap_etl");
        let webhooks = Family::<Labels, Counter>::default();
        let records = Family::<Labels, Counter>::default();
        let uploads = Family::<Labels, Counter>::default();
        let in_flight = Family::<Labels, Gauge>::default();
        let concurrency_limit = Family::<Labels, Gauge>::default();
        let retries = Counter::default();
        let spool_depth = Gauge::default();
        let webhook_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        let upload_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        registry.register("webhooks", "Webhook calls by outcome", webhooks.clone());
        registry.register(
            "records",
            "Records by outcome (processed, rejected, skipped, pending, dead)",
            records.clone(),
        );
        registry.register(
            "upload_requests",
            "Upload API requests by HTTP status (or error)",
            uploads.clone(),
        );
        registry.register(
            "upload_retries",
            "Upload requests that were retries",
            retries.clone(),
        );
        registry.register(
            "upload_in_flight",
            "Upload requests in flight per account",
            in_flight.clone(),
        );
        registry.register(
            "upload_concurrency_limit",
            "Current concurrency limit per account",
            concurrency_limit.clone(),
        );
        registry.register(
            "spool_pending_records",
            "Records waiting in the spool",
            spool_depth.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Time to answer a webhook",
            webhook_seconds.clone(),
        );
        registry.register(
            "upload_duration_seconds",
            "Time of one Upload API request",
            upload_seconds.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                webhooks,
                records,
                uploads,
                in_flight,
                concurrency_limit,
                retries,
                spool_depth,
                webhook_seconds,
                upload_seconds,
                retries_seen: AtomicU64::new(0),
            }),
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.inner.registry);
        text
    }

    /// Counts one webhook call and its answer time.
    pub fn webhook(&self, outcome: &str, started: Instant) {
        self.inner
            .webhooks
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
        self.inner
            .webhook_seconds
            .observe(started.elapsed().as_secs_f64());
    }

    /// Counts a report's records by outcome.
    pub fn records(&self, counts: &Counts) {
        for (outcome, n) in [
            ("processed", counts.processed),
            ("rejected", counts.rejected),
            ("skipped", counts.skipped),
            ("pending", counts.pending),
            ("dead", counts.dead),
        ] {
            if n > 0 {
                self.inner
                    .records
                    .get_or_create(&vec![("outcome", outcome.to_owned())])
                    .inc_by(n);
            }
        }
    }

    /// Counts records by outcome as the background worker settles them (async mode).
    pub fn outcomes(&self, outcomes: &[RecordOutcome]) {
        let mut counts = Counts::default();
        for o in outcomes {
            match o {
                RecordOutcome::Processed => counts.processed += 1,
                RecordOutcome::Rejected { .. } => counts.rejected += 1,
                RecordOutcome::Dead { .. } => counts.dead += 1,
                RecordOutcome::Pending => {}
            }
        }
        self.records(&counts);
    }

    /// Brings the gauges that are read, not counted, up to date: the engine's retries and
    /// per-account concurrency limits, and the spool's depth. Called before each scrape.
    pub fn refresh(&self, deliverer: &Deliverer, spool_pending: Option<u64>) {
        let total = deliverer.retries();
        let seen = self.inner.retries_seen.swap(total, Ordering::Relaxed);
        self.inner.retries.inc_by(total.saturating_sub(seen));
        for account in deliverer.accounts() {
            if let Some(stats) = deliverer.concurrency(&account) {
                let labels = vec![("account", account.to_string())];
                self.inner
                    .concurrency_limit
                    .get_or_create(&labels)
                    .set(i64::try_from(stats.limit).unwrap_or(i64::MAX));
            }
        }
        if let Some(n) = spool_pending {
            self.inner
                .spool_depth
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Wraps an uploader so every request it sends is counted and timed.
    pub fn instrument(&self, uploader: Arc<dyn Uploader>) -> Arc<dyn Uploader> {
        Arc::new(ObservedUploader {
            inner: uploader,
            metrics: self.clone(),
        })
    }

    fn observe_upload(&self, result: &Result<UploadReply, UploadError>, started: Instant) {
        self.inner
            .upload_seconds
            .observe(started.elapsed().as_secs_f64());
        let status = match result {
            Ok(reply) => reply.status.to_string(),
            Err(UploadError::Timeout(_)) => "timeout".to_owned(),
            Err(_) => "error".to_owned(),
        };
        self.inner
            .uploads
            .get_or_create(&vec![("status", status)])
            .inc();
    }
}

/// An uploader that feeds [`Metrics`].
struct ObservedUploader {
    inner: Arc<dyn Uploader>,
    metrics: Metrics,
}

#[async_trait]
impl Uploader for ObservedUploader {
    async fn upload(
        &self,
        account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError> {
        let labels = vec![("account", account.account_id.to_string())];
        let gauge = self.metrics.inner.in_flight.get_or_create_owned(&labels);
        gauge.inc();
        let started = Instant::now();
        let result = self.inner.upload(account, body).await;
        gauge.dec();
        self.metrics.observe_upload(&result, started);
        result
    }
}
