//! Durable intake benchmark (not a test: it prints figures). The service in async mode over a
//! spool file (WAL, `synchronous = FULL`: every accepted webhook is committed to disk before it
//! is answered), its worker delivering to the sandbox slowed to 50 ms per request, on loopback.
//!
//! Run with: `cargo bench -p clevertap-etl-axum --bench intake` (add `-- --quick` for a small
//! run, `-- --clients N` for another number of concurrent clients than 32).
//!
//! (1) Answer time of a 1,000-profile webhook (2,000 records) while deliveries run: one client
//!     sends them back to back; p50 / p99 / max. Target: p99 ≤ 50 ms.
//! (2) Webhooks per second: 10-profile webhooks, every body distinct (so none is a duplicate),
//!     from N concurrent clients. Target: ≥ 2,000/s.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clevertap_etl_axum::{app, serve, AppState};
use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::spool::{Intake, Spool, SqliteSpool, Worker};
use clevertap_etl_core::{
    Config, Credentials, Pipeline, UploadBody, UploadError, UploadReply, Uploader,
};
use serde_json::{json, Value};

/// The sandbox's answers, after `latency`.
struct SlowSandbox {
    latency: Duration,
}

#[async_trait]
impl Uploader for SlowSandbox {
    async fn upload(
        &self,
        _account: &Credentials,
        body: &UploadBody,
    ) -> Result<UploadReply, UploadError> {
        tokio::time::sleep(self.latency).await;
        Ok(SandboxUploader::answer(body))
    }
}

/// A webhook body of `n` profiles, unique by `tag`.
fn payload(tag: &str, n: usize) -> Vec<u8> {
    let profiles: Vec<Value> = (0..n)
        .map(|i| {
            json!({"objectId": format!("{tag}-{i}"), "identity": format!("user-{tag}-{i}"),
                   "profileData": {"city": "Mumbai", "plan": "gold", "score": i},
                   "event_properties": {"CT Source": "Mobile", "n": i}})
        })
        .collect();
    json!({"targetId": 1_589_621_729, "key_values": {"target_account": "W44-Z4K-K65Z"},
           "profiles": profiles})
    .to_string()
    .into_bytes()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let clients: usize = args
        .iter()
        .position(|a| a == "--clients")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    let (big_webhooks, small_webhooks) = if quick { (40, 3_000) } else { (200, 20_000) };

    let dir =
        std::env::temp_dir().join(format!("clevertap-etl-bench-intake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let spool_path = dir.join("spool.sqlite");
    let config = Config::from_toml_str(
        "[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"bench\"\n[server]\nmax_concurrent_requests = 1024\n",
    )
    .unwrap();
    let creds = config
        .credentials(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let uploader = Arc::new(SlowSandbox {
        latency: Duration::from_millis(50),
    });
    let pipeline = Pipeline::from_config(&config, uploader, creds);
    let spool: Arc<dyn Spool> = Arc::new(SqliteSpool::open(&spool_path).unwrap());
    let worker = Worker::new(
        Arc::clone(&spool),
        Arc::clone(pipeline.deliverer()),
        config.worker_settings(),
    );
    let intake = Intake::new(Arc::clone(&spool), worker.clone(), config.intake_settings());
    let state = AppState::new(pipeline)
        .with_settings(clevertap_etl_axum::ServiceSettings::from_config(
            &config.server,
            Default::default(),
        ))
        .with_intake(intake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/clevertap",
        listener.local_addr().unwrap()
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stopped_server = stopped.clone();
    let server = tokio::spawn(serve(listener, app(state), async move {
        let _ = stopped_server.wait_for(|s| *s).await;
    }));
    let mut stopped_worker = stopped;
    let worker_task = tokio::spawn(worker.run(async move {
        let _ = stopped_worker.wait_for(|s| *s).await;
    }));
    clevertap_etl_core::upload::ensure_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(clients * 2)
        .build()
        .unwrap();

    println!(
        "durable intake: spool {} (WAL, synchronous = FULL), CleverTap = sandbox + 50 ms",
        spool_path.display()
    );

    // (1) Answer time of big webhooks while deliveries run.
    let mut times = Vec::with_capacity(big_webhooks);
    let started = Instant::now();
    for i in 0..big_webhooks + 5 {
        let body = payload(&format!("big{i}"), 1000);
        let t = Instant::now();
        let response = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
        let _ = response.bytes().await.unwrap();
        if i >= 5 {
            // The first few warm up connections and caches.
            times.push(t.elapsed());
        }
    }
    let sending = started.elapsed();
    let waiting = spool.pending_records().await.unwrap();
    times.sort();
    println!(
        "(1) {} webhooks of 1,000 profiles (2,000 records each), one after another, deliveries \
         running: answer p50 {}, p99 {}, max {} (target p99 ≤ 50 ms); {} records still waiting \
         after {:.1} s",
        times.len(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap()),
        waiting,
        sending.as_secs_f64()
    );

    // (2) Throughput of small webhooks from concurrent clients.
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, next) = (client.clone(), url.clone(), Arc::clone(&next));
        tasks.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= small_webhooks {
                    return times;
                }
                let body = payload(&format!("small{i}"), 10);
                let t = Instant::now();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200, "{:?}", response.text().await);
                let _ = response.bytes().await.unwrap();
                times.push(t.elapsed());
            }
        }));
    }
    let mut times = Vec::new();
    for t in tasks {
        times.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    times.sort();
    println!(
        "(2) {} webhooks of 10 profiles from {} clients in {:.2} s: {:.0} webhooks/s \
         (target ≥ 2,000/s); answer p50 {}, p99 {}",
        small_webhooks,
        clients,
        elapsed.as_secs_f64(),
        small_webhooks as f64 / elapsed.as_secs_f64(),
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
    );

    stop.send(true).unwrap();
    server.await.unwrap().unwrap();
    worker_task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
