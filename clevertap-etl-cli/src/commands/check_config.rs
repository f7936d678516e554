//! `clevertap-etl check-config`: validate a configuration and print the effective one.

use std::path::Path;

use super::{auth, credentials, emit, load_config};
use crate::error::CliError;

/// Checks the file, the overrides and every secret source; prints the effective configuration
/// as TOML with secrets redacted.
pub fn run(config_path: Option<&Path>) -> Result<(), CliError> {
    let config = load_config(config_path)?;
    // Resolve every secret once so a missing variable or file is reported now, not at start-up.
    credentials(&config, config_path)?;
    auth(&config, config_path)?;
    let text = toml::to_string(&config).map_err(|e| CliError::Config {
        path: config_path.map(Into::into),
        source: clevertap_etl_core::ConfigError {
            path: ".".into(),
            message: e.to_string(),
        },
    })?;
    emit(&format!(
        "# effective configuration: file, CLEVERTAP_ETL_* overrides and defaults; secrets redacted
{text}"
    ));
    eprintln!("configuration is valid");
    Ok(())
}
