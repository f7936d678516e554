//! `POST /webhooks/clevertap`: the full loop against a fake CleverTap.

use axum::http::StatusCode;
use serde_json::{json, Value};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{app_for, post, seed, SEED_ACCOUNT};

fn success(n: u64) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "processed": n, "unprocessed": []}))
}

#[tokio::test]
async fn seed_payload_is_delivered_with_the_configured_passcode() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/1/upload"))
        .and(header("X-CleverTap-Account-Id", "W44-Z4K-K65Z"))
        .and(header("X-CleverTap-Passcode", "CONFIG-PASSCODE"))
        .respond_with(success(2))
        .expect(1)
        .mount(&server)
        .await;
    let (status, report) = post(
        app_for(&server, SEED_ACCOUNT),
        "/webhooks/clevertap",
        seed(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["state"], "delivered");
    assert_eq!(report["target_id"], 1_589_621_729);
    assert_eq!(
        report["counts"],
        json!({"planned": 2, "processed": 2, "rejected": 0, "skipped": 0, "pending": 0, "dead": 0})
    );
    assert!(report["delivery_id"]
        .as_str()
        .is_some_and(|id| !id.is_empty()));
    let received = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&received[0].body).unwrap();
    let types: Vec<_> = body["d"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].clone())
        .collect();
    assert_eq!(types, [json!("profile"), json!("event")]);
    // The payload's own passcode was ignored (allow_payload_credentials is off).
    assert!(!String::from_utf8_lossy(&received[0].body).contains("IAA-ZAB-GEKL"));
}

#[tokio::test]
async fn partial_answer_reports_the_rejected_record() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 509, "error": "Event name is mandatory. Skipped record number : 2", "record": {}}]})))
        .mount(&server)
        .await;
    let (status, report) = post(
        app_for(&server, SEED_ACCOUNT),
        "/webhooks/clevertap",
        seed(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["state"], "partial");
    assert_eq!(report["counts"]["processed"], 1);
    assert_eq!(report["counts"]["rejected"], 1);
    let failure = &report["failures"][0];
    assert_eq!(failure["stage"], "upload");
    assert_eq!(failure["code"], 509);
    assert_eq!(failure["record"]["type"], "event");
    assert!(failure["reason"]
        .as_str()
        .unwrap()
        .contains("Event name is mandatory"));
}

#[tokio::test]
async fn invalid_payload_is_400_with_the_json_path() {
    let server = MockServer::start().await;
    let body = br#"{"profiles": [{"objectId": "__a"}, {"profileData": [1, 2]}]}"#.to_vec();
    let (status, answer) = post(app_for(&server, SEED_ACCOUNT), "/webhooks/clevertap", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"]["code"], "invalid_payload");
    assert_eq!(answer["error"]["path"], "profiles[1].profileData");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn unconfigured_account_is_422_and_nothing_is_sent() {
    let server = MockServer::start().await;
    let body =
        br#"{"key_values": {"target_account": "OTHER-ACC"}, "profiles": [{"objectId": "__a"}]}"#
            .to_vec();
    let (status, answer) = post(app_for(&server, SEED_ACCOUNT), "/webhooks/clevertap", body).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer["error"]["code"], "unknown_account");
    assert_eq!(answer["error"]["path"], "key_values.target_account");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("OTHER-ACC"));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn payload_credentials_are_used_only_when_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header("X-CleverTap-Account-Id", "PAYLOAD-ACC"))
        .and(header("X-CleverTap-Passcode", "PAYLOAD-PASS"))
        .respond_with(success(2))
        .expect(1)
        .mount(&server)
        .await;
    let body =
        br#"{"key_values": {"target_account": "PAYLOAD-ACC", "target_passcode": "PAYLOAD-PASS"},
                    "profiles": [{"objectId": "__a"}]}"#
            .to_vec();
    let config = format!(
        "{SEED_ACCOUNT}[routing]\nallow_payload_credentials = true\n[delivery]\nmode = \"sync\"\n"
    );
    let (status, report) = post(app_for(&server, &config), "/webhooks/clevertap", body).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["state"], "delivered");
    assert!(!report.to_string().contains("PAYLOAD-PASS"));
}

#[tokio::test]
async fn test_call_uploads_nothing() {
    let server = MockServer::start().await;
    let body = br#"{"is_test": true, "profiles": [{"Identity": "t", "ObjectId": "__t", "Email": "t@example.com"}]}"#.to_vec();
    let (status, report) = post(app_for(&server, SEED_ACCOUNT), "/webhooks/clevertap", body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["state"], "test");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn transform_route_previews_without_uploading() {
    let server = MockServer::start().await;
    let (status, preview) = post(app_for(&server, SEED_ACCOUNT), "/v1/transform", seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(preview["uploads"][0]["account_id"], "W44-Z4K-K65Z");
    assert_eq!(
        preview["uploads"][0]["body"]["d"].as_array().unwrap().len(),
        2
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn healthz_answers() {
    let server = MockServer::start().await;
    let app = app_for(&server, "");
    let response = tower::ServiceExt::oneshot(
        app,
        axum::http::Request::get("/healthz")
            .body(axum::body::Body::empty())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
