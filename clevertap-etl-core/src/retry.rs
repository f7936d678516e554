//! The retry decision, as a pure function: what one upload attempt's answer means for each record
//! of its batch.
//!
//! [`classify`] reads an [`Attempt`] (the records sent and what came back) and returns a
//! [`RetryAction`]: every record settled, the whole batch to be sent again, only some records to
//! be sent again, or the account to be given up. [`backoff_delay`] turns a retry into a wait.
//! Nothing here sleeps, reads a clock or draws a random number: the delivery engine does, and
//! passes the random draw in.
//!
//! The table ([`classify`] follows it row by row):
//!
//! | answer | action |
//! |---|---|
//! | HTTP 200 `success` | every record processed |
//! | HTTP 200 `partial` / `fail` with `unprocessed[]` | per record: listed with 555 → send again (alone); listed with another code → rejected with that code; not listed → processed |
//! | HTTP 200 `fail`, empty `unprocessed[]` | every record rejected (not retried: nothing is idempotent) |
//! | HTTP 200, body unreadable | every record rejected as uncertain (not retried) |
//! | 429 | send all again after a backoff, and lower the account's concurrency |
//! | 408, 500, 502, 503, 504 | send all again after a backoff (`Retry-After` honoured) |
//! | timeout, connection error, other transport fault | send all again after a backoff |
//! | 401, 403 | give the account up: credentials or region are wrong |
//! | any other status | every record rejected, code = the HTTP status, reason = CleverTap's message |
//! | request body could not be encoded | every record rejected |
//!
//! Invariant: a record CleverTap processed is never marked to be sent again.

use std::time::Duration;

use serde_json::Value;

use crate::record::{ResponseStatus, UploadRecord, UploadResponse};
use crate::report::RecordOutcome;
use crate::upload::{UploadError, UploadReply};

/// CleverTap's per-record code for "miscellaneous server error", the only one worth retrying.
pub const RETRYABLE_RECORD_CODE: i64 = 555;

/// One upload attempt: the records that were sent, in body order, and what came back.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    /// The records of the request body, in order.
    pub records: &'a [UploadRecord],
    /// The uploader's answer.
    pub result: &'a Result<UploadReply, UploadError>,
}

/// What to do after an attempt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RetryAction {
    /// Nothing to send again: every record's final outcome, in batch order.
    Settle(Vec<RecordOutcome>),
    /// Send the whole batch again after a backoff.
    RetryAll(Retry),
    /// Send some records again after a backoff; the others are settled.
    RetrySome {
        /// Per record, in batch order: `Some(final outcome)`, or `None` to send it again.
        outcomes: Vec<Option<RecordOutcome>>,
        /// Why the others are sent again.
        retry: Retry,
    },
    /// Give up on the account: CleverTap refused the credentials (or the region is wrong).
    /// No record was processed, and later requests to the account will fail the same way.
    GiveUpAccount {
        /// The HTTP status (401 or 403).
        code: i64,
        /// CleverTap's message.
        reason: String,
    },
}

/// Why records are sent again, and any hints about when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// The code of the failed attempt (HTTP status or per-record code), when it had one.
    pub code: Option<i64>,
    /// Why, in words; it becomes the records' reason if retries run out.
    pub reason: String,
    /// The server's `Retry-After`, when it sent one (not yet clamped).
    pub retry_after: Option<Duration>,
    /// `true` for 429: the account's concurrency should be lowered.
    pub throttled: bool,
}

