//! Builds the app against a fake CleverTap and sends requests to it in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use clevertap_etl_axum::{app, AppState};
use clevertap_etl_core::{Config, Endpoint, HttpUploader, HttpUploaderConfig, Pipeline};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use wiremock::MockServer;

/// The seed payload.
pub fn seed() -> Vec<u8> {
    std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/seed.json"
    ))
    .unwrap()
}

/// The app configured by `toml`, uploading to `server`.
pub fn app_for(server: &MockServer, toml: &str) -> Router {
    let config = Config::from_toml_str(toml).unwrap();
    let creds = config
        .credentials(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(server.uri()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let pipeline = Pipeline::from_config(&config, Arc::new(uploader), creds);
    app(AppState::new(pipeline).with_max_body_bytes(config.server.max_body_bytes))
}

/// One account, the seed's.
pub const SEED_ACCOUNT: &str =
    "[[accounts]]\nid = \"W44-Z4K-K65Z\"\npasscode = \"CONFIG-PASSCODE\"\n";

/// POSTs `body` to `uri` and returns the status and JSON answer.
pub async fn post(app: Router, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::post(uri)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}
