//! `clevertap-etl transform PAYLOAD`: what would be uploaded, with no network call.

use std::path::Path;
use std::sync::Arc;

use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::Pipeline;

use super::{emit, load_config, read_input};
use crate::error::CliError;
use clevertap_etl_core::UnixSeconds;

/// Prints `{"uploads": [{"account_id", "body"}], "skipped": [...]}`, or with `explain` the
/// readable explanation.
pub fn run(payload: &Path, config_path: Option<&Path>, explain: bool) -> Result<(), CliError> {
    let config = load_config(config_path)?;
    let body = read_input(payload)?;
    // Planning needs no credentials and never uploads: the uploader is never called.
    let pipeline = Pipeline::from_config(&config, Arc::new(SandboxUploader::default()), Vec::new());
    let to_error = |source| CliError::Payload {
        path: payload.to_owned(),
        source,
    };
    if explain {
        emit(
            &pipeline
                .explain(&body, UnixSeconds::now())
                .map_err(to_error)?
                .to_string(),
        );
        return Ok(());
    }
    let preview = pipeline
        .preview(&body, UnixSeconds::now())
        .map_err(to_error)?;
    let text =
        serde_json::to_string_pretty(&preview).map_err(|e| CliError::Unreachable(e.to_string()))?;
    emit(&text);
    Ok(())
}
