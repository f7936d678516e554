//! The configuration file's model (TOML), shared by the service and the CLI.
//!
//! Parsing is pure: [`Config::from_toml_str`] takes text, and [`Config::credentials`] takes the
//! environment and file reader as functions, so the core never touches either itself.
//! Unknown keys are rejected with their path.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::account::{AccountId, Credentials, Passcode, Region, Secret};
use crate::deliver::{
    DeliverySettings, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONCURRENCY, MAX_BATCH_SIZE,
};
use crate::retry::Backoff;
use crate::spec::{Routing, TransformSpec};
use crate::upload::{Endpoint, HttpUploaderConfig};

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `[server]`: the webhook service.
    pub server: ServerConfig,
    /// `[clevertap]`: where the Upload API is.
    pub clevertap: ClevertapConfig,
    /// `[[accounts]]`: the accounts records may be loaded into; the first is the default.
    pub accounts: Vec<AccountConfig>,
    /// `[delivery]`: how records are sent.
    pub delivery: DeliveryConfig,
    /// `[routing]`: how a payload picks its account.
    pub routing: RoutingConfig,
    /// `[transform]`: what is loaded.
    pub transform: TransformSpec,
}

/// `[server]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: String,
    /// Largest webhook body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How long one request may take before it is answered 503, in seconds.
    pub request_timeout_secs: u64,
    /// Requests handled at once; past that the service answers 503 at once instead of queueing.
    pub max_concurrent_requests: usize,
    /// `text` or `json` logs.
    pub log_format: LogFormat,
    /// Listen on a non-loopback address without authentication (not recommended).
    pub allow_unauthenticated: bool,
    /// `[server.auth]`: who may call the webhook and `/v1` routes.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            max_body_bytes: 16 * 1024 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 256,
            log_format: LogFormat::Text,
            allow_unauthenticated: false,
            auth: AuthConfig::default(),
        }
    }
}

impl ServerConfig {
    /// Refuses to serve without authentication on an address other machines can reach, unless
    /// `allow_unauthenticated` says so: CleverTap signs nothing, and what the service loads into
    /// an account can never be deleted.
    pub fn check_exposure(&self, ip: std::net::IpAddr) -> Result<(), ConfigError> {
        if ip.is_loopback() || self.auth.is_enabled() || self.allow_unauthenticated {
            return Ok(());
        }
        Err(ConfigError::new(
            "server.auth",
            format!(
                "refusing to listen on {ip} without authentication: configure [server.auth] \
                 (username/password or token) or set server.allow_unauthenticated = true"
            ),
        ))
    }
}

/// The log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[server.auth]`: HTTP Basic (what CleverTap's webhook settings offer) and/or a bearer token.
/// Each secret comes from the file itself, an environment variable, or a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The Basic auth user name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The Basic auth password.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redact")]
    pub password: Option<String>,
    /// The environment variable holding the Basic auth password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// A file holding the Basic auth password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// The bearer token.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "redact")]
    pub token: Option<String>,
    /// The environment variable holding the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// A file holding the bearer token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
}

/// Resolved `[server.auth]` secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedAuth {
    /// Basic auth user name and password.
    pub basic: Option<(String, Secret)>,
    /// Bearer token.
    pub bearer: Option<Secret>,
}

impl ResolvedAuth {
    /// Whether any authentication is required.
    pub fn is_enabled(&self) -> bool {
        self.basic.is_some() || self.bearer.is_some()
    }
}

impl AuthConfig {
    /// Whether any authentication is configured.
    pub fn is_enabled(&self) -> bool {
        self.username.is_some() || self.token_source_count() > 0
    }

