//! `clevertap-etl upload FILE…`: backfill through the delivery engine.
//!
//! Files are read as a stream: profiles are gathered into chunks of `--chunk-profiles`, each
//! chunk is planned and delivered, and only the running counts (and the failures) are kept.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clevertap_etl_core::{
    transform, Counts, DeliveryReport, DeliveryState, Failure, HttpUploader, Pipeline,
    WebhookPayload, WebhookProfile,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::{credentials, emit, load_config};
use crate::error::CliError;
use clevertap_etl_core::UnixSeconds;

/// How `upload` runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Plan only.
    pub dry_run: bool,
    /// Profiles per chunk.
    pub chunk_profiles: usize,
}

/// At most this many failures are kept in the final report; the rest are counted.
const MAX_FAILURES_KEPT: usize = 10_000;

/// A line or file that could not be read as a payload or profile.
#[derive(Debug, Serialize)]
struct InputError {
    file: PathBuf,
    line: Option<usize>,
    path: String,
    message: String,
}

/// The final report: the delivery report's fields for the whole backfill, plus input errors.
#[derive(Debug, Serialize)]
struct UploadReport {
    state: DeliveryState,
    dry_run: bool,
    counts: Counts,
    failures: Vec<Failure>,
    failures_omitted: u64,
    input_errors: Vec<InputError>,
}

/// Runs the backfill.
pub async fn run(
    files: &[PathBuf],
    config_path: Option<&Path>,
    options: Options,
) -> Result<(), CliError> {
    let config = load_config(config_path)?;
    let pipeline = if options.dry_run {
        // Never called: a dry run plans only.
        let uploader = Arc::new(clevertap_etl_core::sandbox::SandboxUploader::default());
        Pipeline::from_config(&config, uploader, Vec::new())
    } else {
        let creds = credentials(&config, config_path)?;
        let uploader = HttpUploader::new(config.clevertap.uploader())
            .map_err(|e| CliError::Unreachable(e.to_string()))?;
        Pipeline::from_config(&config, Arc::new(uploader), creds)
    };
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    let mut run = Run::new(pipeline, options, total_bytes);
    for file in files {
        run.file(file).await?;
    }
    run.finish()
}

struct Run {
    pipeline: Pipeline,
    options: Options,
    pending: Vec<WebhookProfile>,
    report: UploadReport,
    progress: Progress,
}

impl Run {
    fn new(pipeline: Pipeline, options: Options, total_bytes: u64) -> Self {
        Run {
            pipeline,
            options,
            pending: Vec::new(),
            report: UploadReport {
                state: DeliveryState::Delivered,
                dry_run: options.dry_run,
                counts: Counts::default(),
                failures: Vec::new(),
                failures_omitted: 0,
                input_errors: Vec::new(),
            },
            progress: Progress::new(total_bytes),
        }
    }

