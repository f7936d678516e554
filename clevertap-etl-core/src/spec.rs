//! The transform spec: what is loaded back into CleverTap, as plain data.
//!
//! It is read from the config file's `[transform]` table, or built in Rust. Its `Default` is the
//! seed script's behaviour: one profile record with `profileData`, one `"From Webhook"` event
//! with `event_properties`, both keyed by `objectId`, no `ts`.
//!
//! ```toml
//! [transform]
//! identifiers = ["identity", "objectId"]
//!
//! [transform.profile]
//! exclude = ["itp"]
//! copy = { Name = "name", Email = "email", Plan = "key_values.plan" }
//! convert = { apitest = "string" }
//! ts = "now"
//!
//! [[transform.events]]            # the seed's event, kept
//! [[transform.events]]
//! name = "Webhook Seen"
//! source = "none"
//! constants = { Channel = "webhook" }
//! ts = { field = "event_properties.Timestamp", unit = "auto" }
//!
//! [transform.validation]
//! max_event_properties = 100
//! phone = "reject"
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The whole transform spec (the config file's `[transform]` table).
///
/// Every key has a default; an empty table is the seed script's behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransformSpec {
    /// Upload profile records unless the campaign's `profile_upload` says otherwise.
    pub profile_upload: bool,
    /// Upload event records unless the campaign's `event_upload` says otherwise.
    pub event_upload: bool,
    /// The identifier each record carries: the first of these the profile has.
    pub identifiers: Vec<IdentifierSource>,
    /// The event name, unless the campaign's `event_name` key/value names another. Used by
    /// every event that does not set its own `name`.
    pub event_name: String,
    /// `[transform.profile]`: how the profile record is built.
    pub profile: ProfileSpec,
    /// `[[transform.events]]`: the events raised per profile, in order. Absent means one
    /// event, [`EventSpec::default`] (the seed's); `events = []` means none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventSpec>>,
    /// `[transform.validation]`: CleverTap's rules, checked offline, and what to do on a breach.
    pub validation: ValidationSettings,
}

impl Default for TransformSpec {
    fn default() -> Self {
        TransformSpec {
            profile_upload: true,
            event_upload: true,
            identifiers: vec![IdentifierSource::ObjectId],
            event_name: DEFAULT_EVENT_NAME.to_owned(),
            profile: ProfileSpec::default(),
            events: None,
            validation: ValidationSettings::default(),
        }
    }
}

/// `[transform.profile]`: the profile record's properties.
///
/// Properties are built in this order: the `source` object's keys (after `include`, `exclude`
/// and `rename`), then `copy`, then `constants` (later steps overwrite earlier ones), then
/// `convert` on the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileSpec {
    /// Where the properties come from (default `profileData`).
    pub source: Source,
    /// The record's `ts` (default `"none"`).
    pub ts: TsSpec,
    /// Only these source keys, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Never these source keys.
    pub exclude: Vec<String>,
    /// Source key → property name.
    pub rename: BTreeMap<String, String>,
    /// Property name → payload field to copy (`name`, `key_values.plan`, ...).
    pub copy: BTreeMap<String, FieldPath>,
    /// Property name → constant value.
    pub constants: BTreeMap<String, Value>,
    /// Property name → conversion applied last.
    pub convert: BTreeMap<String, Conversion>,
}

impl Default for ProfileSpec {
    fn default() -> Self {
        ProfileSpec {
            source: Source::ProfileData,
            ts: TsSpec::default(),
            include: None,
            exclude: Vec::new(),
            rename: BTreeMap::new(),
            copy: BTreeMap::new(),
            constants: BTreeMap::new(),
            convert: BTreeMap::new(),
        }
    }
}

/// `[[transform.events]]`: one event raised per profile. The keys after `name` work as in
/// [`ProfileSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventSpec {
    /// The event's name. Absent: the campaign's `event_name` key/value, else the spec's
    /// `event_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where the properties come from (default `event_properties`).
    pub source: Source,
    /// The record's `ts` (default `"none"`).
    pub ts: TsSpec,
    /// Only these source keys, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include: Option<Vec<String>>,
    /// Never these source keys.
    pub exclude: Vec<String>,
    /// Source key → property name.
    pub rename: BTreeMap<String, String>,
    /// Property name → payload field to copy.
    pub copy: BTreeMap<String, FieldPath>,
    /// Property name → constant value.
    pub constants: BTreeMap<String, Value>,
    /// Property name → conversion applied last.
    pub convert: BTreeMap<String, Conversion>,
}