    fn password_source_count(&self) -> usize {
        [
            self.password.is_some(),
            self.password_env.is_some(),
            self.password_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
    }

    fn token_source_count(&self) -> usize {
        [
            self.token.is_some(),
            self.token_env.is_some(),
            self.token_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count()
    }

    fn check(&self) -> Result<(), ConfigError> {
        match (self.username.is_some(), self.password_source_count()) {
            (true, 1) | (false, 0) => {}
            (true, 0) => {
                return Err(ConfigError::new(
                    "server.auth",
                    "username is set: set one of password, password_env, password_file",
                ))
            }
            (false, _) => {
                return Err(ConfigError::new(
                    "server.auth.username",
                    "a password needs a username",
                ))
            }
            (true, _) => {
                return Err(ConfigError::new(
                    "server.auth",
                    "set only one of password, password_env, password_file",
                ))
            }
        }
        if self.token_source_count() > 1 {
            return Err(ConfigError::new(
                "server.auth",
                "set only one of token, token_env, token_file",
            ));
        }
        Ok(())
    }

    /// Resolves the secrets, looking variables up with `env` and reading files with `read_file`.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<ResolvedAuth, ConfigError> {
        let password = resolve_secret(
            "server.auth.password",
            self.password.as_deref(),
            self.password_env.as_deref(),
            self.password_file.as_deref(),
            &env,
            &read_file,
        )?;
        let bearer = resolve_secret(
            "server.auth.token",
            self.token.as_deref(),
            self.token_env.as_deref(),
            self.token_file.as_deref(),
            &env,
            &read_file,
        )?;
        Ok(ResolvedAuth {
            basic: self.username.clone().zip(password),
            bearer,
        })
    }
}

/// Reads one secret from its value, variable or file; `key` names it in errors.
fn resolve_secret(
    key: &str,
    value: Option<&str>,
    var: Option<&str>,
    file: Option<&Path>,
    env: &impl Fn(&str) -> Option<String>,
    read_file: &impl Fn(&Path) -> std::io::Result<String>,
) -> Result<Option<Secret>, ConfigError> {
    let text = if let Some(v) = value {
        v.to_owned()
    } else if let Some(var) = var {
        env(var).ok_or_else(|| {
            ConfigError::new(
                format!("{key}_env"),
                format!("environment variable {var} is not set"),
            )
        })?
    } else if let Some(path) = file {
        read_file(path).map_err(|e| {
            ConfigError::new(
                format!("{key}_file"),
                format!("cannot read {}: {e}", path.display()),
            )
        })?
    } else {
        return Ok(None);
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(ConfigError::new(key, "the secret is empty"));
    }
    Ok(Some(Secret::new(text)))
}

/// `[clevertap]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClevertapConfig {
    /// The account's region (`in1`, `sg1`, `us1`, `aps3`, `mec1`, `eu1`).
    pub region: Region,
    /// A full base URL, overriding `region` (a proxy, or a fake CleverTap in tests).
    pub api_base_url: Option<String>,
    /// Timeout of one upload request, in seconds.
    pub timeout_secs: u64,
}

impl Default for ClevertapConfig {
    fn default() -> Self {
        ClevertapConfig {
            region: Region::Eu1,
            api_base_url: None,
            timeout_secs: 30,
        }
    }
}

impl ClevertapConfig {
    /// The uploader settings these values describe.
    pub fn uploader(&self) -> HttpUploaderConfig {
        HttpUploaderConfig {
            endpoint: match &self.api_base_url {
                Some(url) => Endpoint::BaseUrl(url.clone()),
                None => Endpoint::Region(self.region),
            },
            timeout: Duration::from_secs(self.timeout_secs.max(1)),
        }
    }
}

/// One `[[accounts]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// The account id.
    pub id: AccountId,
    /// The passcode itself (prefer `passcode_env` or `passcode_file`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "redact"
    )]
    pub passcode: Option<String>,
    /// The environment variable holding the passcode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode_env: Option<String>,
    /// A file holding the passcode (surrounding white space is trimmed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode_file: Option<PathBuf>,
    /// Most upload requests in flight for this account, overriding
    /// `delivery.max_concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<usize>,
}

fn redact<S: serde::Serializer>(_: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(crate::account::REDACTED)
}

/// How records are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// Store the webhook durably in the spool, answer at once (`pending`), deliver in the
    /// background. CleverTap waits only 3–5 s for an answer: this is the default.
    #[default]
    Async,
    /// Upload before answering the webhook (tests and small flows).
    Sync,
}

