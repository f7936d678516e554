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
    let config = temp_file(
        "secrets.toml",
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode_env = \"CT_IT_PASSCODE\"\n\
             [server.auth]\nusername = \"clevertap\"\npassword_env = \"CT_IT_AUTH_PW\"\ntoken_env = \"CT_IT_TOKEN\"\n",
            server.uri()
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
    for auth in [
        basic.clone(),
        format!("Bearer {TOKEN}"),
        "Bearer wrong".to_owned(),
        basic,
    ] {
        let r = http
            .post(format!("{}/webhooks/clevertap", service.url))
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .unwrap();
        seen.push_str(&format!("{:?}\n", r.headers()));
        seen.push_str(&r.text().await.unwrap());
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
    assert!(seen.contains("webhook handled"), "the run logged: {seen}");
    for secret in [PASSCODE, PAYLOAD_PASSCODE, AUTH_PASSWORD, TOKEN] {
        assert!(!seen.contains(secret), "{secret} leaked:\n{seen}");
    }
    // CleverTap did get the configured passcode, and only that one.
    let received = server.received_requests().await.unwrap();
    assert!(received
        .iter()
        .all(|r| r.headers["x-clevertap-passcode"] == PASSCODE));
}
