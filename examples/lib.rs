//! Shared material of the clevertap-etl examples: the bundled sample payloads and sample
//! configurations, so every example, the docs and their tests read the same bytes.
//!
//! Run an example with `cargo run -p clevertap-etl-examples --example NAME`; see `README.md`.

/// The hackathon seed's sample payload (one profile; profile and event upload).
pub const SEED: &str = include_str!("payloads/seed.json");
/// A live campaign with three profiles, one of them without an `objectId`.
pub const LIVE_CAMPAIGN: &str = include_str!("payloads/live-campaign.json");
/// A campaign naming a restricted system event (`App Launched`).
pub const RESTRICTED_EVENT: &str = include_str!("payloads/restricted-event.json");
/// CleverTap's test call, sent when a webhook is created (`is_test`, capitalised keys).
pub const TEST_CALL: &str = include_str!("payloads/test-call.json");

/// The sample configurations of `configs/`, used by `docs/configuration.md` and
/// `docs/operations.md`. Each one is checked by this crate's tests.
pub mod configs {
    /// `configs/minimal.toml`: one account, its passcode from the environment.
    pub const MINIMAL: &str = include_str!("configs/minimal.toml");
    /// `configs/production.toml`: auth from the environment, async spool, two accounts with
    /// their own concurrency, JSON logs.
    pub const PRODUCTION: &str = include_str!("configs/production.toml");
    /// `configs/mapping.toml`: a rich `[transform]` table.
    pub const MAPPING: &str = include_str!("configs/mapping.toml");
    /// `configs/sandbox.toml`: for `serve --sandbox`.
    pub const SANDBOX: &str = include_str!("configs/sandbox.toml");

    /// Every sample configuration, by file name.
    pub const ALL: [(&str, &str); 4] = [
        ("minimal.toml", MINIMAL),
        ("production.toml", PRODUCTION),
        ("mapping.toml", MAPPING),
        ("sandbox.toml", SANDBOX),
    ];
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clevertap_etl_core::config::{DeliveryMode, LogFormat};
    use clevertap_etl_core::spec::{FieldPath, OnBreach};
    use clevertap_etl_core::{transform, Config, UnixSeconds, UploadRecord, WebhookPayload};

    use super::configs;

    #[test]
    fn every_bundled_payload_decodes() {
        for body in [
            super::SEED,
            super::LIVE_CAMPAIGN,
            super::RESTRICTED_EVENT,
            super::TEST_CALL,
        ] {
            let payload = WebhookPayload::from_slice(body.as_bytes()).unwrap();
            assert!(!payload.profiles.is_empty());
        }
    }

    #[test]
    fn every_sample_config_parses() {
        for (name, text) in configs::ALL {
            if let Err(e) = Config::from_toml_str(text) {
                panic!("examples/configs/{name}: {e}");
            }
        }
    }

    #[test]
    fn production_config_says_what_the_docs_say() {
        let c = Config::from_toml_str(configs::PRODUCTION).unwrap();
        assert_eq!(c.server.log_format, LogFormat::Json);
        assert!(c.server.auth.is_enabled());
        assert_eq!(c.delivery.mode, DeliveryMode::Async);
        assert_eq!(c.accounts.len(), 2);
        let s = c.delivery_settings();
        let limits: Vec<usize> = c
            .accounts
            .iter()
            .map(|a| s.max_concurrency_for(&a.id))
            .collect();
        assert_eq!(limits, [10, 5]);
        // Secrets come from the environment and files only.
        assert!(c.accounts.iter().all(|a| a.passcode.is_none()));
        assert!(c.server.auth.password.is_none() && c.server.auth.token.is_none());
        // Both auth secrets and both passcodes resolve from their sources.
        let env = |v: &str| Some(format!("secret-of-{v}"));
        let file = |_: &std::path::Path| Ok("secret-from-file\n".to_owned());
        assert_eq!(c.credentials(env, file).unwrap().len(), 2);
        assert!(c.server.auth.resolve(env, file).unwrap().is_enabled());
    }