/// `[delivery]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// `async` (default) or `sync`.
    pub mode: DeliveryMode,
    /// The SQLite spool file (async mode). Default `clevertap-etl-spool.sqlite` in the working
    /// directory.
    pub spool: PathBuf,
    /// A body identical to one received this many seconds ago or less is a duplicate: answered
    /// with the original delivery, not queued again. Default 86400 (24 h).
    pub dedupe_window_secs: u64,
    /// Past this many records waiting in the spool, webhooks are answered 503 with
    /// `Retry-After`. Default 1,000,000.
    pub max_pending_records: u64,
    /// Finished deliveries and their payloads are pruned after this many days; 0 keeps them.
    /// Default 7.
    pub retention_days: u64,
    /// Records per upload request (1 to 1000). Default 1000.
    pub batch_size: usize,
    /// Largest upload request body in bytes (at least 1024). Default 1 MiB: CleverTap documents
    /// no limit, so this errs low.
    pub max_body_bytes: usize,
    /// Most upload requests in flight per account (1 to 1000). Default 15, CleverTap's current
    /// documented limit; `[[accounts]] max_concurrency` overrides it per account.
    pub max_concurrency: usize,
    /// Halve an account's concurrency on a 429 and raise it by one per success. Default `true`.
    pub adaptive: bool,
    /// Most attempts per record, the first included (1 to 100); throttled (429) attempts do not
    /// count. Default 5.
    pub max_attempts: u32,
    /// No retry starts later than this many seconds after a batch's first attempt. Default 300.
    pub max_retry_duration_secs: u64,
    /// Ceiling of the first retry's jittered wait, in milliseconds; it doubles per retry.
    /// Default 500.
    pub backoff_base_ms: u64,
    /// Largest jittered wait, in milliseconds. Default 30000.
    pub backoff_max_ms: u64,
    /// Longest `Retry-After` honoured, in seconds; longer ones are cut. Default 60.
    pub retry_after_max_secs: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let s = DeliverySettings::default();
        DeliveryConfig {
            mode: DeliveryMode::Async,
            spool: PathBuf::from("clevertap-etl-spool.sqlite"),
            dedupe_window_secs: 24 * 3600,
            max_pending_records: 1_000_000,
            retention_days: 7,
            batch_size: MAX_BATCH_SIZE,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            adaptive: s.adaptive,
            max_attempts: s.max_attempts,
            max_retry_duration_secs: s.max_retry_duration.as_secs(),
            backoff_base_ms: millis(s.backoff.base),
            backoff_max_ms: millis(s.backoff.max),
            retry_after_max_secs: s.backoff.retry_after_max.as_secs(),
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DeliveryConfig {
    /// The engine settings these values describe, without per-account overrides (see
    /// [`Config::delivery_settings`] for those).
    pub fn settings(&self) -> DeliverySettings {
        DeliverySettings {
            batch_size: self.batch_size,
            max_body_bytes: self.max_body_bytes,
            max_concurrency: self.max_concurrency,
            account_max_concurrency: Default::default(),
            adaptive: self.adaptive,
            max_attempts: self.max_attempts,
            max_retry_duration: Duration::from_secs(self.max_retry_duration_secs),
            backoff: Backoff {
                base: Duration::from_millis(self.backoff_base_ms),
                max: Duration::from_millis(self.backoff_max_ms),
                retry_after_max: Duration::from_secs(self.retry_after_max_secs),
            },
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let range = |key: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    format!("delivery.{key}"),
                    format!("must be between {min} and {max}, not {value}"),
                ))
            }
        };
        let size = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        range("batch_size", size(self.batch_size), 1, size(MAX_BATCH_SIZE))?;
        range("max_body_bytes", size(self.max_body_bytes), 1024, u64::MAX)?;
        range("max_concurrency", size(self.max_concurrency), 1, 1000)?;
        range("max_attempts", u64::from(self.max_attempts), 1, 100)?;
        range(
            "max_retry_duration_secs",
            self.max_retry_duration_secs,
            1,
            86_400,
        )?;
        range("backoff_base_ms", self.backoff_base_ms, 1, 3_600_000)?;
        range(
            "backoff_max_ms",
            self.backoff_max_ms,
            self.backoff_base_ms,
            3_600_000,
        )?;
        range("retry_after_max_secs", self.retry_after_max_secs, 0, 3600)?;
        Ok(())
    }
}

/// `[routing]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Honour a campaign's `key_values.target_passcode` for an account not configured here.
    pub allow_payload_credentials: bool,
}

