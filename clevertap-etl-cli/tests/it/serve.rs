//! `serve`: the binary as a service, against a fake CleverTap.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{bin, client, example, get_json, post_json, temp_file};

/// A running `serve`, killed on drop.
pub(crate) struct Service {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn start(args: &[&str], env: &[(&str, &str)]) -> Service {
    start_logging(args, env, Stdio::null())
}

/// Starts `serve` with its standard error going to `stderr`.
pub(crate) fn start_logging(args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Service {
    let mut child = bin()
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("CLEVERTAP_ETL_CONFIG")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    out.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    // Keep draining stdout so the service never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
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
    let report: Value = post_json(
        &format!("{}/webhooks/clevertap", service.url),
        std::fs::read(example("payloads/seed.json")).unwrap(),
    )
    .await;
    assert_eq!(report["state"], "delivered", "{report}");
    assert_eq!(report["counts"]["processed"], 2);
    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert_eq!(body["d"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn serve_sandbox_needs_no_config_and_reports_through_the_deliveries_api() {
    let service = start(&["--sandbox"], &[]);
    let answer: Value = post_json(
        &format!("{}/webhooks/clevertap", service.url),
        std::fs::read(example("payloads/restricted-event.json")).unwrap(),
    )
    .await;
    assert_eq!(answer["state"], "pending", "{answer}");
    let report = settled(&service.url, answer["delivery_id"].as_str().unwrap()).await;
    assert_eq!(report["state"], "partial", "{report}");
    assert_eq!(report["failures"][0]["code"], 513);
    let list: Value = get_json(&format!("{}/v1/deliveries?state=partial", service.url)).await;
    assert_eq!(list["deliveries"][0]["delivery_id"], answer["delivery_id"]);
    // The worker's outcomes reach the metrics too (the profile record was processed).
    let metrics = client()
        .get(format!("{}/metrics", service.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("clevertap_etl_records_total{outcome=\"processed\"} 1"),
        "{metrics}"
    );
}

/// Polls a delivery until the worker has settled it.
pub(crate) async fn settled(base: &str, id: &str) -> Value {
    for _ in 0..500 {
        let report: Value = get_json(&format!("{base}/v1/deliveries/{id}")).await;
        if report["state"] != "pending" {
            return report;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("delivery {id} never settled");
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

#[test]
fn serve_refuses_a_public_address_without_auth() {
    let out = bin()
        .args(["serve", "--sandbox", "--listen", "0.0.0.0:0"])
        .env_remove("CLEVERTAP_ETL_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("server.auth") && err.contains("allow_unauthenticated"),
        "{err}"
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []}))
                .set_delay(std::time::Duration::from_millis(1500)),
        )
        .mount(&server)
        .await;
    let config = temp_file(
        "shutdown.toml",
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"p\"\n[delivery]\nmode = \"sync\"\n",
            server.uri()
        ),
    );
    let mut service = start(&["--config", config.to_str().unwrap()], &[]);
    let url = format!("{}/webhooks/clevertap", service.url);
    let request = tokio::spawn(async move {
        client()
            .post(url)
            .body(std::fs::read(example("payloads/seed.json")).unwrap())
            .send()
            .await
    });
    // Once CleverTap has the upload, the request is in flight: ask the service to stop.
    for _ in 0..400 {
        if !server.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let pid = service.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let response = request.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["state"], "delivered");
    let status = service.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn send_plays_clevertap_against_the_sandbox_service() {
    let service = start(&["--sandbox"], &[]);
    let url = format!("{}/webhooks/clevertap", service.url);
    let seed = example("payloads/seed.json");
    let out = bin()
        .args(["send", seed.to_str().unwrap(), "--url", &url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("HTTP 200"), "{text}");
    // Async mode (the default): stored, answered at once, delivered in the background.
    assert!(
        text.contains("\"pending\"") && text.contains("\"delivery_id\""),
        "{text}"
    );

    let out = bin()
        .args([
            "send",
            seed.to_str().unwrap(),
            "--url",
            &url,
            "--repeat",
            "20",
            "--concurrency",
            "4",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("requests   20 in"), "{text}");
    assert!(text.contains("statuses   200: 20"), "{text}");
    assert!(text.contains("p99"), "{text}");
}

#[test]
fn send_reports_refusals_and_unreachable_services() {
    let service = start(&["--sandbox"], &[]);
    let bad = temp_file("send-bad.json", r#"{"profiles": "nope"}"#);
    let out = bin()
        .args([
            "send",
            bad.to_str().unwrap(),
            "--url",
            &format!("{}/webhooks/clevertap", service.url),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("HTTP 400"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let out = bin()
        .args([
            "send",
            example("payloads/seed.json").to_str().unwrap(),
            "--url",
            &format!("http://{addr}/webhooks/clevertap"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test]
async fn deliveries_command_lists_shows_and_retries_from_the_spool() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let spool = temp_file("deliveries-spool.sqlite", "");
    std::fs::remove_file(&spool).unwrap();
    let config = temp_file(
        "deliveries.toml",
        &format!(
            "[clevertap]\napi_base_url = \"{}\"\n[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"p\"\n\
             [delivery]\nspool = \"{}\"\nmax_attempts = 1\n",
            server.uri(),
            spool.display()
        ),
    );
    let config = config.to_str().unwrap();
    let id = {
        let service = start(&["--config", config], &[]);
        let answer: Value = post_json(
            &format!("{}/webhooks/clevertap", service.url),
            std::fs::read(example("payloads/seed.json")).unwrap(),
        )
        .await;
        let id = answer["delivery_id"].as_str().unwrap().to_owned();
        let report = settled(&service.url, &id).await;
        assert_eq!(
            (report["state"].as_str(), report["counts"]["dead"].as_u64()),
            (Some("failed"), Some(2))
        );
        id
    };
    let run = |args: &[&str]| {
        bin()
            .args(["deliveries", "--config", config])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["list", "--state", "dead"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list["deliveries"][0]["delivery_id"], id.as_str());
    let out = run(&["show", &id]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failures"][0]["code"], 503);
    let out = run(&["retry", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            report["state"].as_str(),
            report["counts"]["pending"].as_u64()
        ),
        (Some("pending"), Some(2))
    );
    let out = run(&["show", "no-such-id"]);
    assert_eq!(out.status.code(), Some(2));
}
