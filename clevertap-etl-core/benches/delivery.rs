//! Delivery engine benchmark against a loopback fake CleverTap (not a test: it prints figures).
//!
//! Run with: `cargo bench -p clevertap-etl-core --bench delivery` (add `-- --quick` for a
//! small run, `-- --latency-ms N` for another fake latency than 50 ms).
//!
//! (a) The fake answers every request after 50 ms and allows any concurrency; the engine runs
//!     with `max_concurrency = 15`. Ideal time: ⌈requests / 15⌉ × 50 ms.
//! (b) The fake allows only 3 requests in flight per account and answers 429 at once past that;
//!     the engine is adaptive with a maximum of 15. Ideal time: ⌈requests / 3⌉ × 50 ms.
//!
//! Both deliver 100,000 records (50,000 profiles then 50,000 events, 1000 per request) with the
//! engine's default settings otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/fake.rs"]
mod fake;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clevertap_etl_core::record::{EventRecord, Identifier, ProfileRecord};
use clevertap_etl_core::transform::{AccountPlan, PlannedRecord};
use clevertap_etl_core::{
    AccountId, Credentials, Deliverer, DeliverySettings, Endpoint, HttpUploader,
    HttpUploaderConfig, Passcode, Plan, RecordOutcome, Target, UploadRecord,
};
use fake::{Fake, FakeConfig};

const ACCOUNT: &str = "BENCH-ACC";

fn records(n: usize) -> Vec<UploadRecord> {
    let mut data = serde_json::Map::new();
    data.insert("city".into(), "Mumbai".into());
    data.insert("plan".into(), "gold".into());
    (0..n)
        .map(|i| {
            let identifier = Identifier::Identity(format!("user-{i}"));
            if i < n / 2 {
                UploadRecord::Profile(ProfileRecord {
                    identifier,
                    ts: None,
                    profile_data: data.clone(),
                })
            } else {
                UploadRecord::Event(EventRecord {
                    identifier,
                    ts: None,
                    evt_name: "From Webhook".into(),
                    evt_data: data.clone(),
                })
            }
        })
        .collect()
}

fn plan(records: Vec<UploadRecord>) -> Plan {
    Plan {
        target_id: None,
        is_test: false,
        accounts: vec![AccountPlan {
            target: Target::Configured(AccountId::try_from(ACCOUNT).unwrap()),
            records: records
                .into_iter()
                .enumerate()
                .map(|(profile, record)| PlannedRecord {
                    profile,
                    record,
                    fixes: Vec::new(),
                })
                .collect(),
        }],
        skipped: vec![],
    }
}

struct Run {
    elapsed: Duration,
    requests: usize,
    throttled: usize,
    max_in_flight: usize,
    processed: usize,
}

async fn run(plan: &Plan, fake: FakeConfig, settings: DeliverySettings) -> Run {
    let fake = Fake::start(fake).await;
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(fake.uri()),
        timeout: Duration::from_secs(30),
    })
    .unwrap();
    let deliverer = Deliverer::new(
        Arc::new(uploader),
        [Credentials {
            account_id: AccountId::try_from(ACCOUNT).unwrap(),
            passcode: Passcode::new("bench"),
        }],
        settings,
    );
    let started = Instant::now();
    let outcomes = deliverer.deliver(plan).await;
    let elapsed = started.elapsed();
    Run {
        elapsed,
        requests: fake.requests(),
        throttled: fake.throttled(),
        max_in_flight: fake.max_in_flight(ACCOUNT),
        processed: outcomes
            .iter()
            .filter(|o| **o == RecordOutcome::Processed)
            .count(),
    }
}

fn ideal(latency: Duration, batches: usize, limit: usize) -> Duration {
    latency * u32::try_from(batches.div_ceil(limit)).unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let number = |flag: &str| -> Option<u64> {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1)?.parse().ok())
    };
    // `--latency-ms N` changes the fake's latency (default 50).
    let latency = Duration::from_millis(number("--latency-ms").unwrap_or(50));
    // `--backoff-base-ms N` changes the engine's `backoff_base_ms` (default: the engine's).
    let mut defaults = DeliverySettings::default();
    if let Some(ms) = number("--backoff-base-ms") {
        defaults.backoff.base = Duration::from_millis(ms);
    }
    let n: usize = if quick { 20_000 } else { 100_000 };
    let batches = n.div_ceil(1000);
    let plan = plan(records(n));
    println!("delivery benchmark: {n} records, {batches} bodies of 1000, fake latency {latency:?}");

    // (a) limit 15 everywhere.
    let settings = DeliverySettings {
        max_concurrency: 15,
        ..defaults.clone()
    };
    let fake = FakeConfig {
        latency,
        ..FakeConfig::default()
    };
    let a = run(&plan, fake, settings).await;
    let ideal_a = ideal(latency, batches, 15);
    println!(
        "(a) max_concurrency 15, fake unlimited: elapsed {:?}, ideal {:?}, elapsed/ideal {:.3} \
         (target <= 1.15), requests {} (target {batches}), max in flight {}, processed {}/{n}",
        a.elapsed,
        ideal_a,
        a.elapsed.as_secs_f64() / ideal_a.as_secs_f64(),
        a.requests,
        a.max_in_flight,
        a.processed,
    );

    // (b) the fake takes 3 and answers 429 past that; adaptive engine with max 15.
    let settings = DeliverySettings {
        max_concurrency: 15,
        adaptive: true,
        ..defaults.clone()
    };
    let fake = FakeConfig {
        latency,
        limit: Some(3),
        ..FakeConfig::default()
    };
    let b = run(&plan, fake, settings).await;
    let ideal_b = ideal(latency, batches, 3);
    println!(
        "(b) adaptive max 15, fake limit 3: elapsed {:?}, ideal {:?}, elapsed/ideal {:.3} \
         (target <= 1.3), requests {}, 429s {}, max in flight {}, processed {}/{n}",
        b.elapsed,
        ideal_b,
        b.elapsed.as_secs_f64() / ideal_b.as_secs_f64(),
        b.requests,
        b.throttled,
        b.max_in_flight,
        b.processed,
    );
}
