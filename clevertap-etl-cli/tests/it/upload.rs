//! `upload`: backfill against a fake CleverTap.

use std::fmt::Write as _;

use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{bin, example, stderr, stdout, temp_file};

fn config_for(server: &MockServer, name: &str) -> std::path::PathBuf {
    temp_file(
        name,
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"p\"\n[transform]\nidentifiers = [\"identity\"]\n",
            server.uri()
        ),
    )
}

async fn success_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(move |req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap();
            let n = body["d"].as_array().unwrap().len();
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": n, "unprocessed": []}))
        })
        .mount(&server)
        .await;
    server
}

fn jsonl(profiles: usize) -> String {
    let mut text = String::new();
    for i in 0..profiles {
        writeln!(text, r#"{{"identity": "u{i}", "profileData": {{"n": {i}}}, "event_properties": {{"i": {i}}}}}"#).unwrap();
    }
    text
}

#[tokio::test]
async fn jsonl_backfill_streams_in_chunks_and_exits_0() {
    let server = success_server().await;
    let config = config_for(&server, "up-ok.toml");
    let data = temp_file("profiles.jsonl", &jsonl(2500));
    let out = bin()
        .args([
            "upload",
            data.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--chunk-profiles",
            "1000",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["state"], "delivered");
    assert_eq!(report["counts"]["planned"], 5000);
    assert_eq!(report["counts"]["processed"], 5000);
    let received = server.received_requests().await.unwrap();
    let records: usize = received
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["d"]
                .as_array()
                .unwrap()
                .len()
        })
        .sum();
    assert_eq!(records, 5000);
    assert!(received
        .iter()
        .all(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["d"]
            .as_array()
            .unwrap()
            .len()
            <= 1000));
}

#[tokio::test]
async fn partial_answer_exits_1_with_the_failures_listed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 509, "error": "Event name is mandatory. Skipped record number : 2", "record": {}}]})))
        .mount(&server)
        .await;
    let config = temp_file(
        "up-partial.toml",
        &format!("[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"p\"\n", server.uri()),
    );
    let out = bin()
        .args([
            "upload",
            example("payloads/seed.json").to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["state"], "partial");
    assert_eq!(report["failures"][0]["code"], 509);
}

#[tokio::test]
async fn bad_input_exits_2_naming_file_line_and_path_but_sends_the_good_lines() {
    let server = success_server().await;
    let config = config_for(&server, "up-bad.toml");
    let data = temp_file(
        "mixed.jsonl",
        &format!(
            "{}{{\"identity\": \"x\", \"profileData\": [1]}}\nnot json\n",
            jsonl(2)
        ),
    );
    let out = bin()
        .args([
            "upload",
            data.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("mixed.jsonl:3") && err.contains("profileData"),
        "{err}"
    );
    assert!(err.contains("mixed.jsonl:4"), "{err}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["counts"]["processed"], 4,
        "the two good profiles were delivered"
    );
    assert_eq!(report["input_errors"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn dry_run_sends_nothing() {
    let server = success_server().await;
    let config = config_for(&server, "up-dry.toml");
    let data = temp_file("dry.jsonl", &jsonl(10));
    let out = bin()
        .args([
            "upload",
            data.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["counts"]["planned"], 20);
    assert!(server.received_requests().await.unwrap().is_empty());
    assert!(stdout(&out).contains("\"pending\": 20"));
}

#[tokio::test]
async fn refused_credentials_exit_3() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"status": "fail", "error": "Invalid Credentials", "code": 401}),
            ),
        )
        .mount(&server)
        .await;
    let config = config_for(&server, "up-401.toml");
    let data = temp_file("auth.jsonl", &jsonl(3));
    let out = bin()
        .args([
            "upload",
            data.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
}
