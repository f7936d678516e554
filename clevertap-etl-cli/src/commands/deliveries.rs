//! `clevertap-etl deliveries list|show|retry`: the deliveries API on the spool file itself.

use std::path::Path;
use std::sync::Arc;

use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::spool::{Intake, Spool, SqliteSpool, StateFilter, Worker};
use clevertap_etl_core::{ConfigError, Pipeline, PipelineError};
use serde_json::json;

use super::{emit, load_config};
use crate::cli::DeliveriesAction;
use crate::error::CliError;
use clevertap_etl_core::UnixSeconds;

/// Runs one action and prints JSON, like the HTTP API answers.
pub async fn run(config_path: Option<&Path>, action: DeliveriesAction) -> Result<(), CliError> {
    let config = load_config(config_path)?;
    let config_error = |key: &str, message: String| CliError::Config {
        path: config_path.map(Into::into),
        source: ConfigError {
            path: key.into(),
            message,
        },
    };
    let path = &config.delivery.spool;
    if !path.exists() {
        return Err(config_error(
            "delivery.spool",
            format!(
                "no spool at {} (is this the service's configuration?)",
                path.display()
            ),
        ));
    }
    let sqlite = SqliteSpool::open(path).map_err(|e| {
        config_error(
            "delivery.spool",
            format!("cannot open {}: {e}", path.display()),
        )
    })?;
    let spool: Arc<dyn Spool> = Arc::new(sqlite);
    let spool_error = |e: String| CliError::Unreachable(format!("spool {}: {e}", path.display()));
    let value = match action {
        DeliveriesAction::List { state, limit } => {
            let filter = state
                .map(|s| {
                    serde_json::from_value::<StateFilter>(json!(s)).map_err(|_| {
                        CliError::BadInput(format!(
                            "--state {s:?}: use pending, partial, failed, dead, delivered or test"
                        ))
                    })
                })
                .transpose()?;
            let list = spool
                .list(filter, limit.clamp(1, 1000))
                .await
                .map_err(|e| spool_error(e.to_string()))?;
            json!({ "deliveries": list })
        }
        DeliveriesAction::Show { id } => {
            let report = spool
                .report(&id)
                .await
                .map_err(|e| spool_error(e.to_string()))?;
            serde_json::to_value(report.ok_or_else(|| no_delivery(&id))?)
                .map_err(|e| spool_error(e.to_string()))?
        }
        DeliveriesAction::Retry { id, remap } => {
            // Planning needs the mapping, not credentials: the uploader is never called here.
            // The worker is never run either: a running service's worker picks the records up.
            let pipeline =
                Pipeline::from_config(&config, Arc::new(SandboxUploader::default()), Vec::new());
            let worker = Worker::new(
                Arc::clone(&spool),
                Arc::clone(pipeline.deliverer()),
                config.worker_settings(),
            );
            let intake = Intake::new(spool, worker, config.intake_settings());
            let report = intake
                .retry(&pipeline, &id, remap, UnixSeconds::now())
                .await
                .map_err(|e| match e {
                    PipelineError::Decode(_) | PipelineError::Transform(_) => CliError::BadInput(
                        format!("delivery {id}: cannot re-plan its payload: {e}"),
                    ),
                    other => spool_error(other.to_string()),
                })?;
            serde_json::to_value(report.ok_or_else(|| no_delivery(&id))?)
                .map_err(|e| spool_error(e.to_string()))?
        }
    };
    emit(&serde_json::to_string_pretty(&value).map_err(|e| spool_error(e.to_string()))?);
    Ok(())
}

fn no_delivery(id: &str) -> CliError {
    CliError::BadInput(format!("no delivery {id}"))
}
