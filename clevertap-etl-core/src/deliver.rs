//! The delivery engine: sends a plan's records through an [`Uploader`] and says what became of
//! each one.

use std::collections::HashMap;
use std::sync::Arc;

use crate::account::{AccountId, Credentials};
use crate::record::{ResponseStatus, UploadBody, UploadRecord};
use crate::report::RecordOutcome;
use crate::transform::{Plan, Target};
use crate::upload::{UploadReply, Uploader};

/// The most records CleverTap takes in one request.
pub const MAX_BATCH_SIZE: usize = 1000;

/// How the engine delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// Records per request, at most [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            batch_size: MAX_BATCH_SIZE,
        }
    }
}

/// Sends plans to CleverTap.
pub struct Deliverer {
    uploader: Arc<dyn Uploader>,
    accounts: HashMap<AccountId, Credentials>,
    settings: DeliverySettings,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("accounts", &self.accounts.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// An engine over an uploader, with the configured accounts' credentials.
    pub fn new(
        uploader: Arc<dyn Uploader>,
        accounts: impl IntoIterator<Item = Credentials>,
        settings: DeliverySettings,
    ) -> Self {
        Deliverer {
            uploader,
            accounts: accounts
                .into_iter()
                .map(|c| (c.account_id.clone(), c))
                .collect(),
            settings,
        }
    }

    /// Delivers every record of a plan. Returns one outcome per planned record, in plan order.
    pub async fn deliver(&self, plan: &Plan) -> Vec<RecordOutcome> {
        let mut outcomes = Vec::with_capacity(plan.record_count());
        for group in &plan.accounts {
            let credentials = match &group.target {
                Target::FromPayload(c) => Some(c.clone()),
                Target::Configured(id) => self.accounts.get(id).cloned(),
            };
            let records: Vec<UploadRecord> =
                group.records.iter().map(|r| r.record.clone()).collect();
            let Some(credentials) = credentials else {
                let reason = format!(
                    "no passcode configured for account {}",
                    group.target.account_id()
                );
                outcomes.extend(records.iter().map(|_| RecordOutcome::Rejected {
                    code: None,
                    reason: reason.clone(),
                }));
                continue;
            };
            for chunk in records.chunks(self.settings.batch_size.clamp(1, MAX_BATCH_SIZE)) {
                let body = UploadBody { d: chunk.to_vec() };
                let reply = self.uploader.upload(&credentials, &body).await;
                outcomes.extend(outcomes_of(chunk.len(), reply));
            }
        }
        outcomes
    }
}

fn outcomes_of(
    len: usize,
    reply: Result<UploadReply, crate::upload::UploadError>,
) -> Vec<RecordOutcome> {
    let reply = match reply {
        Err(e) => {
            return vec![
                RecordOutcome::Dead {
                    code: None,
                    reason: e.to_string()
                };
                len
            ]
        }
        Ok(r) => r,
    };
    let Some(body) = reply.body.as_ref().filter(|_| reply.status == 200) else {
        return vec![
            RecordOutcome::Rejected {
                code: Some(i64::from(reply.status)),
                reason: reply.message(),
            };
            len
        ];
    };
    if body.status == ResponseStatus::Success {
        return vec![RecordOutcome::Processed; len];
    }
    let mut out = vec![RecordOutcome::Processed; len];
    let mut unmatched = Vec::new();
    for u in &body.unprocessed {
        let outcome = RecordOutcome::Rejected {
            code: u.code,
            reason: u.error.clone().unwrap_or_else(|| "unprocessed".into()),
        };
        match u.skipped_index().filter(|i| *i < len) {
            Some(i) => out[i] = outcome,
            None => unmatched.push(outcome),
        }
    }
    if body.status == ResponseStatus::Fail && body.unprocessed.is_empty() {
        let reason = reply.message();
        return vec![
            RecordOutcome::Rejected {
                code: body.code,
                reason: if reason == "HTTP 200" {
                    "CleverTap answered status fail".into()
                } else {
                    reason
                },
            };
            len
        ];
    }
    out
}
