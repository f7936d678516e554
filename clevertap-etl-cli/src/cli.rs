//! The command line, as clap derive types. Converted to work once, in `main`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Exit codes, as documented in `--help` and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  everything planned was processed
  1  some records were rejected or are dead
  2  bad input or configuration
  3  CleverTap unreachable or refusing the credentials";

/// clevertap-etl: CleverTap webhook → transform → CleverTap Upload API, in one go.
#[derive(Debug, Parser)]
#[command(name = "clevertap-etl", version, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole loop on bundled examples against an in-process sandbox CleverTap (no
    /// account, no network).
    Demo,
    /// Show what a webhook payload would upload, without sending anything.
    Transform {
        /// The payload file (`-` for standard input).
        payload: PathBuf,
        /// The configuration file (its `[transform]`, `[[accounts]]` and `[routing]`).
        #[arg(long, short, env = "CLEVERTAP_ETL_CONFIG")]
        config: Option<PathBuf>,
        /// Explain profile by profile: each record's verdict and code, fixes, target account,
        /// and how records split into request bodies (readable text instead of JSON).
        #[arg(long)]
        explain: bool,
    },
    /// Backfill: transform and deliver payload files or JSON-lines files of profiles through the
    /// delivery engine, streaming with constant memory; prints the delivery report.
    Upload {
        /// Payload files (`.json`) or JSON-lines files (`.jsonl`/`.ndjson`: one profile, or one
        /// payload, per line); `-` reads JSON lines from standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The configuration file (accounts, transform, delivery).
        #[arg(long, short, env = "CLEVERTAP_ETL_CONFIG")]
        config: Option<PathBuf>,
        /// Transform and validate only: print what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
        /// Profiles transformed and delivered together (memory stays bounded by this).
        #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        chunk_profiles: u64,
    },
    /// Play CleverTap's webhook sender: POST a payload to a running service.
    Send {
        /// The payload file (`-` for standard input).
        payload: PathBuf,
        /// The webhook URL, e.g. `http://127.0.0.1:8080/webhooks/clevertap`.
        #[arg(long, env = "CLEVERTAP_ETL_URL")]
        url: String,
        /// HTTP Basic credentials as `USER:PASSWORD`.
        #[arg(long, env = "CLEVERTAP_ETL_BASIC_AUTH", conflicts_with = "token")]
        basic: Option<String>,
        /// A bearer token.
        #[arg(long, env = "CLEVERTAP_ETL_TOKEN")]
        token: Option<String>,
        /// Send the payload this many times (prints a summary instead of each answer).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        repeat: u64,
        /// Requests in flight at once when repeating.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        concurrency: u64,
        /// Seconds to wait for each answer.
        #[arg(long, default_value_t = 30)]
        timeout_secs: u64,
    },
    /// Inspect and retry the spool's deliveries (async mode): reads the `[delivery] spool` file
    /// directly, so it works whether or not the service is running.
    Deliveries {
        /// The configuration file (its `[delivery] spool` and, for `--remap`, `[transform]`).
        #[arg(long, short, global = true, env = "CLEVERTAP_ETL_CONFIG")]
        config: Option<PathBuf>,
        /// What to do.
        #[command(subcommand)]
        action: DeliveriesAction,
    },
    /// Check a configuration and print the effective one (file + environment overrides +
    /// defaults), with secrets redacted.
    CheckConfig {
        /// The configuration file.
        #[arg(long, short, env = "CLEVERTAP_ETL_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the webhook service.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "CLEVERTAP_ETL_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `[server] listen`.
        #[arg(long, env = "CLEVERTAP_ETL_LISTEN")]
        listen: Option<String>,
        /// Upload to the in-process sandbox instead of CleverTap (no config file needed).
        #[arg(long)]
        sandbox: bool,
    },
}

/// `clevertap-etl deliveries …`.
#[derive(Debug, Subcommand)]
pub enum DeliveriesAction {
    /// List deliveries, newest first.
    List {
        /// Only those in this state: pending, partial, failed, dead (holding dead records),
        /// delivered, test.
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print one delivery's report.
    Show {
        /// The delivery id.
        id: String,
    },
    /// Re-queue a delivery's dead records (a running service sends them within a second).
    Retry {
        /// The delivery id.
        id: String,
        /// Re-plan the stored payload with the current `[transform]` first (records already
        /// processed are never sent again).
        #[arg(long)]
        remap: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
