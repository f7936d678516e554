//! The delivery report: what became of every record of one webhook, in the service's and the
//! CLI's shared format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::transform::Plan;

/// The overall state of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Every planned record was processed by CleverTap.
    Delivered,
    /// Some records were processed, others were rejected, skipped or are dead.
    Partial,
    /// Records were planned and none was processed.
    Failed,
    /// Records are still waiting to be delivered.
    Pending,
    /// CleverTap's test call: recorded, nothing uploaded.
    Test,
}

/// Record counts. Invariant: `planned = processed + rejected + skipped + pending + dead`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counts {
    /// Records the transform produced, the skipped ones included.
    pub planned: u64,
    /// Records CleverTap processed.
    pub processed: u64,
    /// Records CleverTap rejected (per-record code) or refused outright (4xx).
    pub rejected: u64,
    /// Records the transform or validation did not send.
    pub skipped: u64,
    /// Records not yet delivered.
    pub pending: u64,
    /// Records whose retries ran out.
    pub dead: u64,
}

impl Counts {
    /// Whether the invariant holds.
    pub fn is_consistent(&self) -> bool {
        self.planned == self.processed + self.rejected + self.skipped + self.pending + self.dead
    }

    /// The state these counts describe.
    pub fn state(&self) -> DeliveryState {
        if self.pending > 0 {
            DeliveryState::Pending
        } else if self.processed == self.planned {
            DeliveryState::Delivered
        } else if self.processed == 0 {
            DeliveryState::Failed
        } else {
            DeliveryState::Partial
        }
    }
}

/// The stage at which a record failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The transform or offline validation would not send it.
    Validate,
    /// CleverTap refused it, or it could not be delivered.
    Upload,
}

/// One record that was not processed, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Failure {
    /// Where it failed.
    pub stage: Stage,
    /// The record (as planned), or what is known of it.
    pub record: Value,
    /// CleverTap's code (per-record code, or the HTTP status), when there is one.
    pub code: Option<i64>,
    /// Why, in words: CleverTap's message where it gave one.
    pub reason: String,
    /// Whether sending it again could succeed.
    pub retryable: bool,
}

/// What became of one webhook's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeliveryReport {
    /// The delivery's id.
    pub delivery_id: String,
    /// The campaign id the payload carried.
    pub target_id: Option<Value>,
    /// The overall state.
    pub state: DeliveryState,
    /// Record counts.
    pub counts: Counts,
    /// Every record that was not processed, with why.
    pub failures: Vec<Failure>,
}

/// What became of one uploaded record.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordOutcome {
    /// CleverTap processed it.
    Processed,
    /// CleverTap refused it; sending it again would not help.
    Rejected {
        /// CleverTap's code.
        code: Option<i64>,
        /// CleverTap's message.
        reason: String,
    },
    /// Not delivered yet.
    Pending,
    /// Retries ran out.
    Dead {
        /// The code of the last attempt, when it had one.
        code: Option<i64>,
        /// The reason of the last attempt.
        reason: String,
    },
}

impl DeliveryReport {
    /// Builds the report of a plan from the outcome of each planned record, in plan order
    /// (account by account, record by record).
    pub fn build(delivery_id: String, plan: &Plan, outcomes: &[RecordOutcome]) -> Self {
        let mut counts = Counts {
            planned: (plan.record_count() + plan.skipped.len()) as u64,
            skipped: plan.skipped.len() as u64,
            ..Counts::default()
        };
        let mut failures: Vec<Failure> = plan
            .skipped
            .iter()
            .map(|s| Failure {
                stage: Stage::Validate,
                record: s.record.clone(),
                code: Some(i64::from(s.code)),
                reason: s.reason.clone(),
                retryable: false,
            })
            .collect();
        let records = plan.accounts.iter().flat_map(|a| a.records.iter());
        for (planned, outcome) in records.zip(outcomes) {
            match outcome {
                RecordOutcome::Processed => counts.processed += 1,
                RecordOutcome::Pending => counts.pending += 1,
                RecordOutcome::Rejected { code, reason } => {
                    counts.rejected += 1;
                    failures.push(Failure {
                        stage: Stage::Upload,
                        record: planned.record.to_value(),
                        code: *code,
                        reason: reason.clone(),
                        retryable: false,
                    });
                }
                RecordOutcome::Dead { code, reason } => {
                    counts.dead += 1;
                    failures.push(Failure {
                        stage: Stage::Upload,
                        record: planned.record.to_value(),
                        code: *code,
                        reason: reason.clone(),
                        retryable: true,
                    });
                }
            }
        }
        // Records without an outcome were never attempted: they are still pending.
        counts.pending += (plan.record_count().saturating_sub(outcomes.len())) as u64;
        let state = if plan.is_test {
            DeliveryState::Test
        } else {
            counts.state()
        };
        DeliveryReport {
            delivery_id,
            target_id: plan.target_id.clone(),
            state,
            counts,
            failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_counts() {
        let c = |processed, rejected, pending| Counts {
            planned: processed + rejected + pending,
            processed,
            rejected,
            pending,
            ..Counts::default()
        };
        assert_eq!(c(2, 0, 0).state(), DeliveryState::Delivered);
        assert_eq!(c(1, 1, 0).state(), DeliveryState::Partial);
        assert_eq!(c(0, 2, 0).state(), DeliveryState::Failed);
        assert_eq!(c(1, 0, 1).state(), DeliveryState::Pending);
        assert_eq!(c(0, 0, 0).state(), DeliveryState::Delivered);
        assert!(c(3, 2, 1).is_consistent());
    }
}
