//! The transform spec: what is loaded back into CleverTap, as plain data.
//!
//! It is read from the config file's `[transform]` table, or built in Rust. Its `Default` is the
//! seed script's behaviour: one profile record with `profileData`, one `"From Webhook"` event
//! with `event_properties`, both keyed by `objectId`.

use serde::{Deserialize, Serialize};

use crate::account::AccountId;

/// Which identifier a record carries, tried in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdentifierSource {
    /// The profile's `objectId`.
    #[serde(rename = "objectId", alias = "object_id")]
    ObjectId,
    /// The profile's `identity`.
    #[serde(rename = "identity")]
    Identity,
    /// The profile's `email`, sent as its `identity`.
    #[serde(rename = "email")]
    Email,
}

/// The whole transform spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformSpec {
    /// Upload profile records unless the campaign's `profile_upload` says otherwise.
    pub profile_upload: bool,
    /// Upload event records unless the campaign's `event_upload` says otherwise.
    pub event_upload: bool,
    /// The identifier each record carries: the first of these the profile has.
    pub identifiers: Vec<IdentifierSource>,
    /// The event name, unless the campaign's `event_name` key/value names another.
    pub event_name: String,
}

impl Default for TransformSpec {
    fn default() -> Self {
        TransformSpec {
            profile_upload: true,
            event_upload: true,
            identifiers: vec![IdentifierSource::ObjectId],
            event_name: DEFAULT_EVENT_NAME.to_owned(),
        }
    }
}

/// The seed's event name.
pub const DEFAULT_EVENT_NAME: &str = "From Webhook";

/// Where records go: the configured accounts, and whether a payload may bring its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routing {
    /// The accounts records may be loaded into; the first is the default. Empty means any
    /// account the payload names (used by `transform` without a config, which uploads nothing).
    pub accounts: Vec<AccountId>,
    /// Honour `key_values.target_passcode` for an account that is not configured.
    pub allow_payload_credentials: bool,
}

/// Reads a campaign flag: `yes`/`no`/`true`/`false`/`1`/`0`/`on`/`off`, any case.
pub fn parse_yes_no(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "1" | "on" => Some(true),
        "no" | "n" | "false" | "0" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yes_no_is_case_insensitive() {
        for (t, want) in [
            ("YES", Some(true)),
            ("False", Some(false)),
            (" no ", Some(false)),
            ("maybe", None),
        ] {
            assert_eq!(parse_yes_no(t), want, "{t}");
        }
    }

    #[test]
    fn unknown_spec_keys_are_rejected() {
        let err = toml::from_str::<TransformSpec>("event_nmae = \"x\"").unwrap_err();
        assert!(err.to_string().contains("event_nmae"), "{err}");
    }
}