/// A configuration fault, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration at `{path}`: {message}")]
pub struct ConfigError {
    /// The key, e.g. `accounts[0].passcode_env` or `delivery.batch_size`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Config {
    /// Parses and checks a TOML configuration.
    ///
    /// ```
    /// use clevertap_etl_core::Config;
    ///
    /// let config = Config::from_toml_str(r#"
    ///     [clevertap]
    ///     region = "in1"
    ///     [[accounts]]
    ///     id = "W44-Z4K-K65Z"
    ///     passcode_env = "CT_PASSCODE"
    /// "#)?;
    /// assert_eq!(config.accounts[0].id.as_str(), "W44-Z4K-K65Z");
    ///
    /// let err = Config::from_toml_str("[delivery]\nbatch_size = 5000").unwrap_err();
    /// assert_eq!(err.path, "delivery.batch_size");
    /// # Ok::<(), clevertap_etl_core::ConfigError>(())
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_str_with_env(text, std::iter::empty())
    }

    /// Parses a TOML configuration, then applies `CLEVERTAP_ETL_<SECTION>__<KEY>` overrides from
    /// `vars` (pass `std::env::vars()`), e.g. `CLEVERTAP_ETL_SERVER__LISTEN=0.0.0.0:8080` or
    /// `CLEVERTAP_ETL_ACCOUNTS__0__PASSCODE_ENV=CT_PASSCODE`. A value is read as TOML when it
    /// parses as one (numbers, booleans, arrays), else as a string. Overrides are checked like
    /// the file: an unknown key is an error naming it.
    pub fn from_toml_str_with_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::new(".", e.to_string()))?;
        crate::env_override::apply(&mut table, vars)?;
        let value = toml::Value::Table(table);
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().message().to_owned();
            ConfigError::new(path, message)
        })?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.server.auth.check()?;
        self.delivery.check()?;
        if self.delivery.mode == DeliveryMode::Async && self.routing.allow_payload_credentials {
            return Err(ConfigError::new(
                "routing.allow_payload_credentials",
                "payload credentials need delivery.mode = \"sync\": the spool never stores a passcode, \
                 so records for an account known only from the payload could not be delivered later",
            ));
        }
        if let Some(url) = &self.clevertap.api_base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::new(
                    "clevertap.api_base_url",
                    format!("{url:?} is not an http(s) URL"),
                ));
            }
        }
        for (i, a) in self.accounts.iter().enumerate() {
            let sources = [
                a.passcode.is_some(),
                a.passcode_env.is_some(),
                a.passcode_file.is_some(),
            ];
            if sources.iter().filter(|s| **s).count() != 1 {
                return Err(ConfigError::new(
                    format!("accounts[{i}]"),
                    "set exactly one of passcode, passcode_env, passcode_file",
                ));
            }
            if let Some(n) = a.max_concurrency.filter(|n| !(1..=1000).contains(n)) {
                return Err(ConfigError::new(
                    format!("accounts[{i}].max_concurrency"),
                    format!("must be between 1 and 1000, not {n}"),
                ));
            }
            if self.accounts[..i].iter().any(|b| b.id == a.id) {
                return Err(ConfigError::new(
                    format!("accounts[{i}].id"),
                    format!("account {} is listed twice", a.id),
                ));
            }
        }
        Ok(())
    }

    /// The delivery engine's settings: `[delivery]` with each account's `max_concurrency`.
    pub fn delivery_settings(&self) -> DeliverySettings {
        let mut settings = self.delivery.settings();
        settings.account_max_concurrency = self
            .accounts
            .iter()
            .filter_map(|a| Some((a.id.clone(), a.max_concurrency?)))
            .collect();
        settings
    }

    /// The intake limits of `[delivery]` (async mode).
    pub fn intake_settings(&self) -> crate::spool::IntakeSettings {
        crate::spool::IntakeSettings {
            dedupe_window: Duration::from_secs(self.delivery.dedupe_window_secs),
            max_pending_records: self.delivery.max_pending_records,
        }
    }

    /// The spool worker's settings of `[delivery]` (async mode).
    pub fn worker_settings(&self) -> crate::spool::WorkerSettings {
        let defaults = crate::spool::WorkerSettings::default();
        crate::spool::WorkerSettings {
            claim_limit: self.delivery.batch_size * self.delivery.max_concurrency.max(1),
            retention: (self.delivery.retention_days > 0)
                .then(|| Duration::from_secs(self.delivery.retention_days.saturating_mul(86_400))),
            ..defaults
        }
    }

    /// The routing these values describe.
    pub fn routing(&self) -> Routing {
        Routing {
            accounts: self.accounts.iter().map(|a| a.id.clone()).collect(),
            allow_payload_credentials: self.routing.allow_payload_credentials,
        }
    }

    /// Resolves every account's passcode, looking variables up with `env` and reading files with
    /// `read_file`. An unset variable or unreadable file is an error naming the key.
    pub fn credentials(
        &self,
        env: impl Fn(&str) -> Option<String>,
        read_file: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Vec<Credentials>, ConfigError> {
        self.accounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let secret = if let Some(p) = &a.passcode {
                    p.clone()
                } else if let Some(var) = &a.passcode_env {
                    env(var).ok_or_else(|| {
                        ConfigError::new(
                            format!("accounts[{i}].passcode_env"),
                            format!("environment variable {var} is not set"),
                        )
                    })?
                } else if let Some(path) = &a.passcode_file {
                    read_file(path)
                        .map_err(|e| {
                            ConfigError::new(
                                format!("accounts[{i}].passcode_file"),
                                format!("cannot read {}: {e}", path.display()),
                            )
                        })?
                        .trim()
                        .to_owned()
                } else {
                    unreachable_source(i)?
                };
                if secret.trim().is_empty() {
                    return Err(ConfigError::new(
                        format!("accounts[{i}]"),
                        "the passcode is empty",
                    ));
                }
                Ok(Credentials {
                    account_id: a.id.clone(),
                    passcode: Passcode::new(secret.trim()),
                })
            })
            .collect()
    }
}

