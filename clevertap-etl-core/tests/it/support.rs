//! Shared helpers: fixtures and credentials.

use std::path::PathBuf;

use clevertap_etl_core::{AccountId, Credentials, Passcode, WebhookPayload};

/// The path of a fixture under `tests/fixtures/`.
pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fixture's bytes.
pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// A fixture decoded as a webhook payload.
pub fn payload(name: &str) -> WebhookPayload {
    WebhookPayload::from_slice(&fixture(name)).unwrap()
}

/// Test credentials.
pub fn credentials(account: &str, passcode: &str) -> Credentials {
    Credentials {
        account_id: AccountId::try_from(account).unwrap(),
        passcode: Passcode::new(passcode),
    }
}
