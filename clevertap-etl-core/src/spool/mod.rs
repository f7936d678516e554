//! The durable spool: webhooks are written here before they are answered, and delivered from
//! here in the background, so CleverTap gets its answer in milliseconds and nothing accepted is
//! lost to a crash, a restart or an outage.
//!
//! [`Spool`] is the store's interface (SQLite today, [`SqliteSpool`]; a shared server database
//! can implement it later without touching the engine). [`Worker`] drains it through the
//! delivery engine.
//!
//! Record states: `pending` → `sending` (claimed by a worker) → `processed` | `rejected` |
//! `dead`. At start-up every `sending` record goes back to `pending`: a request that was in
//! flight during a crash may be sent once more (at-least-once for that one request); a record
//! whose outcome was stored is never sent again.

mod intake;
mod redact;
mod sqlite;
mod worker;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use self::intake::{Intake, IntakeSettings};
pub use self::redact::redact_secrets;
pub use self::sqlite::SqliteSpool;
pub use self::worker::{OutcomeObserver, Worker, WorkerSettings};
use crate::account::AccountId;
use crate::record::UploadRecord;
use crate::report::{DeliveryReport, DeliveryState, RecordOutcome};
use crate::transform::{Plan, UnixSeconds};

/// A webhook to keep: its id, its (redacted) body and its plan.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    /// The delivery's id.
    pub id: String,
    /// When it arrived.
    pub received_at: UnixSeconds,
    /// A hash of the exact body received, for dedupe.
    pub body_hash: String,
    /// The body with secrets removed (see [`redact_secrets`]), kept for `retry --remap`.
    pub payload: Vec<u8>,
    /// The plan of the body.
    pub plan: &'a Plan,
    /// A body with the same hash received after this time is a duplicate.
    pub dedupe_since: UnixSeconds,
}

/// What [`Spool::accept`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Accepted {
    /// Stored; its records are pending.
    Stored(DeliveryReport),
    /// The same body was received within the dedupe window: nothing new was stored, and this is
    /// the report of the original delivery.
    Duplicate(DeliveryReport),
}

impl Accepted {
    /// The report, either way.
    pub fn report(&self) -> &DeliveryReport {
        match self {
            Accepted::Stored(r) | Accepted::Duplicate(r) => r,
        }
    }
}

/// A record claimed for sending.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    /// The record's row id.
    pub id: i64,
    /// Its delivery.
    pub delivery_id: String,
    /// The account it goes to.
    pub account_id: AccountId,
    /// The record.
    pub record: UploadRecord,
}

/// One row of a deliveries listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliverySummary {
    /// The delivery's id.
    pub delivery_id: String,
    /// When it arrived (epoch seconds).
    pub received_at: i64,
    /// Its state.
    pub state: DeliveryState,
    /// Its counts.
    pub counts: crate::report::Counts,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StateFilter {
    /// Deliveries with records still waiting.
    Pending,
    /// Deliveries where some records were processed and others not.
    Partial,
    /// Deliveries where no record was processed.
    Failed,
    /// Deliveries holding dead records (whatever their overall state): what `retry` is for.
    Dead,
    /// Deliveries fully processed.
    Delivered,
    /// CleverTap's test calls.
    Test,
}

impl StateFilter {
    /// Whether a delivery in `state` with `counts` passes the filter.
    pub fn matches(self, state: DeliveryState, counts: &crate::report::Counts) -> bool {
        match self {
            StateFilter::Pending => state == DeliveryState::Pending,
            StateFilter::Partial => state == DeliveryState::Partial,
            StateFilter::Failed => state == DeliveryState::Failed,
            StateFilter::Delivered => state == DeliveryState::Delivered,
            StateFilter::Test => state == DeliveryState::Test,
            StateFilter::Dead => counts.dead > 0,
        }
    }
}

/// A spool fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpoolError {
    /// The database failed.
    #[error("spool database error: {0}")]
    Database(String),
    /// Stored data could not be read back.
    #[error("corrupt spool data: {0}")]
    Corrupt(String),
    /// The spool's task failed.
    #[error("spool task failed: {0}")]
    Task(String),
}

/// The durable store of deliveries and their records.
#[async_trait]
pub trait Spool: Send + Sync {
    /// Stores a delivery and its planned records as `pending`, durably, unless the same body was
    /// received after `dedupe_since`.
    async fn accept(&self, delivery: NewDelivery<'_>) -> Result<Accepted, SpoolError>;

    /// Puts every `sending` record back to `pending` (call once at start-up, before workers run).
    async fn recover(&self) -> Result<u64, SpoolError>;

    /// Claims up to `limit` pending records (oldest first), marking them `sending`.
    async fn claim(&self, limit: usize) -> Result<Vec<Claimed>, SpoolError>;

    /// Stores the outcome of each record of one request, and logs the attempt. `Pending`
    /// outcomes put records back in the queue.
    async fn complete(
        &self,
        at: UnixSeconds,
        outcomes: &[(i64, RecordOutcome)],
    ) -> Result<(), SpoolError>;

    /// The report of one delivery.
    async fn report(&self, delivery_id: &str) -> Result<Option<DeliveryReport>, SpoolError>;

    /// Deliveries, newest first, optionally only those in `state`.
    async fn list(
        &self,
        state: Option<StateFilter>,
        limit: usize,
    ) -> Result<Vec<DeliverySummary>, SpoolError>;

    /// The stored (redacted) payload of a delivery.
    async fn payload(&self, delivery_id: &str) -> Result<Option<Vec<u8>>, SpoolError>;

    /// Re-queues a delivery's dead records. With `replan`, its records that were not processed
    /// are replaced by the new plan's records (minus any identical to a processed one, which is
    /// never sent again) and its skipped list by the new plan's.
    async fn requeue(
        &self,
        delivery_id: &str,
        replan: Option<&Plan>,
    ) -> Result<Option<DeliveryReport>, SpoolError>;

    /// Checks the spool can be written (for a readiness probe).
    async fn check_writable(&self) -> Result<(), SpoolError>;

    /// Records waiting to be sent (`pending` or `sending`).
    async fn pending_records(&self) -> Result<u64, SpoolError>;

    /// Deletes finished deliveries (nothing pending) received before `before`, with their
    /// records and payloads. Returns how many were deleted.
    async fn prune(&self, before: UnixSeconds) -> Result<u64, SpoolError>;
}

/// The hex SHA-256 of a body, the dedupe key.
pub fn body_hash(body: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(body);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
