//! Send records somewhere other than CleverTap: implement [`Uploader`] and hand it to the
//! delivery engine. Batching, per-account concurrency, retries and the per-record verdicts
//! all still apply, because the engine only sees an `Uploader`.
//!
//! Here the "somewhere" is a JSON-lines file in a temporary directory, a stand-in for a queue
//! or a warehouse. The uploader answers in CleverTap's response format (HTTP status plus
//! `{"status", "processed", "unprocessed": [...]}`), which is how it tells the engine what
//! became of each record:
//! - its first request answers HTTP 503, as a flaky sink would: the engine retries the body;
//! - it discards events it has no table for with CleverTap's code 528 and the
//!   "Skipped record number : N" message: the engine marks just those records rejected.
//!
//! Run with: cargo run -p clevertap-etl-examples --example custom_uploader

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clevertap_etl_core::record::{ResponseStatus, Unprocessed};
use clevertap_etl_core::{
    transform, Backoff, Credentials, Deliverer, DeliveryReport, DeliverySettings, Passcode,
    RecordOutcome, Routing, TransformSpec, UnixSeconds, UploadBody, UploadError, UploadRecord,
    UploadReply, UploadResponse, Uploader, WebhookPayload,
};

/// Appends every accepted record to a JSON-lines file, one `{"account", "record"}` per line.
pub struct JsonLinesUploader {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    known_events: Vec<String>,
    fail_first: AtomicUsize,
}

impl JsonLinesUploader {
    /// Appends to `path`; keeps only the events named in `known_events`; answers 503 to the
    /// first `fail_first` requests.
    pub fn create(path: &Path, known_events: &[&str], fail_first: usize) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JsonLinesUploader {
            path: path.to_owned(),
            file: Mutex::new(file),
            known_events: known_events.iter().map(|s| (*s).to_owned()).collect(),
            fail_first: AtomicUsize::new(fail_first),
        })
    }
}

#[async_trait]
impl Uploader for JsonLinesUploader {
    async fn upload(
        &self,
        account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError> {
        // A request-level failure: an HTTP status other than 200 (5xx and 429 are retried).
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Ok(UploadReply {
                status: 503,
                body: None,
                raw: Some("sink warming up".into()),
                retry_after: None,
            });
        }
        // Per-record verdicts: keep what we can store, list the rest as CleverTap would.
        let mut lines = Vec::new();
        let mut unprocessed = Vec::new();
        for (i, record) in body.d.iter().enumerate() {
            match record {
                UploadRecord::Event(e) if !self.known_events.contains(&e.evt_name) => {
                    unprocessed.push(Unprocessed {
                        status: Some("fail".into()),
                        code: Some(528),
                        // CleverTap counts records from 1; the engine reads this number.
                        error: Some(format!(
                            "no table for event {:?}. Skipped record number : {}",
                            e.evt_name,
                            i + 1
                        )),
                        record: Some(record.to_value()),
                    });
                }
                _ => lines.push(serde_json::json!({
                    "account": account.account_id.as_str(),
                    "record": record,
                })),
            }
        }
        {
            let mut file = self
                .file
                .lock()
                .map_err(|_| UploadError::Other("the sink's lock is poisoned".into()))?;
            for line in &lines {
                writeln!(file, "{line}").map_err(|e| {
                    UploadError::Other(format!("cannot append to {}: {e}", self.path.display()))
                })?;
            }
        }
        let processed = lines.len() as u64;
        let status = match (processed, unprocessed.is_empty()) {
            (_, true) => ResponseStatus::Success,
            (0, false) => ResponseStatus::Fail,
            _ => ResponseStatus::Partial,
        };
        Ok(UploadReply::ok(UploadResponse {
            status,
            processed,
            unprocessed,
            error: None,
            code: None,
        }))
    }
}

/// What one run produced.
pub struct Run {
    /// One report per payload, in order.
    pub reports: Vec<DeliveryReport>,
    /// The lines the sink wrote.
    pub lines: Vec<String>,
    /// Retries the engine scheduled.
    pub retries: u64,
}

