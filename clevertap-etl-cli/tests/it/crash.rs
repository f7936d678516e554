//! Durable intake across restarts of the real binary: stopped with SIGTERM or killed with
//! SIGKILL while a slow CleverTap holds an upload, then started again on the same spool.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::serve::{settled, start, Service};
use crate::support::client;

const WEBHOOKS: usize = 6;
const PROFILES: usize = 2;

/// A temp dir for one test's spool and configuration, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "clevertap-etl-cli-it-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake CleverTap that processes everything after `delay`.
async fn slow_clevertap(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 4, "unprocessed": []}))
                .set_delay(delay),
        )
        .mount(&server)
        .await;
    server
}

/// Async mode over a spool in `dir`; four records per request and one request in flight at a
/// time, so each worker round is exactly one upload.
fn config(dir: &TempDir, server: &MockServer) -> String {
    let spool = dir.0.join("spool.sqlite");
    let path = dir.0.join("serve.toml");
    std::fs::write(
        &path,
        format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"p\"\n\
             [delivery]\nmode = \"async\"\nspool = \"{}\"\nbatch_size = 4\nmax_concurrency = 1\n\
             backoff_base_ms = 1\nbackoff_max_ms = 2\n",
            server.uri(),
            spool.display()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

/// Webhook `w` carries profiles `w{w}-p0`, `w{w}-p1`: unique identities, so every record sent can
/// be counted.
fn webhook(w: usize) -> Vec<u8> {
    let profiles: Vec<Value> = (0..PROFILES)
        .map(|p| json!({"objectId": format!("w{w}-p{p}"), "profileData": {"n": p}, "event_properties": {"n": p}}))
        .collect();
    json!({"targetId": 9, "profiles": profiles})
        .to_string()
        .into_bytes()
}

/// Sends every webhook; returns their delivery ids.
async fn send_all(service: &Service) -> Vec<String> {
    let mut ids = Vec::new();
    for w in 0..WEBHOOKS {
        let answer: Value = client()
            .post(format!("{}/webhooks/clevertap", service.url))
            .header("content-type", "application/json")
            .body(webhook(w))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["state"], "pending", "{answer}");
        ids.push(answer["delivery_id"].as_str().unwrap().to_owned());
    }
    ids
}

/// Waits until CleverTap has received `n` uploads.
async fn received_at_least(server: &MockServer, n: usize) {
    for _ in 0..2000 {
        if server.received_requests().await.unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("CleverTap never received {n} uploads");
}

/// Each upload's records, as their JSON text.
async fn uploads(server: &MockServer) -> Vec<Vec<String>> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["d"]
                .as_array()
                .unwrap()
                .iter()
                .map(Value::to_string)
                .collect()
        })
        .collect()
}

/// How many times each record was sent.
fn sends(uploads: &[Vec<String>]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for record in uploads.iter().flatten() {
        *counts.entry(record.clone()).or_default() += 1;
    }
    counts
}

/// Every delivery ends with all its records processed (the fake processes everything).
async fn all_delivered(service: &Service, ids: &[String]) {
    for id in ids {
        let report = settled(&service.url, id).await;
        assert_eq!(report["state"], "delivered", "{report}");
        assert_eq!(report["counts"]["processed"], (PROFILES * 2) as u64);
        assert_eq!(report["counts"]["pending"], 0);
    }
}

fn signal(service: &Service, sig: &str) {
    let pid = service.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap()
        .success());
}

#[tokio::test]
async fn sigterm_mid_delivery_then_restart_loses_nothing_and_sends_nothing_twice() {
    let dir = TempDir::new("crash-sigterm");
    let server = slow_clevertap(Duration::from_millis(300)).await;
    let config = config(&dir, &server);
    let mut first = start(&["--config", &config], &[]);
    let ids = send_all(&first).await;
    received_at_least(&server, 1).await;
    signal(&first, "-TERM");
    let status = first.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let before = uploads(&server).await;
    assert!(
        before.len() < WEBHOOKS * PROFILES * 2 / 4,
        "the first run should have stopped mid-delivery"
    );

    let second = start(&["--config", &config], &[]);
    all_delivered(&second, &ids).await;
    let counts = sends(&uploads(&server).await);
    assert_eq!(
        counts.len(),
        WEBHOOKS * PROFILES * 2,
        "every record was sent"
    );
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "sent twice after a graceful stop: {twice:?}"
    );
}

#[tokio::test]
async fn kill_9_mid_delivery_resends_at_most_the_request_in_flight() {
    let dir = TempDir::new("crash-kill");
    let server = slow_clevertap(Duration::from_millis(300)).await;
    let config = config(&dir, &server);
    let mut first = start(&["--config", &config], &[]);
    let ids = send_all(&first).await;
    received_at_least(&server, 2).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // Only the last upload can have been in flight: with one request at a time, the worker sends
    // the next only after storing the outcomes of the previous.
    let before = uploads(&server).await;
    let in_flight: HashSet<String> = before.last().unwrap().iter().cloned().collect();
    assert!(
        before.len() < WEBHOOKS * PROFILES * 2 / 4,
        "killed mid-delivery"
    );

    let second = start(&["--config", &config], &[]);
    all_delivered(&second, &ids).await;
    let counts = sends(&uploads(&server).await);
    assert_eq!(
        counts.len(),
        WEBHOOKS * PROFILES * 2,
        "every record was sent"
    );
    for (record, n) in &counts {
        assert!(*n <= 2, "{record} sent {n} times");
        if *n == 2 {
            assert!(
                in_flight.contains(record),
                "{record} was sent again but was not in flight at the kill"
            );
        }
    }
}
