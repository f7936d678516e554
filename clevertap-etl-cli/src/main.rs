//! The `clevertap-etl` binary: a thin adapter over `clevertap-etl-core` and
//! `clevertap-etl-axum`. It parses arguments, reads files and the environment, and maps errors
//! to exit codes; every rule about records lives in the core.
//!
//! What it does: `demo` (the whole loop against the in-process sandbox), `transform` (what a
//! payload would upload, with `--explain`), `serve` (the webhook service, with the spool
//! worker in async mode), `upload` (backfill files through the delivery engine), `send`
//! (play CleverTap's webhook sender) and `check-config` (validate and print the effective
//! configuration, secrets redacted). `clevertap-etl --help` and `clevertap-etl COMMAND --help`
//! list every flag.
//!
//! What it does not do: decide anything about records (the core does), or serve HTTP itself
//! (the axum crate's `Router` does). It is the only place that knows clap, files, environment
//! variables (`CLEVERTAP_ETL_CONFIG`, `CLEVERTAP_ETL_LISTEN`, `RUST_LOG` and the
//! `CLEVERTAP_ETL_<SECTION>__<KEY>` overrides) and exit codes: `0` everything planned was
//! processed, `1` some records were rejected or are dead, `2` bad input or configuration,
//! `3` CleverTap unreachable or refusing the credentials.
//!
//! To embed the loop in another Rust service, depend on the library crates instead: see
//! `examples/` and `docs/`.

mod cli;
mod commands;
mod error;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // reqwest is built with rustls and no default provider: pick ring once, here.
    clevertap_etl_core::upload::ensure_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Demo => commands::demo::run().await,
        Command::Upload {
            files,
            config,
            dry_run,
            chunk_profiles,
        } => {
            let options = commands::upload::Options {
                dry_run,
                chunk_profiles: usize::try_from(chunk_profiles).unwrap_or(5000),
            };
            commands::upload::run(&files, config.as_deref(), options).await
        }
        Command::Send {
            payload,
            url,
            basic,
            token,
            repeat,
            concurrency,
            timeout_secs,
        } => {
            let auth = commands::send::Auth::from_flags(basic, token);
            let options = commands::send::Options {
                repeat,
                concurrency,
                timeout: std::time::Duration::from_secs(timeout_secs.max(1)),
            };
            commands::send::run(&payload, &url, auth, options).await
        }
        Command::Deliveries { config, action } => {
            commands::deliveries::run(config.as_deref(), action).await
        }
        Command::CheckConfig { config } => commands::check_config::run(config.as_deref()),
        Command::Transform {
            payload,
            config,
            explain,
        } => commands::transform::run(&payload, config.as_deref(), explain),
        Command::Serve {
            config,
            listen,
            sandbox,
        } => commands::serve::run(config.as_deref(), listen, sandbox).await,
    }
}
