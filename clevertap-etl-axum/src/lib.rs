//! # clevertap-etl-axum
//!
//! The clevertap-etl webhook service as an axum [`Router`]: mount [`app`] in your own axum
//! application, or run it alone with [`serve`].
//!
//! What it does: receives CleverTap webhook calls on `POST /webhooks/clevertap`, hands the body
//! to the core [`Pipeline`], and answers with the delivery report; translates core errors into
//! HTTP answers. What it does not do: decide anything about records. Every rule lives in
//! `clevertap-etl-core`; this crate is glue.
//!
//! ```
//! use std::sync::Arc;
//! use clevertap_etl_axum::{app, AppState};
//! use clevertap_etl_core::{Deliverer, DeliverySettings, Pipeline, Routing, TransformSpec};
//! use clevertap_etl_core::sandbox::SandboxUploader;
//!
//! let deliverer = Deliverer::new(Arc::new(SandboxUploader::default()), [], DeliverySettings::default());
//! let pipeline = Pipeline::new(TransformSpec::default(), Routing::default(), Arc::new(deliverer));
//! let router: axum::Router = axum::Router::new().nest("/etl", app(AppState::new(pipeline)));
//! # let _ = router;
//! ```

mod error;
mod routes;

use std::future::Future;
use std::io;

use axum::Router;
use clevertap_etl_core::Pipeline;
use tokio::net::TcpListener;

pub use crate::error::ApiError;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pipeline: Pipeline,
    max_body_bytes: usize,
}

impl AppState {
    /// State over a configured pipeline, accepting bodies up to 16 MiB.
    pub fn new(pipeline: Pipeline) -> Self {
        AppState {
            pipeline,
            max_body_bytes: 16 * 1024 * 1024,
        }
    }

    /// Sets the largest accepted request body, in bytes.
    #[must_use]
    pub fn with_max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }

    /// The pipeline requests go through.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// The service's routes:
///
/// - `POST /webhooks/clevertap`: a CleverTap webhook call; answers with the delivery report.
/// - `POST /v1/transform`: plans a payload and returns the plan; uploads nothing.
/// - `GET /healthz`: liveness.
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