/// Delivers the seed and live-campaign payloads into a JSON-lines file in `dir`.
pub async fn run(dir: &Path) -> Result<Run, Box<dyn std::error::Error>> {
    let path = dir.join("records.jsonl");
    let sink = JsonLinesUploader::create(&path, &["Cart Reminder Sent"], 1)?;

    // The engine, as the service builds it: the uploader, the accounts' credentials, settings.
    // A file sink needs no passcode, but the engine sends each account's along anyway.
    let account = Credentials {
        account_id: "W44-Z4K-K65Z".try_into()?,
        passcode: Passcode::new("unused-by-this-sink"),
    };
    let settings = DeliverySettings {
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            retry_after_max: Duration::from_secs(1),
        },
        ..DeliverySettings::default()
    };
    let deliverer = Deliverer::new(Arc::new(sink), [account], settings);

    let mut reports = Vec::new();
    for (name, body) in [
        ("seed", clevertap_etl_examples::SEED),
        ("live-campaign", clevertap_etl_examples::LIVE_CAMPAIGN),
    ] {
        let payload = WebhookPayload::from_slice(body.as_bytes())?;
        let plan = transform(
            &payload,
            &TransformSpec::default(),
            &Routing::default(),
            UnixSeconds(1_700_000_000),
        )?;
        // One outcome per planned record, in plan order.
        let outcomes = deliverer.deliver(&plan).await;
        println!("{name}:");
        for (planned, outcome) in plan.accounts.iter().flat_map(|a| &a.records).zip(&outcomes) {
            let verdict = match outcome {
                RecordOutcome::Processed => "stored".to_owned(),
                RecordOutcome::Rejected { code, reason } => {
                    format!("rejected [{}] {reason}", code.unwrap_or_default())
                }
                RecordOutcome::Dead { reason, .. } => format!("dead: {reason}"),
                RecordOutcome::Pending => "pending".to_owned(),
            };
            println!("  {:<72} {verdict}", planned.record.describe());
        }
        for skipped in &plan.skipped {
            println!("  not sent [{}] {}", skipped.code, skipped.reason);
        }
        reports.push(DeliveryReport::build(name.to_owned(), &plan, &outcomes));
    }
    let lines = std::fs::read_to_string(&path)?
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(Run {
        reports,
        lines,
        retries: deliverer.retries(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!(
        "clevertap-etl-custom-uploader-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let result = run(&dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    let run = result?;
    println!("\nretries: {}", run.retries);
    println!("the sink holds {} records:", run.lines.len());
    for line in &run.lines {
        println!("  {line}");
    }
    for report in &run.reports {
        println!("{}", serde_json::to_string(report)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clevertap_etl_core::DeliveryState;

    #[tokio::test]
    async fn the_custom_uploader_stores_known_records_and_reports_the_rest() {
        let dir = std::env::temp_dir().join(format!(
            "clevertap-etl-custom-uploader-test-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let run = super::run(&dir).await;
        std::fs::remove_dir_all(&dir).unwrap();
        let run = run.unwrap();
        assert!(run.retries >= 1, "the first request's 503 was retried");
        // Seed: its profile is stored, its "From Webhook" event is discarded (528).
        let seed = &run.reports[0];
        assert_eq!(seed.state, DeliveryState::Partial);
        assert_eq!((seed.counts.processed, seed.counts.rejected), (1, 1));
        assert_eq!(seed.failures[0].code, Some(528));
        // Live campaign: two profiles and their events stored; the third lacks an objectId
        // (skipped by the transform, one entry for the profile).
        let live = &run.reports[1];
        assert_eq!((live.counts.processed, live.counts.skipped), (4, 1));
        assert!(live.counts.is_consistent());
        assert_eq!(run.lines.len(), 5);
        let first: serde_json::Value = serde_json::from_str(&run.lines[0]).unwrap();
        assert_eq!(first["account"], "W44-Z4K-K65Z");
        assert_eq!(first["record"]["type"], "profile");
    }
}
