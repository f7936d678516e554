//! Shared material of the clevertap-etl examples: the bundled sample payloads, so every example
//! and its test read the same bytes.
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

#[cfg(test)]
mod tests {
    use clevertap_etl_core::WebhookPayload;

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
}
