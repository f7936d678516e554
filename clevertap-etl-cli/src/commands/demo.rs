//! `clevertap-etl demo`: the whole loop on bundled payloads, against an in-process sandbox
//! CleverTap. Needs no account, no config and no network beyond loopback.

use std::sync::Arc;

use clevertap_etl_axum::{app, serve};
use clevertap_etl_core::sandbox::{SandboxRequest, SandboxUploader};
use clevertap_etl_core::spool::SqliteSpool;
use clevertap_etl_core::{Config, DeliveryReport, WebhookPayload};
use serde_json::Value;
use tokio::net::TcpListener;

use super::serve::{sandbox_credentials, Service};
use crate::error::CliError;

/// The bundled payloads: file name, what it shows, contents.
const PAYLOADS: &[(&str, &str, &str)] = &[
    (
        "seed.json",
        "the hackathon's sample: one profile, profile and event upload",
        include_str!("../../../examples/payloads/seed.json"),
    ),
    (
        "live-campaign.json",
        "a live campaign naming its own event; one profile has no objectId",
        include_str!("../../../examples/payloads/live-campaign.json"),
    ),
    (
        "restricted-event.json",
        "a campaign naming a restricted system event: caught before upload with code 513",
        include_str!("../../../examples/payloads/restricted-event.json"),
    ),
    (
        "test-call.json",
        "CleverTap's test call (is_test, capitalised keys): answered 200, nothing uploaded",
        include_str!("../../../examples/payloads/test-call.json"),
    ),
];

/// Runs the demo and prints each stage.
pub async fn run() -> Result<(), CliError> {
    let mut config = Config::default();
    let creds = sandbox_credentials(&mut config)?;
    let sandbox = Arc::new(SandboxUploader::default());
    let spool = SqliteSpool::in_memory()
        .map_err(|e| CliError::Unreachable(format!("in-memory spool: {e}")))?;
    let service = Service::build(&config, sandbox.clone(), creds, Some(Arc::new(spool)));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(CliError::Serve)?;
    let addr = listener.local_addr().map_err(CliError::Serve)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(serve(listener, app(service.state), async move {
        let _ = server_stopped.wait_for(|s| *s).await;
    }));
    let worker = service.worker.map(|w| {
        let mut stopped = stopped;
        tokio::spawn(w.run(async move {
            let _ = stopped.wait_for(|s| *s).await;
        }))
    });
    clevertap_etl_core::upload::ensure_crypto_provider();
    let client = reqwest::Client::new();
    let base = format!("http://{addr}");

    println!("clevertap-etl demo: service on {base} (async mode: spool in memory), uploading to an in-process sandbox CleverTap");
    println!(
        "(the sandbox checks records as CleverTap's Upload API does and answers in its format)\n"
    );
    for (i, (name, about, body)) in PAYLOADS.iter().enumerate() {
        println!("━━ {}/{} {name}: {about}", i + 1, PAYLOADS.len());
        show_webhook(body);
        let preview: Value = post(&client, &format!("{base}/v1/transform"), body).await?;
        show_plan(&preview);
        let started = std::time::Instant::now();
        let answer: Value = post(&client, &format!("{base}/webhooks/clevertap"), body).await?;
        println!(
            "answer    HTTP 200 in {} ms · state {} · delivery_id {}",
            started.elapsed().as_millis(),
            answer["state"].as_str().unwrap_or("?"),
            answer["delivery_id"].as_str().unwrap_or("?")
        );
        let report = settle(&client, &base, &answer).await?;
        show_requests(&sandbox.take());
        show_report(&report);
        println!();
    }
    let _ = stop.send(true);
    let _ = server.await;
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    println!("done: {} webhooks through the loop. Next: `clevertap-etl serve --sandbox`, then point a payload at it.", PAYLOADS.len());
    Ok(())
}

/// Polls the delivery until the background worker has settled it (at most 30 s).
async fn settle(client: &reqwest::Client, base: &str, answer: &Value) -> Result<Value, CliError> {
    let Some(id) = answer["delivery_id"].as_str() else {
        return Ok(answer.clone());
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut report = answer.clone();
    while report["state"] == "pending" && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        report = client
            .get(format!("{base}/v1/deliveries/{id}"))
            .send()
            .await
            .map_err(|e| CliError::Unreachable(format!("demo service: {e}")))?
            .json()
            .await
            .map_err(|e| CliError::Unreachable(format!("demo service: {e}")))?;
    }
    Ok(report)
}

