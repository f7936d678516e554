//! `clevertap-etl serve`: the webhook service.

use std::path::Path;
use std::sync::Arc;

use clevertap_etl_axum::{app, serve, AppState, Metrics, ServiceSettings};
use clevertap_etl_core::config::{AccountConfig, DeliveryMode, LogFormat};
use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::spool::{Intake, Spool, SqliteSpool, Worker};
use clevertap_etl_core::{
    AccountId, Config, ConfigError, Credentials, HttpUploader, Passcode, Pipeline, Uploader,
};
use tokio::net::TcpListener;

use super::{auth, credentials, load_config, shutdown_signal};
use crate::error::CliError;

/// The account the sandbox accepts when no configuration names one (the seed's target account).
pub const SANDBOX_ACCOUNT: &str = "W44-Z4K-K65Z";

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn run(
    config_path: Option<&Path>,
    listen: Option<String>,
    sandbox: bool,
) -> Result<(), CliError> {
    let mut config = load_config(config_path)?;
    init_tracing(config.server.log_format);
    let auth = auth(&config, config_path)?;
    let (uploader, creds): (Arc<dyn Uploader>, Vec<Credentials>) = if sandbox {
        let creds = sandbox_credentials(&mut config)?;
        (Arc::new(SandboxUploader::default()), creds)
    } else {
        let creds = credentials(&config, config_path)?;
        let uploader = HttpUploader::new(config.clevertap.uploader())
            .map_err(|e| CliError::Unreachable(e.to_string()))?;
        (Arc::new(uploader), creds)
    };
    let addr = listen.unwrap_or_else(|| config.server.listen.clone());
    let listener = TcpListener::bind(&addr).await.map_err(|e| CliError::Bind {
        addr: addr.clone(),
        source: e,
    })?;
    let local = listener.local_addr().map_err(CliError::Serve)?;
    config
        .server
        .check_exposure(local.ip())
        .map_err(|source| CliError::Config {
            path: config_path.map(Into::into),
            source,
        })?;
    // The sandbox keeps its spool in memory: nothing it received outlives the process.
    let spool = match (config.delivery.mode, sandbox) {
        (DeliveryMode::Sync, _) => None,
        (DeliveryMode::Async, true) => Some(SqliteSpool::in_memory()),
        (DeliveryMode::Async, false) => Some(SqliteSpool::open(&config.delivery.spool)),
    }
    .transpose()
    .map_err(|e| CliError::Config {
        path: config_path.map(Into::into),
        source: ConfigError {
            path: "delivery.spool".into(),
            message: format!("cannot open {}: {e}", config.delivery.spool.display()),
        },
    })?;
    let service = Service::build(
        &config,
        uploader,
        creds,
        spool.map(|s| Arc::new(s) as Arc<dyn Spool>),
    );
    let state = service
        .state
        .with_settings(ServiceSettings::from_config(&config.server, auth));
    tracing::info!(%local, sandbox, mode = ?config.delivery.mode, "clevertap-etl listening; POST /webhooks/clevertap");
    println!("listening on http://{local}");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = serve(listener, app(state), async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    let worker = async {
        match service.worker {
            Some(worker) => {
                let mut stopped = stopped;
                worker
                    .run(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            }
            None => Ok(()),
        }
    };
    let (served, worked) = tokio::join!(server, worker);
    worked.map_err(|e| CliError::Serve(std::io::Error::other(e.to_string())))?;
    served.map_err(CliError::Serve)
}

/// The service's state and, in async mode, the worker that drains its spool.
pub struct Service {
    /// The handlers' state (default settings; set them with `with_settings`).
    pub state: AppState,
    /// The spool's worker, to run beside the server.
    pub worker: Option<Worker>,
}

impl Service {
    /// Wires pipeline, metrics and (with a spool) intake and worker from a configuration.
    pub fn build(
        config: &Config,
        uploader: Arc<dyn Uploader>,
        creds: Vec<Credentials>,
        spool: Option<Arc<dyn Spool>>,
    ) -> Self {
        let metrics = Metrics::new();
        let pipeline = Pipeline::from_config(config, metrics.instrument(uploader), creds);
        let mut state = AppState::new(pipeline.clone()).with_metrics(metrics.clone());
        let worker = spool.map(|spool| {
            let worker = Worker::new(
                Arc::clone(&spool),
                Arc::clone(pipeline.deliverer()),
                config.worker_settings(),
            )
            .with_observer(Arc::new(move |outcomes| metrics.outcomes(outcomes)));
            state = state.clone().with_intake(Intake::new(
                spool,
                worker.clone(),
                config.intake_settings(),
            ));
            worker
        });
        Service { state, worker }
    }
}

/// Prepares a configuration for the sandbox: when it names no account, the seed's target account
/// is added; every account gets a placeholder passcode (the sandbox accepts any).
pub fn sandbox_credentials(config: &mut Config) -> Result<Vec<Credentials>, CliError> {
    if config.accounts.is_empty() {
        let id = AccountId::try_from(SANDBOX_ACCOUNT).map_err(|e| CliError::Config {
            path: None,
            source: ConfigError {
                path: "accounts[0].id".into(),
                message: e.to_string(),
            },
        })?;
        config.accounts.push(AccountConfig {
            id,
            passcode: Some(SANDBOX_PASSCODE.into()),
            passcode_env: None,
            passcode_file: None,
            max_concurrency: None,
        });
    }
    Ok(config
        .accounts
        .iter()
        .map(|a| Credentials {
            account_id: a.id.clone(),
            passcode: Passcode::new(SANDBOX_PASSCODE),
        })
        .collect())
}

const SANDBOX_PASSCODE: &str = "sandbox";

/// Logs to standard error, as text or JSON lines; `RUST_LOG` sets the level (default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