impl Default for EventSpec {
    fn default() -> Self {
        EventSpec {
            name: None,
            source: Source::EventProperties,
            ts: TsSpec::default(),
            include: None,
            exclude: Vec::new(),
            rename: BTreeMap::new(),
            copy: BTreeMap::new(),
            constants: BTreeMap::new(),
            convert: BTreeMap::new(),
        }
    }
}

/// The property mapping shared by [`ProfileSpec`] and [`EventSpec`], borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Mapping<'a> {
    /// Where the properties come from.
    pub source: Source,
    /// The record's `ts`.
    pub ts: &'a TsSpec,
    /// Only these source keys, when given.
    pub include: Option<&'a [String]>,
    /// Never these source keys.
    pub exclude: &'a [String],
    /// Source key → property name.
    pub rename: &'a BTreeMap<String, String>,
    /// Property name → payload field.
    pub copy: &'a BTreeMap<String, FieldPath>,
    /// Property name → constant.
    pub constants: &'a BTreeMap<String, Value>,
    /// Property name → conversion.
    pub convert: &'a BTreeMap<String, Conversion>,
}

impl ProfileSpec {
    /// The mapping part.
    pub fn mapping(&self) -> Mapping<'_> {
        Mapping {
            source: self.source,
            ts: &self.ts,
            include: self.include.as_deref(),
            exclude: &self.exclude,
            rename: &self.rename,
            copy: &self.copy,
            constants: &self.constants,
            convert: &self.convert,
        }
    }
}

impl EventSpec {
    /// The mapping part.
    pub fn mapping(&self) -> Mapping<'_> {
        Mapping {
            source: self.source,
            ts: &self.ts,
            include: self.include.as_deref(),
            exclude: &self.exclude,
            rename: &self.rename,
            copy: &self.copy,
            constants: &self.constants,
            convert: &self.convert,
        }
    }
}

impl Mapping<'_> {
    /// `true` when the source object is copied as it is.
    pub fn is_plain_copy(&self) -> bool {
        self.include.is_none()
            && self.exclude.is_empty()
            && self.rename.is_empty()
            && self.copy.is_empty()
            && self.constants.is_empty()
            && self.convert.is_empty()
    }
}

/// The object a record's properties start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The profile's `profileData`.
    #[serde(rename = "profileData", alias = "profile_data")]
    ProfileData,
    /// The profile's `event_properties` (empty for past-behaviour campaigns).
    #[serde(rename = "event_properties", alias = "eventProperties")]
    EventProperties,
    /// The campaign key/values seen by the profile (its own over the top-level ones), without
    /// `target_passcode`, which is never copied into a record.
    #[serde(rename = "key_values", alias = "keyValues")]
    KeyValues,
    /// Nothing: only `copy` and `constants`.
    #[serde(rename = "none")]
    None,
}

/// A record's `ts`: `"none"`, `"now"`, or `{ field = "...", unit = "auto" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TsSpec {
    /// `"none"` or `"now"`.
    Keyword(TsKeyword),
    /// Taken from a payload field; absent or unreadable there means no `ts` (listed as a fix).
    Field(TsField),
}

impl Default for TsSpec {
    fn default() -> Self {
        TsSpec::Keyword(TsKeyword::None)
    }
}

/// The keyword forms of [`TsSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TsKeyword {
    /// No `ts`: CleverTap uses the time it receives the record (the seed's behaviour).
    None,
    /// The `now` passed to [`transform`](crate::transform()).
    Now,
}

/// `ts` read from a payload field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsField {
    /// The field, e.g. `event_properties.Timestamp`.
    pub field: FieldPath,
    /// How its value is read (default `auto`).
    #[serde(default)]
    pub unit: TsUnit,
}