fn unreachable_source(i: usize) -> Result<String, ConfigError> {
    Err(ConfigError::new(
        format!("accounts[{i}]"),
        "no passcode source",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_from_empty_text() {
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:8080");
        assert_eq!(c.delivery.batch_size, 1000);
        assert_eq!(c.transform, TransformSpec::default());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let err = Config::from_toml_str("[clevertap]\nregoin = \"in1\"").unwrap_err();
        assert_eq!(err.path, "clevertap.regoin");
        assert!(err.message.contains("regoin"), "{err}");
        let err = Config::from_toml_str("[clevertap]\nregion = \"mars\"").unwrap_err();
        assert_eq!(err.path, "clevertap.region");
    }

    #[test]
    fn passcodes_resolve_from_env_and_files() {
        let c = Config::from_toml_str(
            "[[accounts]]\nid = \"A\"\npasscode_env = \"PC\"\n[[accounts]]\nid = \"B\"\npasscode_file = \"/p\"",
        )
        .unwrap();
        let creds = c
            .credentials(
                |v| (v == "PC").then(|| "one".into()),
                |_| Ok(" two\n".into()),
            )
            .unwrap();
        assert_eq!(creds[0].passcode.expose(), "one");
        assert_eq!(creds[1].passcode.expose(), "two");
        let err = c.credentials(|_| None, |_| Ok("x".into())).unwrap_err();
        assert_eq!(err.path, "accounts[0].passcode_env");
    }

    #[test]
    fn account_needs_exactly_one_passcode_source() {
        let err = Config::from_toml_str("[[accounts]]\nid = \"A\"").unwrap_err();
        assert_eq!(err.path, "accounts[0]");
        let err = Config::from_toml_str(
            "[[accounts]]\nid = \"A\"\npasscode = \"x\"\npasscode_env = \"Y\"",
        )
        .unwrap_err();
        assert_eq!(err.path, "accounts[0]");
    }

    #[test]
    fn delivery_keys_parse_and_are_checked_with_their_path() {
        let c = Config::from_toml_str(
            "[delivery]\nmax_concurrency = 3\nadaptive = false\nmax_attempts = 2\n\
             backoff_base_ms = 10\nbackoff_max_ms = 20\nmax_body_bytes = 2048\n\
             [[accounts]]\nid = \"A\"\npasscode = \"x\"\nmax_concurrency = 7\n\
             [[accounts]]\nid = \"B\"\npasscode = \"y\"",
        )
        .unwrap();
        let s = c.delivery_settings();
        assert_eq!(s.max_concurrency, 3);
        assert!(!s.adaptive);
        assert_eq!(s.max_attempts, 2);
        assert_eq!(s.max_body_bytes, 2048);
        assert_eq!(s.backoff.max, Duration::from_millis(20));
        let a = AccountId::try_from("A").unwrap();
        let b = AccountId::try_from("B").unwrap();
        assert_eq!(s.max_concurrency_for(&a), 7);
        assert_eq!(s.max_concurrency_for(&b), 3);
        assert_eq!(
            Config::from_toml_str("").unwrap().delivery_settings(),
            DeliverySettings::default()
        );
        for (text, path) in [
            (
                "[delivery]\nmax_concurrency = 0",
                "delivery.max_concurrency",
            ),
            ("[delivery]\nmax_attempts = 0", "delivery.max_attempts"),
            ("[delivery]\nmax_body_bytes = 10", "delivery.max_body_bytes"),
            (
                "[delivery]\nbackoff_base_ms = 100\nbackoff_max_ms = 50",
                "delivery.backoff_max_ms",
            ),
            ("[delivery]\nmax_retries = 3", "delivery.max_retries"),
            (
                "[[accounts]]\nid = \"A\"\npasscode = \"x\"\nmax_concurrency = 0",
                "accounts[0].max_concurrency",
            ),
        ] {
            assert_eq!(
                Config::from_toml_str(text).unwrap_err().path,
                path,
                "{text}"
            );
        }
    }

    #[test]
    fn serialized_config_hides_passcodes() {
        let c =
            Config::from_toml_str("[[accounts]]\nid = \"A\"\npasscode = \"TOPSECRET\"").unwrap();
        let text = toml::to_string(&c).unwrap();
        assert!(!text.contains("TOPSECRET"), "{text}");
    }
}

#[cfg(test)]
mod server_tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn env_overrides_apply_and_are_checked() {
        let c = Config::from_toml_str_with_env(
            "[server]\nlisten = \"127.0.0.1:1\"",
            env_of(&[
                ("CLEVERTAP_ETL_SERVER__LISTEN", "0.0.0.0:8080"),
                ("CLEVERTAP_ETL_DELIVERY__BATCH_SIZE", "10"),
            ]),
        )
        .unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8080");
        assert_eq!(c.delivery.batch_size, 10);
        let err =
            Config::from_toml_str_with_env("", env_of(&[("CLEVERTAP_ETL_SERVER__LISTN", "x")]))
                .unwrap_err();
        assert_eq!(err.path, "server.listn");
    }

    #[test]
    fn auth_needs_consistent_sources_and_resolves_secrets() {
        let err = Config::from_toml_str("[server.auth]\nusername = \"u\"").unwrap_err();
        assert_eq!(err.path, "server.auth");
        let err = Config::from_toml_str("[server.auth]\npassword = \"p\"").unwrap_err();
        assert_eq!(err.path, "server.auth.username");
        let c = Config::from_toml_str(
            "[server.auth]\nusername = \"ct\"\npassword_env = \"PW\"\ntoken_file = \"/t\"",
        )
        .unwrap();
        let auth = c
            .server
            .auth
            .resolve(
                |v| (v == "PW").then(|| "pw-1".into()),
                |_| Ok("tok-1\n".into()),
            )
            .unwrap();
        assert_eq!(
            auth.basic.as_ref().map(|(u, p)| (u.as_str(), p.expose())),
            Some(("ct", "pw-1"))
        );
        assert_eq!(auth.bearer.as_ref().map(Secret::expose), Some("tok-1"));
        assert!(!format!("{auth:?}").contains("pw-1"));
        let err = c
            .server
            .auth
            .resolve(|_| None, |_| Ok("x".into()))
            .unwrap_err();
        assert_eq!(err.path, "server.auth.password_env");
    }

    #[test]
    fn public_address_needs_auth_or_an_explicit_opt_out() {
        let public: std::net::IpAddr = "0.0.0.0".parse().unwrap();
        let local: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let open = Config::from_toml_str("").unwrap().server;
        assert!(open.check_exposure(local).is_ok());
        assert_eq!(open.check_exposure(public).unwrap_err().path, "server.auth");
        let allowed = Config::from_toml_str("[server]\nallow_unauthenticated = true")
            .unwrap()
            .server;
        assert!(allowed.check_exposure(public).is_ok());
        let authed = Config::from_toml_str("[server.auth]\ntoken = \"t\"")
            .unwrap()
            .server;
        assert!(authed.check_exposure(public).is_ok());
    }

    #[test]
    fn serialized_auth_is_redacted() {
        let c = Config::from_toml_str(
            "[server.auth]\nusername = \"u\"\npassword = \"HUNTER2\"\ntoken = \"TOK\"",
        )
        .unwrap();
        let text = toml::to_string(&c).unwrap();
        assert!(
            !text.contains("HUNTER2") && !text.contains("TOK\""),
            "{text}"
        );
    }
}