    async fn file(&mut self, path: &Path) -> Result<(), CliError> {
        let jsonl = path == Path::new("-")
            || path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                e.eq_ignore_ascii_case("jsonl") || e.eq_ignore_ascii_case("ndjson")
            });
        let reader: Box<dyn Read> = if path == Path::new("-") {
            Box::new(std::io::stdin())
        } else {
            Box::new(File::open(path).map_err(|source| CliError::Read {
                path: path.to_owned(),
                source,
            })?)
        };
        if jsonl {
            self.lines(path, BufReader::new(reader)).await
        } else {
            let mut body = Vec::new();
            BufReader::new(reader)
                .read_to_end(&mut body)
                .map_err(|source| CliError::Read {
                    path: path.to_owned(),
                    source,
                })?;
            self.progress.bytes(body.len() as u64);
            match WebhookPayload::from_slice(&body) {
                Ok(payload) => self.payload(&payload).await,
                Err(e) => {
                    self.input_error(path, None, e.path, e.message);
                    Ok(())
                }
            }
        }
    }

    async fn lines(&mut self, path: &Path, reader: impl BufRead) -> Result<(), CliError> {
        for (index, line) in reader.lines().enumerate() {
            let line = line.map_err(|source| CliError::Read {
                path: path.to_owned(),
                source,
            })?;
            self.progress.bytes(line.len() as u64 + 1);
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            let is_payload =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
                    .is_ok_and(|m| m.keys().any(|k| k.eq_ignore_ascii_case("profiles")));
            if is_payload {
                match WebhookPayload::from_slice(text.as_bytes()) {
                    Ok(payload) => self.payload(&payload).await?,
                    Err(e) => self.input_error(path, Some(index + 1), e.path, e.message),
                }
                continue;
            }
            match WebhookProfile::from_slice(text.as_bytes()) {
                Ok(profile) => {
                    self.pending.push(profile);
                    if self.pending.len() >= self.options.chunk_profiles {
                        self.flush().await?;
                    }
                }
                Err(e) => self.input_error(path, Some(index + 1), e.path, e.message),
            }
        }
        self.flush().await
    }

    fn input_error(&mut self, file: &Path, line: Option<usize>, path: String, message: String) {
        let place = line.map_or_else(
            || file.display().to_string(),
            |l| format!("{}:{l}", file.display()),
        );
        self.progress
            .println(&format!("skipping {place}: invalid at `{path}`: {message}"));
        self.report.input_errors.push(InputError {
            file: file.to_owned(),
            line,
            path,
            message,
        });
    }

    async fn flush(&mut self) -> Result<(), CliError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let payload = WebhookPayload {
            profiles: std::mem::take(&mut self.pending),
            ..WebhookPayload::default()
        };
        self.payload(&payload).await
    }

    async fn payload(&mut self, payload: &WebhookPayload) -> Result<(), CliError> {
        let plan = transform(
            payload,
            self.pipeline.spec(),
            self.pipeline.routing(),
            UnixSeconds::now(),
        )
        .map_err(|e| CliError::BadInput(format!("cannot plan: {e}")))?;
        let report = if self.options.dry_run {
            // Planned but not sent: the records count as pending.
            DeliveryReport::build(String::new(), &plan, &[])
        } else {
            self.pipeline.deliver(String::new(), &plan).await
        };
        self.add(report);
        Ok(())
    }

    fn add(&mut self, report: DeliveryReport) {
        let c = &mut self.report.counts;
        c.planned += report.counts.planned;
        c.processed += report.counts.processed;
        c.rejected += report.counts.rejected;
        c.skipped += report.counts.skipped;
        c.pending += report.counts.pending;
        c.dead += report.counts.dead;
        for f in report.failures {
            if self.report.failures.len() < MAX_FAILURES_KEPT {
                self.report.failures.push(f);
            } else {
                self.report.failures_omitted += 1;
            }
        }
        self.progress.records(c);
    }

    fn finish(mut self) -> Result<(), CliError> {
        self.progress.done(&self.report.counts);
        let counts = self.report.counts;
        self.report.state = counts.state();
        let text = serde_json::to_string_pretty(&self.report)
            .map_err(|e| CliError::Incomplete(e.to_string()))?;
        emit(&text);
        if !self.report.input_errors.is_empty() {
            return Err(CliError::BadInput(format!(
                "{} line(s) or file(s) could not be read as payloads or profiles (listed in input_errors)",
                self.report.input_errors.len()
            )));
        }
        let refused = self
            .report
            .failures
            .iter()
            .any(|f| matches!(f.code, Some(401 | 403)));
        let unreachable = counts.processed == 0 && counts.dead > 0 && counts.rejected == 0;
        if refused || unreachable {
            return Err(CliError::Unreachable(
                "CleverTap was unreachable or refused the credentials (see failures)".into(),
            ));
        }
        if counts.rejected + counts.dead + counts.skipped > 0 {
            return Err(CliError::Incomplete(format!(
                "{} rejected, {} dead, {} skipped of {} planned",
                counts.rejected, counts.dead, counts.skipped, counts.planned
            )));
        }
        Ok(())
    }
}

/// Progress on standard error: a bar on a terminal, a plain line every few seconds otherwise.
struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
}

impl Progress {
    fn new(total_bytes: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total_bytes.max(1));
            if let Ok(style) =
                ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} · {msg} · ETA {eta}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
        }
    }

    fn bytes(&self, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }

    fn println(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn line(&self, c: &Counts) -> String {
        let done = c.planned - c.pending;
        let rate = done as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        format!(
            "{} records ({} processed, {} rejected, {} skipped, {} dead) · {rate:.0} records/s",
            c.planned, c.processed, c.rejected, c.skipped, c.dead
        )
    }

    fn records(&mut self, c: &Counts) {
        let line = self.line(c);
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None if self.last_line.elapsed() >= Duration::from_secs(5) => {
                eprintln!("{line}");
                self.last_line = Instant::now();
            }
            None => {}
        }
    }

    fn done(&self, c: &Counts) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        eprintln!("{}", self.line(c));
    }
}
