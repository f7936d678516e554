//! `serve`: the binary as a service, against a fake CleverTap.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{bin, client, example, temp_file};

/// A running `serve`, killed on drop.
struct Service {
    child: Child,
    url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
    let mut child = bin()
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    Service { child, url }
}

#[tokio::test]
async fn serve_delivers_the_seed_to_the_configured_clevertap() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .and(header("X-CleverTap-Account-Id", "W44-Z4K-K65Z"))
        .and(header("X-CleverTap-Passcode", "FROM-ENV-123"))
        .and(header("Content-Type", "application/json"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let config = temp_file(
        "serve.toml",
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode_env = \"CT_TEST_PASSCODE\"\n[delivery]\nmode = \"sync\"\n",
            server.uri()
        ),
    );
    let service = start(
        &["--config", config.to_str().unwrap()],
        &[("CT_TEST_PASSCODE", "FROM-ENV-123")],
    );
    let report: Value = client()
        .post(format!("{}/webhooks/clevertap", service.url))
        .body(std::fs::read(example("payloads/seed.json")).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["state"], "delivered", "{report}");
    assert_eq!(report["counts"]["processed"], 2);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["d"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn serve_sandbox_needs_no_config() {
    let service = start(&["--sandbox"], &[]);
    let report: Value = client()
        .post(format!("{}/webhooks/clevertap", service.url))
        .body(std::fs::read(example("payloads/restricted-event.json")).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["state"], "partial", "{report}");
    assert_eq!(report["failures"][0]["code"], 513);
}

#[test]
fn serve_without_the_passcode_variable_exits_2() {
    let config = temp_file(
        "noenv.toml",
        "[[accounts]]\nid = \"A\"\npasscode_env = \"CT_SURELY_UNSET_VAR\"\n",
    );
    let out = bin()
        .args([
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("CT_SURELY_UNSET_VAR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("accounts[0].passcode_env"));
}
