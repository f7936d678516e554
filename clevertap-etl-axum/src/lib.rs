//! # clevertap-etl-axum
//!
//! The clevertap-etl webhook service as an axum [`Router`]: mount [`app`] in your own axum
//! application, or run it alone with [`serve`].
//!
//! What it does: receives CleverTap webhook calls on `POST /webhooks/clevertap`, hands the body
//! to the core [`Pipeline`], and answers with the delivery report; authenticates callers (HTTP
//! Basic and/or a bearer token); bounds body size, time and concurrency; serves `/healthz`,
//! `/readyz` and Prometheus `/metrics`, and its OpenAPI document at `/openapi.json`
//! ([`openapi()`]); translates core errors into HTTP answers. What it does not do: decide
//! anything about records (every rule lives in `clevertap-etl-core`; this crate is glue), read
//! configuration files or the environment (the caller builds the [`Pipeline`] and
//! [`ServiceSettings`]), or run the spool's worker (the caller runs
//! `clevertap_etl_core::spool::Worker` beside the server when it passes an intake).
//!
//! Mounted under a prefix, driven in-process (no socket) with the sandbox uploader; the
//! `mount_router` example does the same over TCP inside a host app with its own middleware:
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use clevertap_etl_axum::{app, AppState};
//! use clevertap_etl_core::sandbox::SandboxUploader;
//! use clevertap_etl_core::{
//!     Credentials, Deliverer, DeliverySettings, Passcode, Pipeline, Routing, TransformSpec,
//! };
//! use http_body_util::BodyExt;
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let account = Credentials { account_id: "W44-Z4K-K65Z".try_into()?, passcode: Passcode::new("p") };
//! let routing = Routing { accounts: vec![account.account_id.clone()], ..Routing::default() };
//! let uploader = Arc::new(SandboxUploader::default());
//! let deliverer = Deliverer::new(uploader, [account], DeliverySettings::default());
//! // No intake (spool): sync mode, the answer is the final report.
//! let pipeline = Pipeline::new(TransformSpec::default(), routing, Arc::new(deliverer));
//! let router: axum::Router = axum::Router::new().nest("/etl", app(AppState::new(pipeline)));
//!
//! let body = r#"{"profiles": [{"objectId": "__1", "profileData": {"city": "Pune"}}]}"#;
//! let request = Request::post("/etl/webhooks/clevertap")
//!     .header("content-type", "application/json")
//!     .body(Body::from(body))?;
//! let response = router.oneshot(request).await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! let report: serde_json::Value =
//!     serde_json::from_slice(&response.into_body().collect().await?.to_bytes())?;
//! assert_eq!(report["state"], "delivered"); // a profile and an event, in the first account
//! assert_eq!(report["counts"]["processed"], 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod auth;
mod error;
mod metrics;
mod openapi;
mod routes;

use std::future::Future;
use std::io;
use std::time::Duration;

use axum::Router;
use clevertap_etl_core::config::{ResolvedAuth, ServerConfig};
use clevertap_etl_core::spool::Intake;
use clevertap_etl_core::Pipeline;
use tokio::net::TcpListener;

pub use crate::error::ApiError;
pub use crate::metrics::Metrics;
pub use crate::openapi::document as openapi;

/// The service's limits and authentication.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Largest accepted request body, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Longest a request may take (503 past it).
    pub request_timeout: Duration,
    /// Requests handled at once (503 past it, never queued).
    pub max_concurrent_requests: usize,
    /// Who may call the webhook and `/v1` routes; none configured means anyone.
    pub auth: ResolvedAuth,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 256,
            auth: ResolvedAuth::default(),
        }
    }
}

impl ServiceSettings {
    /// The settings of a `[server]` table, with its auth secrets already resolved.
    pub fn from_config(server: &ServerConfig, auth: ResolvedAuth) -> Self {
        ServiceSettings {
            max_body_bytes: server.max_body_bytes,
            request_timeout: Duration::from_secs(server.request_timeout_secs.max(1)),
            max_concurrent_requests: server.max_concurrent_requests.max(1),
            auth,
        }
    }
}

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pipeline: Pipeline,
    intake: Option<Intake>,
    settings: ServiceSettings,
    metrics: Metrics,
}

impl AppState {
    /// State over a configured pipeline, with default settings and fresh metrics.
    pub fn new(pipeline: Pipeline) -> Self {
        AppState {
            pipeline,
            intake: None,
            settings: ServiceSettings::default(),
            metrics: Metrics::new(),
        }
    }

    /// Sets the limits and authentication.
    #[must_use]
    pub fn with_settings(mut self, settings: ServiceSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Answers webhooks asynchronously: store in the intake's spool, answer `pending`, let its
    /// worker deliver. Without an intake the service answers after CleverTap replied (sync).
    #[must_use]
    pub fn with_intake(mut self, intake: Intake) -> Self {
        self.intake = Some(intake);
        self
    }

    /// Uses these metrics (pass the same [`Metrics`] that instrumented the uploader).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The pipeline requests go through.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

/// The service's routes:
///
/// - `POST /webhooks/clevertap`: a CleverTap webhook call; answers with the delivery report
///   (`pending` with an intake; the final report without one).
/// - `POST /v1/transform`: plans a payload and returns its request bodies; uploads nothing.
/// - `GET /v1/deliveries/{id}`, `GET /v1/deliveries?state=&limit=`,
///   `POST /v1/deliveries/{id}/retry?remap=true`: the spool's deliveries (with an intake).
/// - `GET /healthz`: liveness. `GET /readyz`: readiness (503 while the spool is not writable or
///   CleverTap refuses an account's credentials). `GET /metrics`: Prometheus metrics.
/// - `GET /openapi.json`: the OpenAPI 3 document of these routes (see [`openapi()`]).
///
/// The webhook and `/v1` routes require the configured authentication; the others are open.
pub fn app(state: AppState) -> Router {
    routes::router(state)
}

/// Serves `router` on `listener` until `shutdown` completes, then finishes the requests in
/// progress.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
