//! Builds the app against a fake CleverTap and sends requests to it in-process.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use clevertap_etl_axum::{app, AppState, Metrics, ServiceSettings};
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
    app_and_metrics(server, toml).0
}

/// The app configured by `toml`, uploading to `server`, and its metrics.
pub fn app_and_metrics(server: &MockServer, toml: &str) -> (Router, Metrics) {
    let config = Config::from_toml_str(toml).unwrap();
    let creds = config
        .credentials(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let auth = config
        .server
        .auth
        .resolve(|_| None, |_| Err(std::io::ErrorKind::NotFound.into()))
        .unwrap();
    let uploader = HttpUploader::new(HttpUploaderConfig {
        endpoint: Endpoint::BaseUrl(server.uri()),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let metrics = Metrics::new();
    let pipeline = Pipeline::from_config(&config, metrics.instrument(Arc::new(uploader)), creds);
    let state = AppState::new(pipeline)
        .with_settings(ServiceSettings::from_config(&config.server, auth))
        .with_metrics(metrics.clone());
    (app(state), metrics)
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

/// Sends any request and returns the status, headers and JSON (or text) answer.
pub async fn send(
    app: Router,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, headers, value)
}

/// A GET request.
pub fn get(uri: &str) -> Request<Body> {
    Request::get(uri).body(Body::empty()).unwrap()
}
