//! One module per subcommand, plus what they share: reading files and the configuration.

pub mod check_config;
pub mod deliveries;
pub mod demo;
pub mod send;
pub mod serve;
pub mod transform;
pub mod upload;

use std::path::{Path, PathBuf};

use clevertap_etl_core::config::ResolvedAuth;
use clevertap_etl_core::{Config, Credentials};

use crate::error::CliError;

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> Result<Vec<u8>, CliError> {
    let result = if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    };
    result.map_err(|source| CliError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Loads the configuration file (or the defaults when there is none) with the
/// `CLEVERTAP_ETL_<SECTION>__<KEY>` environment overrides applied.
pub fn load_config(path: Option<&Path>) -> Result<Config, CliError> {
    let text = match path {
        None => String::new(),
        Some(path) => std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.to_owned(),
            source,
        })?,
    };
    Config::from_toml_str_with_env(&text, std::env::vars()).map_err(|source| CliError::Config {
        path: path.map(PathBuf::from),
        source,
    })
}

/// Resolves `[server.auth]` secrets from the environment and files.
pub fn auth(config: &Config, path: Option<&Path>) -> Result<ResolvedAuth, CliError> {
    config
        .server
        .auth
        .resolve(
            |var| std::env::var(var).ok(),
            |p| std::fs::read_to_string(p),
        )
        .map_err(|source| CliError::Config {
            path: path.map(PathBuf::from),
            source,
        })
}

/// Resolves the configured accounts' passcodes from the environment and files.
pub fn credentials(config: &Config, path: Option<&Path>) -> Result<Vec<Credentials>, CliError> {
    config
        .credentials(
            |var| std::env::var(var).ok(),
            |p| std::fs::read_to_string(p),
        )
        .map_err(|source| CliError::Config {
            path: path.map(PathBuf::from),
            source,
        })
}

/// Writes a command's output to standard output. A closed pipe (`… | head`) ends the process
/// quietly instead of panicking like `println!` would.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out.write_all(text.as_bytes()).and_then(|()| {
        if text.ends_with('\n') {
            Ok(())
        } else {
            out.write_all(b"\n")
        }
    });
    if let Err(e) = written.and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(2);
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received: finishing requests in progress");
}
