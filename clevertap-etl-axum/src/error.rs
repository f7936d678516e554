//! How core errors become HTTP answers: one place, one JSON shape.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use clevertap_etl_core::{PipelineError, TransformError};
use serde_json::json;

/// An error answer: `{"error": {"code", "message", "path"}}`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The request was refused by the pipeline.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The request body could not be read.
    #[error("could not read the request body: {0}")]
    Body(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, Option<&str>) {
        match self {
            ApiError::Pipeline(PipelineError::Decode(e)) => (
                StatusCode::BAD_REQUEST,
                "invalid_payload",
                Some(e.path.as_str()),
            ),
            ApiError::Pipeline(PipelineError::Transform(e)) => {
                let code = match e {
                    TransformError::UnknownAccount { .. } => "unknown_account",
                    TransformError::NoAccount => "no_account",
                    _ => "invalid_account",
                };
                (StatusCode::UNPROCESSABLE_ENTITY, code, e.path())
            }
            ApiError::Pipeline(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", None),
            ApiError::Body(_) => (StatusCode::BAD_REQUEST, "unreadable_body", None),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, path) = self.parts();
        let body = json!({"error": {"code": code, "message": self.to_string(), "path": path}});
        (status, Json(body)).into_response()
    }
}
