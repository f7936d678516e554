//! The handlers: read the request, call the pipeline, write the answer.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use clevertap_etl_core::{DeliveryReport, Preview, UnixSeconds};
use serde_json::{json, Value};

use crate::{ApiError, AppState};

pub(crate) fn router(state: AppState) -> Router {
    let limit = state.max_body_bytes;
    Router::new()
        .route("/webhooks/clevertap", post(webhook))
        .route("/v1/transform", post(plan))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn now() -> UnixSeconds {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    UnixSeconds(i64::try_from(secs).unwrap_or(i64::MAX))
}

async fn webhook(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<Json<DeliveryReport>, ApiError> {
    let id = uuid::Uuid::new_v4().to_string();
    let report = state.pipeline.run(&body, id, now()).await?;
    tracing::info!(
        delivery_id = %report.delivery_id,
        state = ?report.state,
        planned = report.counts.planned,
        processed = report.counts.processed,
        "webhook delivered"
    );
    Ok(Json(report))
}

async fn plan(State(state): State<AppState>, body: Bytes) -> Result<Json<Preview>, ApiError> {
    Ok(Json(state.pipeline.preview(&body, now())?))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
