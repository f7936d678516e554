//! The reqwest uploader against a wiremock CleverTap: headers, body, and every kind of answer.

use std::time::Duration;

use clevertap_etl_core::record::{EventRecord, Identifier, ResponseStatus};
use clevertap_etl_core::{
    Endpoint, HttpUploader, HttpUploaderConfig, UploadBody, UploadError, UploadRecord, Uploader,
};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::credentials;

fn uploader(server: &MockServer, timeout: Duration) -> HttpUploader {
    HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(server.uri()),
        timeout,
    })
    .unwrap()
}

fn body() -> UploadBody {
    UploadBody {
        d: vec![UploadRecord::Event(EventRecord {
            identifier: Identifier::Identity("42".into()),
            ts: None,
            evt_name: "From Webhook".into(),
            evt_data: serde_json::Map::new(),
        })],
    }
}

#[tokio::test]
async fn sends_headers_and_body_and_reads_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .and(header("X-CleverTap-Account-Id", "ACC-1"))
        .and(header("X-CleverTap-Passcode", "SECRET-1"))
        .and(header("Content-Type", "application/json"))
        .and(body_json(json!({"d": [{"type": "event", "identity": "42", "evtName": "From Webhook", "evtData": {}}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "success", "processed": 1, "unprocessed": []})))
        .expect(1)
        .mount(&server)
        .await;
    let reply = uploader(&server, Duration::from_secs(5))
        .upload(&credentials("ACC-1", "SECRET-1"), &body())
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.unwrap().status, ResponseStatus::Success);
}

#[tokio::test]
async fn parses_partial_on_http_200() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "partial", "processed": 0,
            "unprocessed": [{"status": "fail", "code": 509, "error": "Event name is mandatory. Skipped record number : 1", "record": {}}]})))
        .mount(&server)
        .await;
    let reply = uploader(&server, Duration::from_secs(5))
        .upload(&credentials("ACC-1", "S"), &body())
        .await
        .unwrap();
    let parsed = reply.body.unwrap();
    assert_eq!(parsed.status, ResponseStatus::Partial);
    assert_eq!(parsed.unprocessed[0].code, Some(509));
    assert_eq!(parsed.unprocessed[0].skipped_index(), Some(0));
}

#[tokio::test]
async fn reports_401_and_500_with_their_body() {
    for (status, text) in [
        (
            401,
            r#"{"status":"fail","error":"Invalid Credentials","code":401}"#,
        ),
        (500, "upstream exploded"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .set_body_string(text)
                    .insert_header("Retry-After", "7"),
            )
            .mount(&server)
            .await;
        let reply = uploader(&server, Duration::from_secs(5))
            .upload(&credentials("ACC-1", "S3CR3T"), &body())
            .await
            .unwrap();
        assert_eq!(reply.status, status);
        assert_eq!(reply.retry_after, Some(Duration::from_secs(7)));
        let message = reply.message();
        assert!(
            message.contains(if status == 401 {
                "Invalid Credentials"
            } else {
                "upstream exploded"
            }),
            "{message}"
        );
        assert!(!format!("{reply:?}").contains("S3CR3T"));
    }
}

#[tokio::test]
async fn times_out_and_refused_connections_are_errors_without_secrets() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let err = uploader(&server, Duration::from_millis(200))
        .upload(&credentials("ACC-1", "S3CR3T"), &body())
        .await
        .unwrap_err();
    assert!(matches!(err, UploadError::Timeout(_)), "{err:?}");
    assert!(err.is_retryable());

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let err = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(format!("http://{addr}")),
        timeout: Duration::from_secs(2),
    })
    .unwrap()
    .upload(&credentials("ACC-1", "S3CR3T"), &body())
    .await
    .unwrap_err();
    assert!(matches!(err, UploadError::Connect { .. }), "{err:?}");
    assert!(!err.to_string().contains("S3CR3T"));
}
