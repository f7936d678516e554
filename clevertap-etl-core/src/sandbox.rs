//! An in-process stand-in for CleverTap's Upload API, for the demo, `serve --sandbox`, examples
//! and tests: no account and no network needed.
//!
//! It answers as CleverTap does: HTTP 200 with `success`, `partial` or `fail` and per-record
//! `unprocessed[]` entries carrying CleverTap's codes and its "Skipped record number : N"
//! messages; 400 for a body over 1000 records. It keeps what it received so a caller can show it.

use std::sync::Mutex;

use async_trait::async_trait;

use crate::account::{AccountId, Credentials};
use crate::deliver::MAX_BATCH_SIZE;
use crate::record::{ResponseStatus, Unprocessed, UploadBody, UploadRecord, UploadResponse};
use crate::spec::ValidationSettings;
use crate::upload::{UploadError, UploadReply, Uploader};
use crate::validate::validate;

/// One request the sandbox received, and what it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxRequest {
    /// The account the request was for.
    pub account_id: AccountId,
    /// The body.
    pub body: UploadBody,
    /// The answer.
    pub reply: UploadReply,
}

/// How many requests the sandbox remembers.
const HISTORY: usize = 1000;

/// The sandbox uploader: an [`Uploader`] that answers like CleverTap's Upload
/// API, in process, and remembers the last 1000 or so requests it received. Any account and
/// passcode are accepted.
///
/// ```
/// use clevertap_etl_core::record::ResponseStatus;
/// use clevertap_etl_core::sandbox::SandboxUploader;
/// use clevertap_etl_core::{Credentials, Passcode, UploadBody, UploadRecord, Uploader};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// let body: UploadBody = serde_json::from_value(serde_json::json!({"d": [
///     {"type": "profile", "objectId": "__1", "profileData": {"city": "Pune"}},
///     {"type": "event", "objectId": "__1", "evtName": "App Launched", "evtData": {}}
/// ]}))?;
/// let sandbox = SandboxUploader::default();
/// let account = Credentials { account_id: "W44-Z4K-K65Z".try_into()?, passcode: Passcode::new("any") };
/// let reply = sandbox.upload(&account, &body).await?;
/// let response = reply.body.expect("the sandbox always answers JSON");
/// assert_eq!(reply.status, 200);
/// assert_eq!(response.status, ResponseStatus::Partial);
/// assert_eq!(response.unprocessed[0].code, Some(513)); // a restricted system event
/// assert_eq!(sandbox.received().len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct SandboxUploader {
    received: Mutex<Vec<SandboxRequest>>,
}

impl SandboxUploader {
    /// The requests received so far (the latest ones, at most 1000), oldest first.
    pub fn received(&self) -> Vec<SandboxRequest> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Removes and returns the requests received so far.
    pub fn take(&self) -> Vec<SandboxRequest> {
        self.received
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// What CleverTap would answer to this body.
    pub fn answer(body: &UploadBody) -> UploadReply {
        if body.d.len() > MAX_BATCH_SIZE {
            return UploadReply {
                status: 400,
                body: Some(UploadResponse {
                    status: ResponseStatus::Fail,
                    processed: 0,
                    unprocessed: Vec::new(),
                    error: Some(format!(
                        "Malformed request: at most {MAX_BATCH_SIZE} records per request"
                    )),
                    code: Some(400),
                }),
                raw: None,
                retry_after: None,
            };
        }
        let unprocessed: Vec<Unprocessed> = body
            .d
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                check(r).map(|(code, msg)| Unprocessed {
                    status: Some("fail".into()),
                    code: Some(code),
                    error: Some(format!("{msg}. Skipped record number : {}", i + 1)),
                    record: Some(r.to_value()),
                })
            })
            .collect();
        let processed = (body.d.len() - unprocessed.len()) as u64;
        let status = if unprocessed.is_empty() {
            ResponseStatus::Success
        } else if processed == 0 {
            ResponseStatus::Fail
        } else {
            ResponseStatus::Partial
        };
        UploadReply::ok(UploadResponse {
            status,
            processed,
            unprocessed,
            error: None,
            code: None,
        })
    }
}

/// CleverTap's per-record verdict on one record: `None` if it would be processed. The
/// sandbox applies the same rules as offline validation, with every rule set to reject:
/// CleverTap repairs nothing.
fn check(record: &UploadRecord) -> Option<(i64, String)> {
    let strict = ValidationSettings::strict();
    let mut copy = record.clone();
    validate(&mut copy, &strict)
        .err()
        .map(|v| (i64::from(v.code), v.reason))
}

#[async_trait]
impl Uploader for SandboxUploader {
    async fn upload(
        &self,
        account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError> {
        let reply = Self::answer(body);
        if let Ok(mut received) = self.received.lock() {
            if received.len() >= HISTORY {
                // A long-running sandbox keeps the latest requests, not all of them.
                received.drain(..HISTORY / 2);
            }
            received.push(SandboxRequest {
                account_id: account.account_id.clone(),
                body: body.clone(),
                reply: reply.clone(),
            });
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EventRecord, Identifier};

    fn event(name: &str, ts: Option<i64>) -> UploadRecord {
        UploadRecord::Event(EventRecord {
            identifier: Identifier::Identity("1".into()),
            ts,
            evt_name: name.into(),
            evt_data: serde_json::Map::new(),
        })
    }

    #[test]
    fn answers_partial_with_clevertap_codes_and_record_numbers() {
        let body = UploadBody {
            d: vec![
                event("Fine", Some(1_700_000_000)),
                event("", None),
                event("App Launched", None),
                event("Fine", Some(1_700_000_000_000)),
            ],
        };
        let reply = SandboxUploader::answer(&body);
        let parsed = reply.body.unwrap();
        assert_eq!(parsed.status, ResponseStatus::Partial);
        assert_eq!(parsed.processed, 1);
        let codes: Vec<_> = parsed
            .unprocessed
            .iter()
            .map(|u| (u.code, u.skipped_index()))
            .collect();
        assert_eq!(
            codes,
            [
                (Some(509), Some(1)),
                (Some(513), Some(2)),
                (Some(525), Some(3))
            ]
        );
    }

    #[test]
    fn what_local_validation_would_fix_the_sandbox_rejects() {
        let mut data = serde_json::Map::new();
        data.insert("Phone".into(), serde_json::json!("98 7654 3210"));
        let profile = UploadRecord::Profile(crate::record::ProfileRecord {
            identifier: Identifier::Identity("1".into()),
            ts: None,
            profile_data: data,
        });
        let reply = SandboxUploader::answer(&UploadBody { d: vec![profile] });
        let parsed = reply.body.unwrap();
        assert_eq!(parsed.status, ResponseStatus::Fail);
        assert_eq!(parsed.unprocessed[0].code, Some(516));
    }

    #[test]
    fn all_bad_is_fail_and_too_many_is_400() {
        let reply = SandboxUploader::answer(&UploadBody {
            d: vec![event("", None)],
        });
        assert_eq!(reply.body.unwrap().status, ResponseStatus::Fail);
        let reply = SandboxUploader::answer(&UploadBody {
            d: vec![event("E", None); 1001],
        });
        assert_eq!(reply.status, 400);
    }
}
