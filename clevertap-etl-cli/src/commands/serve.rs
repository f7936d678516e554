//! `clevertap-etl serve`: the webhook service.

use std::path::Path;
use std::sync::Arc;

use clevertap_etl_axum::{app, serve, AppState};
use clevertap_etl_core::config::AccountConfig;
use clevertap_etl_core::sandbox::SandboxUploader;
use clevertap_etl_core::{
    AccountId, Config, ConfigError, Credentials, HttpUploader, Passcode, Pipeline, Uploader,
};
use tokio::net::TcpListener;

use super::{credentials, load_config, shutdown_signal};
use crate::error::CliError;

/// The account the sandbox accepts when no configuration names one (the seed's target account).
pub const SANDBOX_ACCOUNT: &str = "W44-Z4K-K65Z";

/// Runs the service until Ctrl-C or SIGTERM.
pub async fn run(
    config_path: Option<&Path>,
    listen: Option<String>,
    sandbox: bool,
) -> Result<(), CliError> {
    init_tracing();
    let mut config = load_config(config_path)?;
    let (uploader, creds): (Arc<dyn Uploader>, Vec<Credentials>) = if sandbox {
        let creds = sandbox_credentials(&mut config)?;
        (Arc::new(SandboxUploader::default()), creds)
    } else {
        let creds = credentials(&config, config_path)?;
        let uploader = HttpUploader::new(config.clevertap.uploader())
            .map_err(|e| CliError::Unreachable(e.to_string()))?;
        (Arc::new(uploader), creds)
    };
    let pipeline = Pipeline::from_config(&config, uploader, creds);
    let state = AppState::new(pipeline).with_max_body_bytes(config.server.max_body_bytes);
    let addr = listen.unwrap_or_else(|| config.server.listen.clone());
    let listener = TcpListener::bind(&addr).await.map_err(CliError::Serve)?;
    let local = listener.local_addr().map_err(CliError::Serve)?;
    tracing::info!(%local, sandbox, "clevertap-etl listening; POST /webhooks/clevertap");
    println!("listening on http://{local}");
    serve(listener, app(state), shutdown_signal())
        .await
        .map_err(CliError::Serve)
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

/// Logs to standard error; `RUST_LOG` sets the level (default `info`).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