async fn post(client: &reqwest::Client, url: &str, body: &str) -> Result<Value, CliError> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .map_err(|e| CliError::Unreachable(format!("demo service at {url}: {e}")))?;
    response
        .json()
        .await
        .map_err(|e| CliError::Unreachable(format!("demo service at {url}: {e}")))
}

/// Keys whose values are never printed.
fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["passcode", "password", "token", "secret"]
        .iter()
        .any(|s| k.contains(s))
}

fn show_webhook(body: &str) {
    let Ok(payload) = WebhookPayload::from_slice(body.as_bytes()) else {
        println!("webhook   (not a valid payload)");
        return;
    };
    let kvs: Vec<String> = payload
        .key_values
        .iter()
        .map(|(k, v)| {
            if is_secret_key(k) {
                format!("{k}=<redacted>")
            } else {
                format!(
                    "{k}={}",
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned)
                )
            }
        })
        .collect();
    println!(
        "webhook   targetId {} · {} profile(s){} · key_values: {}",
        payload
            .target_id
            .as_ref()
            .map_or_else(|| "-".into(), Value::to_string),
        payload.profiles.len(),
        if payload.is_test { " · is_test" } else { "" },
        if kvs.is_empty() {
            "-".into()
        } else {
            kvs.join(", ")
        }
    );
}

fn show_plan(preview: &Value) {
    let Ok(preview) = serde_json::from_value::<PreviewView>(preview.clone()) else {
        println!("records   {preview}");
        return;
    };
    let count: usize = preview.uploads.iter().map(|u| u.body.d.len()).sum();
    println!(
        "records   {count} planned in {} request body(ies)",
        preview.uploads.len()
    );
    for upload in &preview.uploads {
        for record in &upload.body.d {
            println!("          → {} {}", upload.account_id, describe(record));
        }
    }
    for s in &preview.skipped {
        println!("          ✗ skipped [{}] {}", s.code, s.reason);
    }
}

fn show_requests(requests: &[SandboxRequest]) {
    if requests.is_empty() {
        println!("request   none sent");
    }
    for r in requests {
        let body = serde_json::to_string(&r.body).unwrap_or_default();
        println!(
            "request   POST /1/upload · X-CleverTap-Account-Id: {} · {} record(s)",
            r.account_id,
            r.body.d.len()
        );
        println!("          {}", ellipsize(&body, 400));
        let Some(answer) = &r.reply.body else {
            continue;
        };
        println!(
            "verdict   HTTP {} · status {:?} · processed {}",
            r.reply.status, answer.status, answer.processed
        );
        let failed: Vec<Option<usize>> = answer
            .unprocessed
            .iter()
            .map(|u| u.skipped_index())
            .collect();
        for (i, record) in r.body.d.iter().enumerate() {
            match answer
                .unprocessed
                .iter()
                .zip(&failed)
                .find(|(_, idx)| **idx == Some(i))
            {
                Some((u, _)) => println!(
                    "          ✗ {} → {} {}",
                    record.describe(),
                    u.code.map_or_else(|| "?".into(), |c| c.to_string()),
                    u.error.as_deref().unwrap_or("")
                ),
                None => println!("          ✓ {}", record.describe()),
            }
        }
    }
}

fn show_report(report: &Value) {
    let Ok(r) = serde_json::from_value::<DeliveryReport>(report.clone()) else {
        println!("report    {report}");
        return;
    };
    let c = r.counts;
    println!(
        "report    {:?} · planned {} = processed {} + rejected {} + skipped {} + pending {} + dead {}",
        r.state, c.planned, c.processed, c.rejected, c.skipped, c.pending, c.dead
    );
    for f in &r.failures {
        println!(
            "          {:?} failure [{}] {}",
            f.stage,
            f.code.map_or_else(|| "-".into(), |c| c.to_string()),
            f.reason
        );
    }
}

fn describe(record: &Value) -> String {
    serde_json::from_value::<clevertap_etl_core::UploadRecord>(record.clone())
        .map_or_else(|_| record.to_string(), |r| r.describe())
}

fn ellipsize(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// The demo reads the preview back from JSON (it came over HTTP).
#[derive(serde::Deserialize)]
struct PreviewView {
    uploads: Vec<UploadView>,
    skipped: Vec<SkippedView>,
}

#[derive(serde::Deserialize)]
struct UploadView {
    account_id: String,
    body: BodyView,
}

#[derive(serde::Deserialize)]
struct BodyView {
    d: Vec<Value>,
}

#[derive(serde::Deserialize)]
struct SkippedView {
    code: u16,
    reason: String,
}