/// How a timestamp field is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TsUnit {
    /// Numbers (or numeric strings) of 10^11 and more are milliseconds, smaller ones seconds;
    /// `$D_<seconds>` and RFC 3339 strings are read as such.
    #[default]
    Auto,
    /// Epoch seconds, as given (a milliseconds value then breaks rule 525).
    Seconds,
    /// Epoch milliseconds.
    Millis,
    /// An RFC 3339 date-time (`2024-05-12T09:30:00Z`, `+05:30` offsets).
    Rfc3339,
}

impl TsUnit {
    /// The unit's name, as written in the spec.
    pub fn name(self) -> &'static str {
        match self {
            TsUnit::Auto => "auto",
            TsUnit::Seconds => "seconds",
            TsUnit::Millis => "millis",
            TsUnit::Rfc3339 => "rfc3339",
        }
    }
}

/// A conversion applied to a property value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversion {
    /// To a JSON number (from a numeric string or a boolean).
    Number,
    /// To a boolean (from `yes`/`no`/`true`/`false`/`1`/`0`, any case, or a number).
    Bool,
    /// To a string (scalars as their text, objects and arrays as JSON).
    String,
    /// To a CleverTap date `$D_<epoch seconds>` (from seconds, milliseconds, RFC 3339).
    Date,
}

impl Conversion {
    /// The conversion's name, as written in the spec.
    pub fn name(self) -> &'static str {
        match self {
            Conversion::Number => "number",
            Conversion::Bool => "bool",
            Conversion::String => "string",
            Conversion::Date => "date",
        }
    }
}

/// A field of the webhook payload, as seen from one profile: `identity`, `email`, `objectId`,
/// `name`, `push_token`, `all_identities`, `targetId`, or `key_values.K`, `profileData.K`,
/// `event_properties.K`, `profile.K` (a profile key this library does not model).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FieldPath {
    /// The profile's `identity`.
    Identity,
    /// The profile's `email`.
    Email,
    /// The profile's `objectId`.
    ObjectId,
    /// The profile's `name`.
    Name,
    /// The profile's `push_token`.
    PushToken,
    /// The profile's `all_identities` (an array of strings).
    AllIdentities,
    /// The payload's `targetId` (the campaign id).
    TargetId,
    /// A campaign key/value (the profile's own copy first).
    KeyValue(String),
    /// A key of `profileData`.
    ProfileData(String),
    /// A key of `event_properties`.
    EventProperties(String),
    /// A key of the profile object that is not modelled (kept in `extra`).
    Profile(String),
}

/// Why a [`FieldPath`] could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldPathError {
    /// Not one of the known fields or prefixes.
    #[error("unknown field `{0}`: expected identity, email, objectId, name, push_token, all_identities, targetId, or key_values.K, profileData.K, event_properties.K, profile.K")]
    Unknown(String),
}

impl TryFrom<String> for FieldPath {
    type Error = FieldPathError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let canon = |s: &str| -> String {
            s.chars()
                .filter(|c| *c != '_' && *c != '-')
                .map(|c| c.to_ascii_lowercase())
                .collect()
        };
        if let Some((head, key)) = text.split_once('.') {
            if !key.is_empty() {
                let key = key.to_owned();
                match canon(head).as_str() {
                    "keyvalues" => return Ok(FieldPath::KeyValue(key)),
                    "profiledata" => return Ok(FieldPath::ProfileData(key)),
                    "eventproperties" => return Ok(FieldPath::EventProperties(key)),
                    "profile" => return Ok(FieldPath::Profile(key)),
                    _ => {}
                }
            }
            return Err(FieldPathError::Unknown(text));
        }
        Ok(match canon(&text).as_str() {
            "identity" => FieldPath::Identity,
            "email" => FieldPath::Email,
            "objectid" => FieldPath::ObjectId,
            "name" => FieldPath::Name,
            "pushtoken" => FieldPath::PushToken,
            "allidentities" => FieldPath::AllIdentities,
            "targetid" => FieldPath::TargetId,
            _ => return Err(FieldPathError::Unknown(text)),
        })
    }
}

