//! Observability: metrics that move, readiness that follows CleverTap's answers.

use axum::http::StatusCode;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{app_and_metrics, get, post, seed, send, SEED_ACCOUNT};

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_webhooks_records_and_uploads() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []})),
        )
        .mount(&server)
        .await;
    let (app, _) = app_and_metrics(&server, SEED_ACCOUNT);
    let (_, _, before) = send(app.clone(), get("/metrics")).await;
    let before = before.as_str().unwrap().to_owned();
    assert_eq!(
        metric(
            &before,
            "clevertap_etl_webhooks_total{outcome=\"delivered\"}"
        ),
        None
    );
    post(app.clone(), "/webhooks/clevertap", seed()).await;
    post(app.clone(), "/webhooks/clevertap", b"{}".to_vec()).await;
    let (_, _, after) = send(app, get("/metrics")).await;
    let after = after.as_str().unwrap();
    assert_eq!(
        metric(after, "clevertap_etl_webhooks_total{outcome=\"delivered\"}"),
        Some(1.0),
        "{after}"
    );
    assert_eq!(
        metric(
            after,
            "clevertap_etl_webhooks_total{outcome=\"invalid_payload\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(after, "clevertap_etl_records_total{outcome=\"processed\"}"),
        Some(2.0)
    );
    assert_eq!(
        metric(after, "clevertap_etl_upload_requests_total{status=\"200\"}"),
        Some(1.0)
    );
    assert_eq!(
        metric(after, "clevertap_etl_webhook_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            after,
            "clevertap_etl_upload_in_flight{account=\"W44-Z4K-K65Z\"}"
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn readyz_turns_unready_when_clevertap_refuses_the_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(
                json!({"status": "fail", "error": "Invalid Credentials", "code": 401}),
            ),
        )
        .mount(&server)
        .await;
    let (app, _) = app_and_metrics(&server, SEED_ACCOUNT);
    let (status, _, _) = send(app.clone(), get("/readyz")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, report) = post(app.clone(), "/webhooks/clevertap", seed()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["state"], "failed");
    let (status, _, body) = send(app, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["ready"], false);
    assert!(body["checks"]["accounts"]
        .as_str()
        .unwrap()
        .contains("W44-Z4K-K65Z"));
    assert!(!body.to_string().contains("CONFIG-PASSCODE"));
}
