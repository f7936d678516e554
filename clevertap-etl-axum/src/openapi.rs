//! The HTTP API's OpenAPI 3 document, served at `GET /openapi.json`.
//!
//! The schemas are derived (utoipa) from the very types the handlers serialize: the core's
//! report, preview and explanation types (its `openapi` feature) and this crate's error body, so
//! they follow the wire format. The paths are declared here, one doc-only function per route,
//! next to nothing else; `tests/it/openapi.rs` checks them against the real router both ways
//! (every documented path and method answers, every route of the router is documented).

use std::sync::LazyLock;

use axum::Json;
use clevertap_etl_core::spool::{DeliverySummary, StateFilter};
use clevertap_etl_core::{DeliveryReport, Explained};
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::ErrorBody;

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// The OpenAPI document of the service's routes, as mounted at `/` (a host that nests the
/// router under a prefix serves every path under that prefix).
pub fn document() -> utoipa::openapi::OpenApi {
    DOCUMENT.clone()
}

/// `GET /openapi.json`.
pub(crate) async fn serve_document() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&*DOCUMENT)
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "clevertap-etl",
        description = "CleverTap webhook → transform → CleverTap Upload API. The webhook and \
            `/v1` routes require the configured authentication (HTTP Basic and/or a bearer \
            token; none configured means open); `/healthz`, `/readyz`, `/metrics` and \
            `/openapi.json` are open. Any route may answer 503 `overloaded` or `timeout` with \
            `Retry-After` when the service is at its concurrency limit or a request takes too \
            long. Every answer carries an `x-request-id` header."
    ),
    paths(
        webhook,
        transform,
        list_deliveries,
        show_delivery,
        retry_delivery,
        healthz,
        readyz,
        metrics,
        openapi_json
    ),
    components(schemas(ErrorBody, DeliveryList, DeliverySummary, StateFilter, Health, Ready)),
    modifiers(&Security),
    tags(
        (name = "webhook", description = "What CleverTap calls"),
        (name = "deliveries", description = "The spool's deliveries (async mode)"),
        (name = "operations", description = "Probes, metrics and this document")
    )
)]
struct ApiDoc;

/// Adds the `basic` and `bearer` security schemes the protected routes name.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// `GET /v1/deliveries`'s answer.
#[derive(Debug, Serialize, ToSchema)]
struct DeliveryList {
    /// Newest first.
    deliveries: Vec<DeliverySummary>,
}

/// `GET /healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: String,
}

/// `GET /readyz`'s answer (200 when `ready`, else 503).
#[derive(Debug, Serialize, ToSchema)]
struct Ready {
    /// Whether the service can take webhooks and deliver them.
    ready: bool,
    /// Each check's verdict in words (`ok` when it passes).
    checks: ReadyChecks,
}

/// The checks of [`Ready`].
#[derive(Debug, Serialize, ToSchema)]
struct ReadyChecks {
    /// The configuration (always `ok` once serving).
    config: String,
    /// `ok`, or the accounts whose credentials CleverTap refused (401/403).
    accounts: String,
    /// `ok`, `not used (sync mode)`, or why the spool is not writable.
    spool: String,
}

/// A CleverTap webhook call.
///
/// Answers 200 with the delivery report: `pending` in async mode (within milliseconds), the
/// final one in sync mode. CleverTap's test call (`is_test`) answers `test` and uploads
/// nothing. A body received again within the dedupe window answers with the original delivery.
#[utoipa::path(
    post,
    path = "/webhooks/clevertap",
    tag = "webhook",
    request_body(content = Object, content_type = "application/json",
        description = "CleverTap's webhook payload: `{targetId, key_values, profiles: [...]}`"),
    responses(
        (status = 200, description = "The delivery report", body = DeliveryReport),
        (status = 400, description = "`invalid_payload` (with the JSON path) or `unreadable_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`, with `WWW-Authenticate`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`unknown_account`, `no_account`, `invalid_account`: nothing uploaded", body = ErrorBody),
        (status = 503, description = "`backpressure` or `spool_unavailable` (`Retry-After: 30`), `overloaded` or `timeout` (`Retry-After: 1`)", body = ErrorBody)
    ),
    security(("basic" = []), ("bearer" = []))
)]
#[allow(dead_code)]
fn webhook() {}

/// What a payload would upload, explained profile by profile. Uploads nothing.
#[utoipa::path(
    post,
    path = "/v1/transform",
    tag = "webhook",
    request_body(content = Object, content_type = "application/json",
        description = "A webhook payload"),
    responses(
        (status = 200, description = "The request bodies (`uploads`), the `skipped` records and the `explanation`", body = Explained),
        (status = 400, description = "`invalid_payload` or `unreadable_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`unknown_account`, `no_account`, `invalid_account`", body = ErrorBody)
    ),
    security(("basic" = []), ("bearer" = []))
)]
#[allow(dead_code)]
fn transform() {}

/// Deliveries, newest first (async mode).
#[utoipa::path(
    get,
    path = "/v1/deliveries",
    tag = "deliveries",
    params(
        ("state" = Option<StateFilter>, Query, description = "Only deliveries in this state (`dead`: those holding dead records); `all` or absent: every one"),
        ("limit" = Option<usize>, Query, description = "At most this many, 1 to 1000 (default 50)")
    ),
    responses(
        (status = 200, description = "The deliveries", body = DeliveryList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`no_delivery`: sync mode keeps no deliveries", body = ErrorBody),
        (status = 503, description = "`spool_unavailable`", body = ErrorBody)
    ),
    security(("basic" = []), ("bearer" = []))
)]
#[allow(dead_code)]
fn list_deliveries() {}

/// One delivery's report (async mode).
#[utoipa::path(
    get,
    path = "/v1/deliveries/{id}",
    tag = "deliveries",
    params(("id" = String, Path, description = "The delivery id (the report's `delivery_id`)")),
    responses(
        (status = 200, description = "The delivery report", body = DeliveryReport),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`no_delivery`", body = ErrorBody),
        (status = 503, description = "`spool_unavailable`", body = ErrorBody)
    ),
    security(("basic" = []), ("bearer" = []))
)]
#[allow(dead_code)]
fn show_delivery() {}

/// Re-queues a delivery's dead records (async mode). Records already processed are never sent
/// again.
#[utoipa::path(
    post,
    path = "/v1/deliveries/{id}/retry",
    tag = "deliveries",
    params(
        ("id" = String, Path, description = "The delivery id"),
        ("remap" = Option<bool>, Query, description = "Re-plan the stored payload with the current mapping first")
    ),
    responses(
        (status = 200, description = "The delivery's report after re-queueing", body = DeliveryReport),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`no_delivery`", body = ErrorBody),
        (status = 422, description = "With `remap`: the stored payload no longer plans (e.g. `unknown_account`)", body = ErrorBody),
        (status = 503, description = "`spool_unavailable`", body = ErrorBody)
    ),
    security(("basic" = []), ("bearer" = []))
)]
#[allow(dead_code)]
fn retry_delivery() {}

/// Liveness.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is serving", body = Health))
)]
#[allow(dead_code)]
fn healthz() {}

/// Readiness: 503 while CleverTap refuses an account's credentials (401/403) or the spool is
/// not writable.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, description = "Not ready: the failing checks say why", body = Ready)
    )
)]
#[allow(dead_code)]
fn readyz() {}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "`clevertap_etl_*` metrics",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object))
)]
#[allow(dead_code)]
fn openapi_json() {}
