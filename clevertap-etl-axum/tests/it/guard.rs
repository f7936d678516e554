//! Authentication and limits: 401, 413, 415, 503.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use serde_json::json;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{app_for, get, seed, send, SEED_ACCOUNT};

const AUTH: &str =
    "[server.auth]\nusername = \"clevertap\"\npassword = \"pw-123\"\ntoken = \"tok-456\"\n";

fn webhook(auth: Option<&str>, content_type: &str, body: Vec<u8>) -> Request<Body> {
    let mut r = Request::post("/webhooks/clevertap").header("content-type", content_type);
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.body(Body::from(body)).unwrap()
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

async fn ok_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []})),
        )
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn webhook_needs_the_configured_credentials() {
    let server = ok_server().await;
    let app = app_for(&server, &format!("{SEED_ACCOUNT}{AUTH}"));
    for (auth, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(basic("clevertap", "wrong")), StatusCode::UNAUTHORIZED),
        (Some("Bearer nope".to_owned()), StatusCode::UNAUTHORIZED),
        (Some(basic("clevertap", "pw-123")), StatusCode::OK),
        (Some("Bearer tok-456".to_owned()), StatusCode::OK),
    ] {
        let (status, headers, body) = send(
            app.clone(),
            webhook(auth.as_deref(), "application/json", seed()),
        )
        .await;
        assert_eq!(status, want, "{auth:?}: {body}");
        if want == StatusCode::UNAUTHORIZED {
            let challenge = headers["www-authenticate"].to_str().unwrap();
            assert!(
                challenge.contains("Basic") && challenge.contains("Bearer"),
                "{challenge}"
            );
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    // Two accepted calls reached CleverTap; the refused ones did not.
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn health_and_metrics_stay_open() {
    let server = ok_server().await;
    let app = app_for(&server, &format!("{SEED_ACCOUNT}{AUTH}"));
    for uri in ["/healthz", "/readyz", "/metrics"] {
        let (status, _, _) = send(app.clone(), get(uri)).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
    }
    let (status, _, _) = send(
        app,
        Request::post("/v1/transform")
            .body(Body::from(seed()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let server = ok_server().await;
    let app = app_for(
        &server,
        &format!("{SEED_ACCOUNT}[server]\nmax_body_bytes = 64\n"),
    );
    let (status, _, body) = send(app, webhook(None, "application/json", seed())).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let server = ok_server().await;
    let app = app_for(&server, SEED_ACCOUNT);
    let (status, _, body) = send(app.clone(), webhook(None, "text/plain", seed())).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    let (status, _, _) = send(
        app,
        webhook(None, "application/json; charset=utf-8", seed()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn past_the_concurrency_limit_requests_are_shed_with_503() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "success", "processed": 2, "unprocessed": []}))
                .set_delay(Duration::from_millis(800)),
        )
        .mount(&server)
        .await;
    let app = app_for(
        &server,
        &format!("{SEED_ACCOUNT}[server]\nmax_concurrent_requests = 1\n"),
    );
    let slow = tokio::spawn(send(app.clone(), webhook(None, "application/json", seed())));
    // Wait until the first request is with CleverTap, then send a second one.
    for _ in 0..200 {
        if !server.received_requests().await.unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (status, headers, body) = send(app, webhook(None, "application/json", seed())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "overloaded");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(slow.await.unwrap().0, StatusCode::OK);
}

#[tokio::test]
async fn a_request_past_the_timeout_is_503() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let app = app_for(
        &server,
        &format!("{SEED_ACCOUNT}[server]\nrequest_timeout_secs = 1\n"),
    );
    let (status, _, body) = send(app, webhook(None, "application/json", seed())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "timeout");
}

#[tokio::test]
async fn unknown_route_is_404_json() {
    let server = ok_server().await;
    let (status, _, body) = send(app_for(&server, ""), get("/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
}