    #[test]
    fn env_overrides_apply_to_the_production_config() {
        let c = Config::from_toml_str_with_env(
            configs::PRODUCTION,
            [
                (
                    "CLEVERTAP_ETL_DELIVERY__BATCH_SIZE".to_owned(),
                    "500".to_owned(),
                ),
                (
                    "CLEVERTAP_ETL_ACCOUNTS__1__MAX_CONCURRENCY".to_owned(),
                    "3".to_owned(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(c.delivery.batch_size, 500);
        assert_eq!(c.accounts[1].max_concurrency, Some(3));
    }

    #[test]
    fn mapping_config_transforms_the_seed_payload() {
        let c = Config::from_toml_str(configs::MAPPING).unwrap();
        assert_eq!(c.transform.validation.phone, OnBreach::Reject);
        assert_eq!(
            c.transform.profile.copy["Last Campaign"],
            FieldPath::TargetId
        );
        let payload = WebhookPayload::from_slice(super::SEED.as_bytes()).unwrap();
        let now = UnixSeconds(1_700_000_000);
        let plan = transform(&payload, &c.transform, &c.routing(), now).unwrap();
        assert!(plan.skipped.is_empty(), "{:?}", plan.skipped);
        let records: Vec<&UploadRecord> =
            plan.accounts[0].records.iter().map(|r| &r.record).collect();
        assert_eq!(records.len(), 3, "one profile and two events");
        let values: Vec<serde_json::Value> = records.iter().map(|r| r.to_value()).collect();
        let profile = &values[0];
        assert_eq!(profile["identity"], "1234", "identity comes first");
        assert_eq!(profile["ts"], 1_700_000_000);
        let data = &profile["profileData"];
        assert_eq!(data["City"], "Mumbai");
        assert_eq!(data["Api Test"], "23");
        assert_eq!(data["test"], 1233);
        assert_eq!(data["datetest"], "$D_1589290950");
        assert_eq!(data["Name"], "Yash TEST");
        assert_eq!(data["Loaded By"], "clevertap-etl");
        assert!(data.get("itp").is_none() && data.get("evtname").is_none());
        let event = &values[1];
        assert_eq!(event["evtName"], "Webhook Received");
        assert_eq!(event["evtData"]["App Version"], "2.2");
        assert!(event["evtData"].get("CT Source").is_none());
        let synced = &values[2];
        assert_eq!(synced["evtName"], "Profile Synced");
        assert_eq!(synced["ts"], 1_589_290_950);
        assert_eq!(synced["evtData"]["City"], "Mumbai");
        assert_eq!(synced["evtData"]["Mapping Version"], 2);
    }

    /// The ```toml blocks of the docs, each parsed on its own.
    #[test]
    fn toml_snippets_in_the_docs_parse() {
        for (doc, text) in [
            (
                "docs/configuration.md",
                include_str!("../docs/configuration.md"),
            ),
            ("docs/operations.md", include_str!("../docs/operations.md")),
            ("README.md", include_str!("../README.md")),
        ] {
            let mut blocks = 0;
            for block in text.split("```toml").skip(1) {
                let snippet = block.split("```").next().unwrap();
                if let Err(e) = Config::from_toml_str(snippet) {
                    panic!("{doc}: {e}\n{snippet}");
                }
                blocks += 1;
            }
            assert!(blocks > 0, "{doc} has no toml block");
        }
    }

    /// The override example of `docs/configuration.md`, applied to `minimal.toml`.
    #[test]
    fn env_override_example_in_the_docs_applies() {
        let doc = include_str!("../docs/configuration.md");
        let section = doc.split("## Environment overrides").nth(1).unwrap();
        let block = section
            .split("```sh")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        let vars: Vec<(String, String)> = block
            .lines()
            .map(|l| l.split('#').next().unwrap().trim())
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect();
        assert!(vars.len() >= 5, "{vars:?}");
        let c = Config::from_toml_str_with_env(configs::MINIMAL, vars).unwrap();
        assert_eq!(c.server.listen, "0.0.0.0:8080");
        assert_eq!(c.server.log_format, LogFormat::Json);
        assert_eq!(c.delivery.batch_size, 500);
        assert_eq!(c.accounts.len(), 2);
        assert_eq!(c.accounts[0].passcode_env.as_deref(), Some("CT_PASSCODE"));
        assert_eq!(c.transform.validation.phone, OnBreach::Reject);
    }

    #[test]
    fn sandbox_config_is_sync_and_names_the_bundled_payloads_account() {
        let c = Config::from_toml_str(configs::SANDBOX).unwrap();
        assert_eq!(c.delivery.mode, DeliveryMode::Sync);
        assert_eq!(c.accounts[0].id.as_str(), "W44-Z4K-K65Z");
    }
}
