//! No secret ever leaves the service: a full run at trace level, with every kind of secret in
//! play, and a grep of everything it wrote.

use std::process::Stdio;

use base64::Engine;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::serve::start_logging;
use crate::support::{client, temp_file};

const PASSCODE: &str = "CFG-PASSCODE-7f3a";
const PAYLOAD_PASSCODE: &str = "PAYLOAD-PASSCODE-91bc";
const AUTH_PASSWORD: &str = "AUTH-PASSWORD-5d2e";
const TOKEN: &str = "AUTH-TOKEN-c81f";

#[tokio::test]
async fn no_secret_appears_in_logs_answers_or_metrics() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 509, "error": "Event name is mandatory. Skipped record number : 2", "record": {}}]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"status": "fail", "error": "Invalid Credentials", "code": 401}),
            ),
        )
        .mount(&server)
        .await;
    let spool = temp_file("secrets-spool.sqlite", "");
    std::fs::remove_file(&spool).unwrap();
    let config = temp_file(
        "secrets.toml",
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode_env = \"CT_IT_PASSCODE\"\n\
             [server.auth]\nusername = \"clevertap\"\npassword_env = \"CT_IT_AUTH_PW\"\ntoken_env = \"CT_IT_TOKEN\"\n\
             [delivery]\nspool = \"{}\"\nmax_attempts = 1\n",
            server.uri(),
            spool.display()
        ),
    );
    let log = temp_file("secrets.log", "");
    let service = start_logging(
        &["--config", config.to_str().unwrap()],
        &[
            ("CT_IT_PASSCODE", PASSCODE),
            ("CT_IT_AUTH_PW", AUTH_PASSWORD),
            ("CT_IT_TOKEN", TOKEN),
            ("RUST_LOG", "trace"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let http = client();
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("clevertap:{AUTH_PASSWORD}"))
    );
    let payload = json!({"key_values": {"target_account": "W44-Z4K-K65Z", "target_passcode": PAYLOAD_PASSCODE},
                         "profiles": [{"objectId": "__s1", "profileData": {"a": 1}, "event_properties": {"b": 2}}]});
    let mut seen = String::new();
    let mut ids = Vec::new();
    let auths = [
        basic.clone(),
        format!("Bearer {TOKEN}"),
        "Bearer wrong".to_owned(),
        basic.clone(),
    ];
    // Distinct bodies, so none is answered as a duplicate of another.
    for (i, auth) in auths.into_iter().enumerate() {
        let mut payload = payload.clone();
        payload["targetId"] = json!(i);
        let r = http
            .post(format!("{}/webhooks/clevertap", service.url))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .unwrap();
        seen.push_str(&format!("{:?}\n", r.headers()));
        let text = r.text().await.unwrap();
        if let Some(id) = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["delivery_id"].as_str().map(str::to_owned))
        {
            ids.push(id);
        }
        seen.push_str(&text);
    }
    assert_eq!(ids.len(), 3, "three calls were authenticated");
    // Let the worker deliver (one partial, then 401s), then read every report.
    for id in &ids {
        for _ in 0..500 {
            let report = http
                .get(format!("{}/v1/deliveries/{id}", service.url))
                .header("authorization", &basic)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if !report.contains("\"state\":\"pending\"") {
                seen.push_str(&report);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    for path in ["/metrics", "/readyz", "/healthz"] {
        seen.push_str(
            &http
                .get(format!("{}{path}", service.url))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    drop(service);
    seen.push_str(&std::fs::read_to_string(&log).unwrap());
    assert!(
        seen.contains("Invalid Credentials"),
        "the 401 was reported: {seen}"
    );
    // The spool and its journal, byte for byte.
    let mut stored = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{}{suffix}", spool.display())) {
            stored.extend(bytes);
        }
    }
    assert!(!stored.is_empty());
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("__s1"), "the payload was spooled");
    assert!(seen.contains("webhook handled"), "the run logged: {seen}");
    for secret in [PASSCODE, PAYLOAD_PASSCODE, AUTH_PASSWORD, TOKEN] {
        assert!(!seen.contains(secret), "{secret} leaked:\n{seen}");
        assert!(!stored.contains(secret), "{secret} reached the spool");
    }
    // CleverTap did get the configured passcode, and only that one.
    let received = server.received_requests().await.unwrap();
    assert!(received
        .iter()
        .all(|r| r.headers["x-clevertap-passcode"] == PASSCODE));
}
