//! The CLI's errors and how each maps to an exit code: one place.

use std::path::PathBuf;

use clevertap_etl_core::{ConfigError, PipelineError};

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is invalid.
    #[error("{}: {source}", path.as_ref().map_or_else(|| "configuration".to_owned(), |p| p.display().to_string()))]
    Config {
        /// The file, when there is one.
        path: Option<PathBuf>,
        /// What is wrong.
        source: ConfigError,
    },
    /// A payload is invalid.
    #[error("{}: {source}", path.display())]
    Payload {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: PipelineError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The service could not start or stopped on an error.
    #[error("service: {0}")]
    Serve(std::io::Error),
    /// Some input could not be read as payloads (what could be read was processed).
    #[error("{0}")]
    BadInput(String),
    /// Some records were rejected or are dead, or a request was refused.
    #[error("{0}")]
    Incomplete(String),
    /// CleverTap could not be reached or refused the credentials.
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Incomplete(_) => 1,
            CliError::Read { .. }
            | CliError::Config { .. }
            | CliError::Payload { .. }
            | CliError::BadInput(_) => 2,
            CliError::Serve(_) | CliError::Bind { .. } => 2,
            CliError::Unreachable(_) => 3,
        }
    }
}