/// Decides what an attempt's answer means. Pure: see the [module docs](self) for the table.
///
/// ```
/// use clevertap_etl_core::retry::{classify, Attempt, RetryAction};
/// use clevertap_etl_core::UploadReply;
///
/// let reply = Ok(UploadReply { status: 429, body: None, raw: None, retry_after: None });
/// let action = classify(&Attempt { records: &[], result: &reply });
/// assert!(matches!(action, RetryAction::RetryAll(r) if r.throttled));
/// ```
pub fn classify(attempt: &Attempt<'_>) -> RetryAction {
    let len = attempt.records.len();
    let reply = match attempt.result {
        Err(UploadError::Encode(message)) => {
            return settle_all(
                len,
                RecordOutcome::Rejected {
                    code: None,
                    reason: format!("could not encode the upload body: {message}"),
                },
            )
        }
        Err(e) => {
            return RetryAction::RetryAll(Retry {
                code: None,
                reason: e.to_string(),
                retry_after: None,
                throttled: false,
            })
        }
        Ok(reply) => reply,
    };
    let code = i64::from(reply.status);
    match reply.status {
        200 => classify_body(attempt.records, reply),
        429 => RetryAction::RetryAll(Retry {
            code: Some(code),
            reason: format!(
                "too many concurrent requests (HTTP 429): {}",
                reply.message()
            ),
            retry_after: reply.retry_after,
            throttled: true,
        }),
        408 | 500 | 502 | 503 | 504 => RetryAction::RetryAll(Retry {
            code: Some(code),
            reason: format!(
                "CleverTap answered HTTP {}: {}",
                reply.status,
                reply.message()
            ),
            retry_after: reply.retry_after,
            throttled: false,
        }),
        401 | 403 => RetryAction::GiveUpAccount {
            code,
            reason: reply.message(),
        },
        _ => settle_all(
            len,
            RecordOutcome::Rejected {
                code: Some(code),
                reason: reply.message(),
            },
        ),
    }
}