impl From<FieldPath> for String {
    fn from(path: FieldPath) -> String {
        match path {
            FieldPath::Identity => "identity".into(),
            FieldPath::Email => "email".into(),
            FieldPath::ObjectId => "objectId".into(),
            FieldPath::Name => "name".into(),
            FieldPath::PushToken => "push_token".into(),
            FieldPath::AllIdentities => "all_identities".into(),
            FieldPath::TargetId => "targetId".into(),
            FieldPath::KeyValue(k) => format!("key_values.{k}"),
            FieldPath::ProfileData(k) => format!("profileData.{k}"),
            FieldPath::EventProperties(k) => format!("event_properties.{k}"),
            FieldPath::Profile(k) => format!("profile.{k}"),
        }
    }
}

/// `[transform.validation]`: limits, and per rule what to do when a record breaks it.
///
/// Missing identity (523), missing event name (509) and restricted event names (513) always
/// reject the record; the other rules take an [`OnBreach`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// Longest key (property or event name), in characters.
    pub max_key_chars: usize,
    /// Longest string value, in UTF-8 bytes.
    pub max_value_bytes: usize,
    /// Most properties per event (CleverTap's docs say 256, newer pages 100).
    pub max_event_properties: usize,
    /// Most items in a multi-value profile property.
    pub max_profile_array_items: usize,
    /// A key too long: `fix` truncates it.
    pub key_length: OnBreach,
    /// Forbidden characters in a key or event name: `fix` strips them.
    pub key_chars: OnBreach,
    /// A string value too long: `fix` truncates it on a character boundary.
    pub value_length: OnBreach,
    /// An object or array where CleverTap wants a scalar: `fix` stringifies it as JSON (too
    /// many multi-value items: keeps the first ones).
    pub nested: OnBreach,
    /// More event properties than allowed (522): `fix` keeps the first ones.
    pub event_properties: OnBreach,
    /// A `ts` that is not epoch seconds (525): `fix` reads a milliseconds value as such.
    pub ts: OnBreach,
    /// `Phone` not E.164 (516): `fix` removes spaces, dashes, dots and brackets, `00` → `+`.
    pub phone: OnBreach,
    /// `Gender` not M/F (514): `fix` maps `male`/`female`/`m`/`f`, any case.
    pub gender: OnBreach,
    /// `Email` invalid (515): `fix` trims spaces.
    pub email: OnBreach,
    /// `Employed` not Y/N (517): `fix` maps yes/no/true/false.
    pub employed: OnBreach,
    /// `Education` not Graduate/College/School (518): `fix` corrects the case.
    pub education: OnBreach,
    /// `Married` not Y/N (519): `fix` maps yes/no/true/false.
    pub married: OnBreach,
    /// `Age` not a whole number from 0 to 150 (520): `fix` reads a numeric string.
    pub age: OnBreach,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        ValidationSettings {
            max_key_chars: 120,
            max_value_bytes: 512,
            max_event_properties: 256,
            max_profile_array_items: 100,
            key_length: OnBreach::Fix,
            key_chars: OnBreach::Fix,
            value_length: OnBreach::Fix,
            nested: OnBreach::Fix,
            event_properties: OnBreach::Reject,
            ts: OnBreach::Fix,
            phone: OnBreach::Fix,
            gender: OnBreach::Fix,
            email: OnBreach::Fix,
            employed: OnBreach::Fix,
            education: OnBreach::Fix,
            married: OnBreach::Fix,
            age: OnBreach::Fix,
        }
    }
}

impl ValidationSettings {
    /// Every rule set to reject, limits as default: what CleverTap itself does (it repairs
    /// nothing). The sandbox answers with these.
    pub fn strict() -> Self {
        ValidationSettings {
            key_length: OnBreach::Reject,
            key_chars: OnBreach::Reject,
            value_length: OnBreach::Reject,
            nested: OnBreach::Reject,
            event_properties: OnBreach::Reject,
            ts: OnBreach::Reject,
            phone: OnBreach::Reject,
            gender: OnBreach::Reject,
            email: OnBreach::Reject,
            employed: OnBreach::Reject,
            education: OnBreach::Reject,
            married: OnBreach::Reject,
            age: OnBreach::Reject,
            ..ValidationSettings::default()
        }
    }
}

