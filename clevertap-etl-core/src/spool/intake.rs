//! Durable intake: a webhook is decoded, planned and validated, then stored in the spool before
//! it is answered; the worker delivers it afterwards.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{body_hash, redact_secrets, Accepted, NewDelivery, Spool, Worker};
use crate::pipeline::{Pipeline, PipelineError};
use crate::report::DeliveryReport;
use crate::transform::UnixSeconds;

/// Intake limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakeSettings {
    /// A body identical to one received within this window is a duplicate.
    pub dedupe_window: Duration,
    /// Past this many records waiting, new webhooks are refused (503) instead of stored.
    pub max_pending_records: u64,
}

impl Default for IntakeSettings {
    fn default() -> Self {
        IntakeSettings {
            dedupe_window: Duration::from_secs(24 * 3600),
            max_pending_records: 1_000_000,
        }
    }
}

/// How long a count of pending records is trusted before it is asked for again.
const PENDING_CACHE: Duration = Duration::from_millis(250);

/// The spool, its limits and its worker, as one handle for the service.
#[derive(Clone)]
pub struct Intake {
    spool: Arc<dyn Spool>,
    worker: Worker,
    settings: IntakeSettings,
    pending: Arc<Mutex<Option<(Instant, u64)>>>,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Intake {
    /// An intake over a spool whose records `worker` delivers.
    pub fn new(spool: Arc<dyn Spool>, worker: Worker, settings: IntakeSettings) -> Self {
        Intake {
            spool,
            worker,
            settings,
            pending: Arc::new(Mutex::new(None)),
        }
    }

    /// The spool.
    pub fn spool(&self) -> &Arc<dyn Spool> {
        &self.spool
    }

    /// The worker.
    pub fn worker(&self) -> &Worker {
        &self.worker
    }

    /// Records waiting, from a cache refreshed at most every 250 ms.
    pub async fn pending_records(&self) -> Result<u64, PipelineError> {
        let cached = *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, n)) = cached {
            if at.elapsed() < PENDING_CACHE {
                return Ok(n);
            }
        }
        let n = self.spool.pending_records().await.map_err(spool_error)?;
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((Instant::now(), n));
        Ok(n)
    }

    /// Plans a body and stores it durably (or finds it is a duplicate), then wakes the worker.
    /// The answer does not wait for CleverTap.
    pub async fn accept(
        &self,
        pipeline: &Pipeline,
        body: &[u8],
        delivery_id: String,
        now: UnixSeconds,
    ) -> Result<Accepted, PipelineError> {
        let plan = pipeline.plan(body, now)?;
        let pending = self.pending_records().await?;
        if pending >= self.settings.max_pending_records {
            return Err(PipelineError::Backpressure {
                pending,
                limit: self.settings.max_pending_records,
            });
        }
        let window = i64::try_from(self.settings.dedupe_window.as_secs()).unwrap_or(i64::MAX);
        let accepted = self
            .spool
            .accept(NewDelivery {
                id: delivery_id,
                received_at: now,
                body_hash: body_hash(body),
                payload: redact_secrets(body),
                plan: &plan,
                dedupe_since: UnixSeconds(now.0.saturating_sub(window)),
            })
            .await
            .map_err(spool_error)?;
        if let Accepted::Stored(report) = &accepted {
            if let Ok(mut cache) = self.pending.lock() {
                if let Some((_, n)) = cache.as_mut() {
                    *n += report.counts.pending;
                }
            }
            self.worker.wake();
        }
        Ok(accepted)
    }

    /// Re-queues a delivery's dead records; with `remap`, first re-plans its stored payload with
    /// the pipeline's current mapping (records already processed are never sent again).
    pub async fn retry(
        &self,
        pipeline: &Pipeline,
        delivery_id: &str,
        remap: bool,
        now: UnixSeconds,
    ) -> Result<Option<DeliveryReport>, PipelineError> {
        let report = if remap {
            let Some(payload) = self.spool.payload(delivery_id).await.map_err(spool_error)? else {
                return Ok(None);
            };
            let plan = pipeline.plan(&payload, now)?;
            self.spool.requeue(delivery_id, Some(&plan)).await
        } else {
            self.spool.requeue(delivery_id, None).await
        }
        .map_err(spool_error)?;
        self.worker.wake();
        Ok(report)
    }
}

fn spool_error(e: super::SpoolError) -> PipelineError {
    PipelineError::Spool(e.to_string())
}
