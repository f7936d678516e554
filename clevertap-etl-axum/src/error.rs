//! How errors become HTTP answers: one place, one JSON shape
//! `{"error": {"code", "message", "path"}}`.

use axum::http::header::{RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use clevertap_etl_core::{PipelineError, TransformError};
use serde::Serialize;

/// Every error answer's body: `{"error": {"code", "message", "path"}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorBody`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ErrorDetail {
    /// A stable code: `invalid_payload`, `unreadable_body`, `invalid_query`, `unauthorized`,
    /// `no_delivery`, `not_found`, `payload_too_large`, `unsupported_media_type`,
    /// `unknown_account`, `no_account`, `invalid_account`, `unprocessable`, `overloaded`,
    /// `timeout`, `backpressure`, `spool_unavailable`.
    #[schema(example = "invalid_payload")]
    pub code: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// The JSON path of the fault in the request body, when there is one.
    #[schema(example = "profiles[0].profileData")]
    pub path: Option<String>,
}

/// An error answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The pipeline refused the payload.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The body is larger than `[server] max_body_bytes`.
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body could not be read.
    #[error("could not read the request body: {0}")]
    Body(String),
    /// The content type is not JSON.
    #[error("unsupported content type {0:?}: send application/json")]
    UnsupportedMediaType(String),
    /// Missing or wrong credentials.
    #[error("authentication required")]
    Unauthorized {
        /// Basic auth is accepted.
        basic: bool,
        /// A bearer token is accepted.
        bearer: bool,
    },
    /// The service is at its concurrency limit.
    #[error("the service is busy: try again shortly")]
    Overloaded,
    /// The request took longer than `[server] request_timeout_secs`.
    #[error("the request timed out")]
    Timeout,
    /// No such delivery, or no spool to look in.
    #[error("{0}")]
    NoDelivery(String),
    /// A query parameter is invalid.
    #[error("invalid query: {0}")]
    Query(String),
    /// No such route.
    #[error("no route {0}")]
    NotFound(String),
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
            ApiError::Pipeline(PipelineError::Backpressure { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, "backpressure", None)
            }
            ApiError::Pipeline(PipelineError::Spool(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "spool_unavailable", None)
            }
            ApiError::Pipeline(_) => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", None),
            ApiError::NoDelivery(_) => (StatusCode::NOT_FOUND, "no_delivery", None),
            ApiError::Query(_) => (StatusCode::BAD_REQUEST, "invalid_query", None),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", None)
            }
            ApiError::Body(_) => (StatusCode::BAD_REQUEST, "unreadable_body", None),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                None,
            ),
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized", None),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded", None),
            ApiError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout", None),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", None),
        }
    }

    /// The `code` this error answers with.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, path) = self.parts();
        let body = ErrorBody {
            error: ErrorDetail {
                code,
                message: self.to_string(),
                path: path.map(str::to_owned),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized { basic, bearer } => {
                let mut challenges = Vec::new();
                if basic {
                    challenges.push(r#"Basic realm="clevertap-etl", charset="UTF-8""#);
                }
                if bearer {
                    challenges.push(r#"Bearer realm="clevertap-etl""#);
                }
                if let Ok(v) = HeaderValue::from_str(&challenges.join(", ")) {
                    headers.insert(WWW_AUTHENTICATE, v);
                }
            }
            ApiError::Overloaded | ApiError::Timeout => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Pipeline(PipelineError::Backpressure { .. } | PipelineError::Spool(_)) => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
            }
            _ => {}
        }
        response
    }
}