/// What to do with a record that breaks a rule. Every fix or drop is listed in the record's
/// `fixes`.
///
/// The event name cannot be dropped: for it, `drop` strips forbidden characters like `fix`, and
/// a name too long is rejected unless the setting is `fix` (truncate). A name left empty is a
/// missing name (509).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBreach {
    /// Do not send the record; it goes to `Plan::skipped` with CleverTap's code.
    Reject,
    /// Repair the value as the rule says; when it cannot be repaired, drop the property.
    Fix,
    /// Drop the offending property (or `ts`, or the properties past the limit) and send the rest.
    Drop,
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

    const EXAMPLE: &str = r#"
identifiers = ["identity", "objectId"]

[profile]
exclude = ["itp"]
copy = { Name = "name", Email = "email", Plan = "key_values.plan" }
convert = { apitest = "string" }
ts = "now"

[[events]]
[[events]]
name = "Webhook Seen"
source = "none"
constants = { Channel = "webhook" }
ts = { field = "event_properties.Timestamp", unit = "auto" }

[validation]
max_event_properties = 100
phone = "reject"
"#;

    #[test]
    fn documented_example_parses_and_round_trips() {
        let spec: TransformSpec = toml::from_str(EXAMPLE).unwrap();
        assert_eq!(
            spec.profile.copy["Plan"],
            FieldPath::KeyValue("plan".into())
        );
        assert_eq!(spec.profile.ts, TsSpec::Keyword(TsKeyword::Now));
        let events = spec.events.as_ref().unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0], EventSpec::default());
        assert_eq!(
            events[1].ts,
            TsSpec::Field(TsField {
                field: FieldPath::EventProperties("Timestamp".into()),
                unit: TsUnit::Auto
            })
        );
        assert_eq!(spec.validation.phone, OnBreach::Reject);
        let text = toml::to_string(&spec).unwrap();
        assert_eq!(toml::from_str::<TransformSpec>(&text).unwrap(), spec);
        let text = toml::to_string(&TransformSpec::default()).unwrap();
        assert_eq!(
            toml::from_str::<TransformSpec>(&text).unwrap(),
            TransformSpec::default()
        );
    }

    #[test]
    fn empty_events_means_none_and_absent_means_the_seed_event() {
        let spec: TransformSpec = toml::from_str("events = []").unwrap();
        assert_eq!(spec.events, Some(vec![]));
        assert_eq!(TransformSpec::default().events, None);
    }

    #[test]
    fn unknown_nested_keys_and_bad_fields_are_rejected() {
        for (text, needle) in [
            ("[profile]\nexclud = []", "exclud"),
            ("[[events]]\nnmae = \"x\"", "nmae"),
            ("[validation]\nphone = \"maybe\"", "maybe"),
            ("[profile]\ncopy = { A = \"nope\" }", "nope"),
            ("[profile]\nconvert = { A = \"float\" }", "float"),
            ("[profile]\nts = { field = \"name\", unt = \"auto\" }", "ts"),
        ] {
            let err = toml::from_str::<TransformSpec>(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
        }
    }

    #[test]
    fn field_paths_read_case_and_underscore_insensitively() {
        for (text, want) in [
            ("objectId", FieldPath::ObjectId),
            ("push_token", FieldPath::PushToken),
            ("pushToken", FieldPath::PushToken),
            ("key_values.plan", FieldPath::KeyValue("plan".into())),
            ("profileData.a.b", FieldPath::ProfileData("a.b".into())),
            (
                "EVENT_PROPERTIES.Time",
                FieldPath::EventProperties("Time".into()),
            ),
        ] {
            assert_eq!(
                FieldPath::try_from(text.to_owned()).unwrap(),
                want,
                "{text}"
            );
        }
        assert!(FieldPath::try_from("key_values.".to_owned()).is_err());
        assert!(FieldPath::try_from("phone".to_owned()).is_err());
    }

    #[test]
    fn unknown_spec_keys_are_rejected() {
        let err = toml::from_str::<TransformSpec>("event_nmae = \"x\"").unwrap_err();
        assert!(err.to_string().contains("event_nmae"), "{err}");
    }
}