/// How long to wait before retry number `retry` (1 for the first retry; 0 means "no wait").
///
/// With a `Retry-After` it is that, clamped to `retry_after_max`; otherwise exponential backoff
/// with full jitter: `unit × min(max, base × 2^(retry-1))`, where `unit` is a random draw in
/// `[0, 1)` supplied by the caller.
///
/// ```
/// use std::time::Duration;
/// use clevertap_etl_core::retry::{backoff_delay, Backoff};
///
/// let b = Backoff { base: Duration::from_millis(100), max: Duration::from_secs(1),
///     retry_after_max: Duration::from_secs(5) };
/// assert_eq!(backoff_delay(&b, 3, None, 0.5), Duration::from_millis(200));
/// assert_eq!(backoff_delay(&b, 1, Some(Duration::from_secs(60)), 0.5), Duration::from_secs(5));
/// ```
pub fn backoff_delay(
    backoff: &Backoff,
    retry: u32,
    retry_after: Option<Duration>,
    unit: f64,
) -> Duration {
    if let Some(after) = retry_after {
        return after.min(backoff.retry_after_max);
    }
    if retry == 0 {
        return Duration::ZERO;
    }
    let exponent = (retry - 1).min(31);
    let ceiling = backoff
        .base
        .saturating_mul(1u32 << exponent)
        .min(backoff.max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// The backoff policy [`backoff_delay`] applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's wait; it doubles with each retry.
    pub base: Duration,
    /// The largest ceiling.
    pub max: Duration,
    /// The longest `Retry-After` honoured; longer ones are cut to this.
    pub retry_after_max: Duration,
}

fn settle_all(len: usize, outcome: RecordOutcome) -> RetryAction {
    RetryAction::Settle(vec![outcome; len])
}

/// HTTP 200: the body says what became of each record.
fn classify_body(records: &[UploadRecord], reply: &UploadReply) -> RetryAction {
    let len = records.len();
    let Some(body) = &reply.body else {
        return settle_all(
            len,
            RecordOutcome::Rejected {
                code: Some(200),
                reason: format!(
                    "CleverTap answered HTTP 200 with an unreadable body ({}); not re-sent, as \
                     it may have been processed",
                    reply.message()
                ),
            },
        );
    };
    if body.unprocessed.is_empty() {
        return match body.status {
            ResponseStatus::Success | ResponseStatus::Partial => {
                settle_all(len, RecordOutcome::Processed)
            }
            ResponseStatus::Fail => settle_all(
                len,
                RecordOutcome::Rejected {
                    code: body.code,
                    reason: match &body.error {
                        Some(e) => format!("CleverTap answered status fail: {e}"),
                        None => "CleverTap answered status fail and listed no unprocessed \
                                 records; not re-sent"
                            .into(),
                    },
                },
            ),
            ResponseStatus::Unknown if body.processed as usize == len => {
                settle_all(len, RecordOutcome::Processed)
            }
            ResponseStatus::Unknown => settle_all(
                len,
                RecordOutcome::Rejected {
                    code: body.code,
                    reason: format!(
                        "CleverTap answered an unknown status, {} of {len} processed; not re-sent",
                        body.processed
                    ),
                },
            ),
        };
    }
    per_record(records, body)
}

/// `partial` / `fail` with `unprocessed[]`: map every entry back to its record.
fn per_record(records: &[UploadRecord], body: &UploadResponse) -> RetryAction {
    let len = records.len();
    let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; len];
    let mut listed = vec![false; len];
    let mut retried = 0usize;
    let mut unmatched = 0usize;
    let mut values: Option<Vec<Value>> = None;
    let mut retry_reason = None;
    for entry in &body.unprocessed {
        let index = entry
            .skipped_index()
            .filter(|i| *i < len && !listed[*i])
            .or_else(|| {
                let echoed = entry.record.as_ref()?;
                let values =
                    values.get_or_insert_with(|| records.iter().map(|r| r.to_value()).collect());
                (0..len).find(|i| !listed[*i] && values[*i] == *echoed)
            });
        let Some(i) = index else {
            unmatched += 1;
            continue;
        };
        listed[i] = true;
        let reason = entry
            .error
            .clone()
            .unwrap_or_else(|| "unprocessed by CleverTap".into());
        if entry.code == Some(RETRYABLE_RECORD_CODE) {
            retried += 1;
            retry_reason.get_or_insert(reason);
        } else {
            outcomes[i] = Some(RecordOutcome::Rejected {
                code: entry.code,
                reason,
            });
        }
    }
    let unlisted = listed.iter().filter(|l| !**l).count();
    // Records CleverTap did not list were processed, unless the answer leaves that in doubt.
    let unlisted_outcome = if body.status == ResponseStatus::Fail {
        RecordOutcome::Rejected {
            code: body.code,
            reason: "CleverTap answered status fail without listing this record; not re-sent"
                .into(),
        }
    } else if unmatched == 0 || body.processed as usize == unlisted {
        RecordOutcome::Processed
    } else {
        RecordOutcome::Rejected {
            code: body.code,
            reason: format!(
                "uncertain: CleverTap listed {unmatched} unprocessed record(s) that match no \
                 record of the request; not re-sent, as it may have been processed"
            ),
        }
    };
    for (i, outcome) in outcomes.iter_mut().enumerate() {
        if !listed[i] {
            *outcome = Some(unlisted_outcome.clone());
        }
    }
    if retried == 0 {
        return RetryAction::Settle(outcomes.into_iter().flatten().collect());
    }
    RetryAction::RetrySome {
        outcomes,
        retry: Retry {
            code: Some(RETRYABLE_RECORD_CODE),
            reason: retry_reason.unwrap_or_default(),
            retry_after: None,
            throttled: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::record::{EventRecord, Identifier, Unprocessed};

    fn event(n: usize) -> UploadRecord {
        UploadRecord::Event(EventRecord {
            identifier: Identifier::Identity(n.to_string()),
            ts: None,
            evt_name: "E".into(),
            evt_data: serde_json::Map::new(),
        })
    }

    fn reply(status: u16, body: Option<serde_json::Value>) -> Result<UploadReply, UploadError> {
        Ok(UploadReply {
            status,
            body: body.map(|b| serde_json::from_value(b).unwrap()),
            raw: None,
            retry_after: None,
        })
    }

    fn run(n: usize, result: Result<UploadReply, UploadError>) -> RetryAction {
        let records: Vec<_> = (0..n).map(event).collect();
        classify(&Attempt {
            records: &records,
            result: &result,
        })
    }

    fn rejected(code: Option<i64>, reason: &str) -> RecordOutcome {
        RecordOutcome::Rejected {
            code,
            reason: reason.into(),
        }
    }

    fn unprocessed(code: i64, number: usize) -> serde_json::Value {
        json!({"status": "fail", "code": code,
            "error": format!("err {code}. Skipped record number : {number}"), "record": {}})
    }

    #[test]
    fn row_200_success_processes_all() {
        let action = run(
            3,
            reply(
                200,
                Some(json!({"status": "success", "processed": 3, "unprocessed": []})),
            ),
        );
        assert_eq!(
            action,
            RetryAction::Settle(vec![RecordOutcome::Processed; 3])
        );
    }

    #[test]
    fn row_200_partial_maps_codes_per_record() {
        let action = run(
            4,
            reply(
                200,
                Some(json!({"status": "partial", "processed": 2,
                    "unprocessed": [unprocessed(509, 2), unprocessed(555, 4)]})),
            ),
        );
        let RetryAction::RetrySome { outcomes, retry } = action else {
            panic!("{action:?}")
        };
        assert_eq!(
            outcomes,
            vec![
                Some(RecordOutcome::Processed),
                Some(rejected(Some(509), "err 509. Skipped record number : 2")),
                Some(RecordOutcome::Processed),
                None,
            ]
        );
        assert_eq!(retry.code, Some(555));
        assert!(!retry.throttled);
    }

    #[test]
    fn row_200_partial_without_555_settles() {
        let action = run(
            2,
            reply(
                200,
                Some(json!({"status": "partial", "processed": 1,
                    "unprocessed": [unprocessed(523, 1)]})),
            ),
        );
        assert_eq!(
            action,
            RetryAction::Settle(vec![
                rejected(Some(523), "err 523. Skipped record number : 1"),
                RecordOutcome::Processed,
            ])
        );
    }

    #[test]
    fn row_200_partial_matches_echoed_record_without_number() {
        let records: Vec<_> = (0..3).map(event).collect();
        let result = reply(
            200,
            Some(json!({"status": "partial", "processed": 2, "unprocessed": [
                {"code": 512, "error": "bad structure", "record": records[1].to_value()}]})),
        );
        let action = classify(&Attempt {
            records: &records,
            result: &result,
        });
        assert_eq!(
            action,
            RetryAction::Settle(vec![
                RecordOutcome::Processed,
                rejected(Some(512), "bad structure"),
                RecordOutcome::Processed,
            ])
        );
    }

    #[test]
    fn row_200_unmatched_entry_leaves_unlisted_uncertain_unless_counts_agree() {
        let body = |processed| {
            json!({"status": "partial", "processed": processed, "unprocessed": [
                {"code": 512, "error": "bad structure", "record": {"no": "match"}}]})
        };
        let RetryAction::Settle(outcomes) = run(2, reply(200, Some(body(1)))) else {
            panic!()
        };
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Rejected { reason, .. } if reason.starts_with("uncertain"))));
        let RetryAction::Settle(outcomes) = run(2, reply(200, Some(body(2)))) else {
            panic!()
        };
        assert_eq!(outcomes, vec![RecordOutcome::Processed; 2]);
    }

    #[test]
    fn row_200_fail_with_empty_unprocessed_rejects_all() {
        let action = run(
            2,
            reply(
                200,
                Some(json!({"status": "fail", "processed": 0, "unprocessed": []})),
            ),
        );
        let RetryAction::Settle(outcomes) = action else {
            panic!()
        };
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes.iter().all(
            |o| matches!(o, RecordOutcome::Rejected { reason, .. } if reason.contains("status fail"))
        ));
    }

    #[test]
    fn row_200_fail_with_unprocessed_never_marks_unlisted_processed() {
        let action = run(
            2,
            reply(
                200,
                Some(
                    json!({"status": "fail", "processed": 0, "unprocessed": [unprocessed(555, 1)]}),
                ),
            ),
        );
        let RetryAction::RetrySome { outcomes, .. } = action else {
            panic!()
        };
        assert_eq!(outcomes[0], None);
        assert!(matches!(outcomes[1], Some(RecordOutcome::Rejected { .. })));
    }

    #[test]
    fn row_200_unreadable_body_is_not_retried() {
        let result = Ok(UploadReply {
            status: 200,
            body: None,
            raw: Some("<html>".into()),
            retry_after: None,
        });
        let RetryAction::Settle(outcomes) = run(1, result) else {
            panic!()
        };
        assert!(
            matches!(&outcomes[0], RecordOutcome::Rejected { code: Some(200), reason } if reason.contains("<html>"))
        );
    }

    #[test]
    fn row_429_retries_all_throttled_with_retry_after() {
        let result = Ok(UploadReply {
            status: 429,
            body: None,
            raw: Some("Too many concurrent requests".into()),
            retry_after: Some(Duration::from_secs(2)),
        });
        let RetryAction::RetryAll(retry) = run(2, result) else {
            panic!()
        };
        assert!(retry.throttled);
        assert_eq!(retry.code, Some(429));
        assert_eq!(retry.retry_after, Some(Duration::from_secs(2)));
        assert!(retry.reason.contains("Too many concurrent requests"));
    }

    #[test]
    fn row_5xx_and_408_retry_all() {
        for status in [408, 500, 502, 503, 504] {
            let RetryAction::RetryAll(retry) = run(1, reply(status, None)) else {
                panic!("{status}")
            };
            assert_eq!(retry.code, Some(i64::from(status)));
            assert!(!retry.throttled);
        }
    }

    #[test]
    fn row_transport_errors_retry_all() {
        for e in [
            UploadError::Timeout(Duration::from_secs(1)),
            UploadError::Connect {
                url: "http://x".into(),
                message: "refused".into(),
            },
            UploadError::Other("reset".into()),
        ] {
            let RetryAction::RetryAll(retry) = run(1, Err(e.clone())) else {
                panic!("{e:?}")
            };
            assert_eq!(retry.code, None);
            assert_eq!(retry.reason, e.to_string());
        }
    }

    #[test]
    fn row_encode_error_rejects_all() {
        let action = run(2, Err(UploadError::Encode("bad float".into())));
        let RetryAction::Settle(outcomes) = action else {
            panic!()
        };
        assert!(
            matches!(&outcomes[1], RecordOutcome::Rejected { code: None, reason } if reason.contains("bad float"))
        );
    }

    #[test]
    fn row_401_403_give_up_the_account() {
        for status in [401, 403] {
            let result = Ok(UploadReply {
                status,
                body: Some(UploadResponse {
                    status: ResponseStatus::Fail,
                    processed: 0,
                    unprocessed: vec![],
                    error: Some("Invalid Credentials".into()),
                    code: Some(401),
                }),
                raw: None,
                retry_after: None,
            });
            assert_eq!(
                run(1, result),
                RetryAction::GiveUpAccount {
                    code: i64::from(status),
                    reason: "Invalid Credentials".into()
                }
            );
        }
    }

    #[test]
    fn row_other_statuses_reject_with_message_and_status() {
        for status in [400, 404, 405, 409, 413, 501, 302] {
            let result = Ok(UploadReply {
                status,
                body: None,
                raw: Some("Malformed request".into()),
                retry_after: None,
            });
            assert_eq!(
                run(2, result),
                RetryAction::Settle(vec![
                    rejected(Some(i64::from(status)), "Malformed request");
                    2
                ]),
                "{status}"
            );
        }
    }

    #[test]
    fn skipped_numbers_out_of_range_or_repeated_fall_back_to_echo() {
        let records: Vec<_> = (0..2).map(event).collect();
        let entry = |n: usize, record: &UploadRecord| Unprocessed {
            status: None,
            code: Some(509),
            error: Some(format!("Skipped record number : {n}")),
            record: Some(record.to_value()),
        };
        let result = Ok(UploadReply::ok(UploadResponse {
            status: ResponseStatus::Partial,
            processed: 0,
            unprocessed: vec![entry(9, &records[1]), entry(9, &records[0])],
            error: None,
            code: None,
        }));
        let RetryAction::Settle(outcomes) = classify(&Attempt {
            records: &records,
            result: &result,
        }) else {
            panic!()
        };
        assert!(outcomes.iter().all(|o| matches!(
            o,
            RecordOutcome::Rejected {
                code: Some(509),
                ..
            }
        )));
    }

    #[test]
    fn backoff_is_full_jitter_capped_and_honours_retry_after() {
        let b = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            retry_after_max: Duration::from_secs(10),
        };
        assert_eq!(backoff_delay(&b, 1, None, 0.0), Duration::ZERO);
        assert_eq!(backoff_delay(&b, 0, None, 1.0), Duration::ZERO);
        assert_eq!(
            backoff_delay(&b, 0, Some(Duration::from_secs(1)), 1.0),
            Duration::from_secs(1)
        );
        assert_eq!(backoff_delay(&b, 1, None, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&b, 2, None, 1.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&b, 5, None, 1.0), Duration::from_millis(1000));
        assert_eq!(
            backoff_delay(&b, 60, None, 1.0),
            Duration::from_millis(1000)
        );
        assert_eq!(
            backoff_delay(&b, 1, Some(Duration::from_secs(3)), 0.0),
            Duration::from_secs(3)
        );
        assert_eq!(
            backoff_delay(&b, 1, Some(Duration::from_secs(99)), 0.0),
            Duration::from_secs(10)
        );
    }
}
