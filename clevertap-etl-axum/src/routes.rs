//! The routes and their layers. Handlers read the request, call the pipeline, write the answer.

use std::time::Instant;

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, BoxError, Json, Router};
use clevertap_etl_core::spool::{Accepted, Intake, StateFilter};
use clevertap_etl_core::{DeliveryReport, Explained, PipelineError, UnixSeconds};
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::{auth, ApiError, AppState};

pub(crate) fn router(state: AppState) -> Router {
    let settings = &state.settings;
    let protected = Router::new()
        .route("/webhooks/clevertap", post(webhook))
        .route("/v1/transform", post(plan))
        .route("/v1/deliveries", get(list_deliveries))
        .route("/v1/deliveries/{id}", get(show_delivery))
        .route("/v1/deliveries/{id}/retry", post(retry_delivery))
        .route_layer(middleware::from_fn_with_state(
            settings.auth.clone(),
            auth::require,
        ));
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(crate::openapi::serve_document));
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(settings.max_concurrent_requests.max(1))
        .timeout(settings.request_timeout);
    let request_id = axum::http::HeaderName::from_static("x-request-id");
    protected
        .merge(open)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(shed)
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn overloaded(err: BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        ApiError::Timeout
    } else {
        tracing::warn!("shedding load: {err}");
        ApiError::Overloaded
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::NotFound(uri.path().to_owned())
}

/// Reads a JSON body: 415 for another content type, 413 past the limit.
fn json_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, ApiError> {
    if let Some(ct) = headers.get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !(mime == "application/json" || mime.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType(mime.to_owned()));
        }
    }
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge {
                limit: state.settings.max_body_bytes,
            }
        } else {
            ApiError::Body(e.body_text())
        }
    })
}

async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let started = Instant::now();
    let result = async {
        let body = json_body(&state, &headers, body)?;
        let id = uuid::Uuid::new_v4().to_string();
        match &state.intake {
            Some(intake) => {
                let accepted = intake.accept(&state.pipeline, &body, id, UnixSeconds::now()).await?;
                if let Accepted::Duplicate(report) = &accepted {
                    tracing::info!(delivery_id = %report.delivery_id, "duplicate webhook: answered with the original delivery");
                }
                Ok::<_, ApiError>(accepted.report().clone())
            }
            None => Ok(state.pipeline.run(&body, id, UnixSeconds::now()).await?),
        }
    }
    .await;
    match &result {
        Ok(report) => {
            state
                .metrics
                .webhook(&format!("{:?}", report.state).to_lowercase(), started);
            state.metrics.records(&report.counts);
            tracing::info!(
                delivery_id = %report.delivery_id,
                state = ?report.state,
                planned = report.counts.planned,
                processed = report.counts.processed,
                rejected = report.counts.rejected,
                skipped = report.counts.skipped,
                dead = report.counts.dead,
                "webhook handled"
            );
        }
        Err(e) => {
            state.metrics.webhook(e.code(), started);
            if matches!(e, ApiError::Pipeline(PipelineError::Backpressure { .. })) {
                tracing::warn!(error = %e, "backpressure: webhook refused with 503, CleverTap will retry");
            } else {
                tracing::warn!(error = %e, "webhook refused");
            }
        }
    }
    result.map(Json)
}

async fn plan(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Explained>, ApiError> {
    let body = json_body(&state, &headers, body)?;
    Ok(Json(state.pipeline.explain(&body, UnixSeconds::now())?))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> Response {
    let failing = state.pipeline.deliverer().failing_accounts();
    let accounts = if failing.is_empty() {
        "ok".to_owned()
    } else {
        let list: Vec<String> = failing
            .iter()
            .map(|f| format!("{} ({})", f.account, f.code))
            .collect();
        format!("CleverTap refused the credentials of {}", list.join(", "))
    };
    let spool = match &state.intake {
        None => "not used (sync mode)".to_owned(),
        Some(intake) => match intake.spool().check_writable().await {
            Ok(()) => "ok".to_owned(),
            Err(e) => format!("not writable: {e}"),
        },
    };
    let ready = failing.is_empty() && (spool == "ok" || state.intake.is_none());
    let body =
        json!({"ready": ready, "checks": {"config": "ok", "accounts": accounts, "spool": spool}});
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let pending = match &state.intake {
        Some(intake) => intake.pending_records().await.ok(),
        None => None,
    };
    state.metrics.refresh(state.pipeline.deliverer(), pending);
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

fn intake(state: &AppState) -> Result<&Intake, ApiError> {
    state.intake.as_ref().ok_or_else(|| {
        ApiError::NoDelivery(
            "deliveries are kept only in async mode ([delivery] mode = \"async\")".into(),
        )
    })
}

/// `?state=…&limit=…`.
#[derive(Debug, Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

async fn list_deliveries(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let intake = intake(&state)?;
    let filter = match query.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some(s) => Some(
            serde_json::from_value::<StateFilter>(Value::String(s.to_owned())).map_err(|_| {
                ApiError::Query(format!(
                    "state {s:?}: use pending, partial, failed, dead, delivered or test"
                ))
            })?,
        ),
    };
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let list = intake
        .spool()
        .list(filter, limit)
        .await
        .map_err(|e| ApiError::Pipeline(PipelineError::Spool(e.to_string())))?;
    Ok(Json(json!({"deliveries": list})))
}

async fn show_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let report = intake(&state)?
        .spool()
        .report(&id)
        .await
        .map_err(|e| ApiError::Pipeline(PipelineError::Spool(e.to_string())))?;
    report
        .map(Json)
        .ok_or_else(|| ApiError::NoDelivery(format!("no delivery {id}")))
}

/// `?remap=true`.
#[derive(Debug, Deserialize)]
struct RetryQuery {
    #[serde(default)]
    remap: bool,
}

async fn retry_delivery(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<RetryQuery>,
) -> Result<Json<DeliveryReport>, ApiError> {
    let report = intake(&state)?
        .retry(&state.pipeline, &id, query.remap, UnixSeconds::now())
        .await?;
    tracing::info!(delivery_id = %id, remap = query.remap, "delivery re-queued");
    report
        .map(Json)
        .ok_or_else(|| ApiError::NoDelivery(format!("no delivery {id}")))
}
