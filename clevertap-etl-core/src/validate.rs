//! Offline validation: CleverTap's Upload API rules, checked before sending, with CleverTap's
//! own codes.
//!
//! A record either passes (possibly after fixes, each listed as a [`Fix`]) or is rejected with a
//! [`Violation`] carrying the code CleverTap would have answered. What to do on each breach is a
//! setting ([`ValidationSettings`]); missing identity (523), missing event name (509) and
//! restricted event names (513) always reject.
//!
//! Codes: 509 missing event name, 513 restricted event name, 514 Gender, 515 Email, 516 Phone,
//! 517 Employed, 518 Education, 519 Married, 520 Age, 522 too many event properties,
//! 523 missing identity, 525 `ts` not epoch seconds. CleverTap documents no code of its own for
//! key length, key characters, value length and nested values; those use 512 ("invalid
//! structure").
//!
//! Invariant: pure; a record that passed (with its fixes applied) passes again unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::record::UploadRecord;
use crate::spec::{parse_yes_no, OnBreach, ValidationSettings};

/// One of CleverTap's rules (or a mapping step that could not be carried out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The record has no usable identifier (523).
    MissingIdentity,
    /// An event without a name (509).
    MissingEventName,
    /// An event named like one of CleverTap's system events (513).
    RestrictedEventName,
    /// `ts` is not in epoch seconds (525).
    Ts,
    /// A key (property or event name) longer than allowed (512).
    KeyLength,
    /// A key with a forbidden character, or an empty key (512).
    KeyChars,
    /// A string value longer than allowed (512).
    ValueLength,
    /// An object or array where CleverTap wants a scalar (512).
    Nested,
    /// More event properties than allowed (522).
    EventProperties,
    /// `Phone` is not E.164 (516).
    Phone,
    /// `Gender` is not M or F (514).
    Gender,
    /// `Email` is not an email address (515).
    Email,
    /// `Employed` is not Y or N (517).
    Employed,
    /// `Education` is not Graduate, College or School (518).
    Education,
    /// `Married` is not Y or N (519).
    Married,
    /// `Age` is not a whole number from 0 to 150 (520).
    Age,
    /// A mapping step (a conversion, a `ts` field) could not be carried out; no CleverTap code.
    Mapping,
}

impl Rule {
    /// CleverTap's per-record code for a breach of this rule.
    pub fn code(self) -> Option<u16> {
        Some(match self {
            Rule::MissingIdentity => 523,
            Rule::MissingEventName => 509,
            Rule::RestrictedEventName => 513,
            Rule::Ts => 525,
            Rule::KeyLength | Rule::KeyChars | Rule::ValueLength | Rule::Nested => 512,
            Rule::EventProperties => 522,
            Rule::Phone => 516,
            Rule::Gender => 514,
            Rule::Email => 515,
            Rule::Employed => 517,
            Rule::Education => 518,
            Rule::Married => 519,
            Rule::Age => 520,
            Rule::Mapping => return None,
        })
    }

    /// The rule's name, as serialized (`restricted_event_name`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::MissingIdentity => "missing_identity",
            Rule::MissingEventName => "missing_event_name",
            Rule::RestrictedEventName => "restricted_event_name",
            Rule::Ts => "ts",
            Rule::KeyLength => "key_length",
            Rule::KeyChars => "key_chars",
            Rule::ValueLength => "value_length",
            Rule::Nested => "nested",
            Rule::EventProperties => "event_properties",
            Rule::Phone => "phone",
            Rule::Gender => "gender",
            Rule::Email => "email",
            Rule::Employed => "employed",
            Rule::Education => "education",
            Rule::Married => "married",
            Rule::Age => "age",
            Rule::Mapping => "mapping",
        }
    }
}

impl FixAction {
    /// The action's name, as serialized (`kept_first`).
    pub fn name(self) -> &'static str {
        match self {
            FixAction::Truncated => "truncated",
            FixAction::Stripped => "stripped",
            FixAction::Stringified => "stringified",
            FixAction::Normalised => "normalised",
            FixAction::Dropped => "dropped",
            FixAction::KeptFirst => "kept_first",
        }
    }
}

/// One change made to a record so that it could be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fix {
    /// The rule that asked for it.
    pub rule: Rule,
    /// CleverTap's code for that rule, when it has one.
    pub code: Option<u16>,
    /// The key it touched (`evtName`, `ts`, or a property name as it came in).
    pub key: String,
    /// What was done.
    pub action: FixAction,
    /// The details, in words.
    pub detail: String,
}

/// What a [`Fix`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FixAction {
    /// Cut to the limit.
    Truncated,
    /// Forbidden characters removed.
    Stripped,
    /// An object or array written as its JSON text.
    Stringified,
    /// Rewritten to the form CleverTap wants (`+91…`, `M`, `Y`, `Graduate`, seconds).
    Normalised,
    /// The property (or `ts`) was removed.
    Dropped,
    /// Only the first items or properties were kept.
    KeptFirst,
}

/// Why a record is not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// CleverTap's code for it.
    pub code: u16,
    /// The key at fault, when there is one.
    pub key: Option<String>,
    /// Why, in words.
    pub reason: String,
}

/// CleverTap's restricted system event names (code 513), compared case-insensitively.
pub const RESTRICTED_EVENT_NAMES: &[&str] = &[
    "Notification Sent",
    "Notification Viewed",
    "Notification Clicked",
    "Notification Delivered",
    "Notification Replied",
    "UTM Visited",
    "App Launched",
    "App Uninstalled",
    "App Version Changed",
    "Stayed",
    "Reply Sent",
    "Experiment Rendered",
    "Reachable By",
    "Identity Reset",
    "Identity Set",
    "Identity Error",
];

/// Characters CleverTap forbids in event and property names.
pub const FORBIDDEN_KEY_CHARS: &[char] = &[
    '%', '>', '<', '!', '|', '&', '.', ':', ';', '$', '\'', '"', '\\',
];

/// The smallest `ts` read as milliseconds rather than seconds (year 5138 in seconds).
pub const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Checks a record against CleverTap's rules, fixing it in place where the settings say so.
/// Returns the fixes made, or why the record must not be sent (it may then be half-fixed).
///
/// ```
/// use clevertap_etl_core::record::{EventRecord, Identifier, UploadRecord};
/// use clevertap_etl_core::spec::ValidationSettings;
/// use clevertap_etl_core::validate::{validate, Rule};
///
/// let mut record = UploadRecord::Event(EventRecord {
///     identifier: Identifier::Identity("42".into()),
///     ts: Some(1_700_000_000_000), // milliseconds: CleverTap would answer 525
///     evt_name: "App Launched".into(),
///     evt_data: Default::default(),
/// });
/// let err = validate(&mut record, &ValidationSettings::default()).unwrap_err();
/// assert_eq!((err.rule, err.code), (Rule::RestrictedEventName, 513));
/// ```
pub fn validate(
    record: &mut UploadRecord,
    settings: &ValidationSettings,
) -> Result<Vec<Fix>, Violation> {
    let mut fixes = Vec::new();
    validate_into(record, settings, &mut fixes)?;
    Ok(fixes)
}

/// [`validate`], appending the fixes to `fixes`.
pub fn validate_into(
    record: &mut UploadRecord,
    settings: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<(), Violation> {
    if record.identifier().value().trim().is_empty() {
        return Err(violation(
            Rule::MissingIdentity,
            None,
            "the record's identifier is empty".into(),
        ));
    }
    match record {
        UploadRecord::Profile(p) => {
            check_ts(&mut p.ts, settings, fixes)?;
            check_properties(&mut p.profile_data, Kind::Profile, settings, fixes)
        }
        UploadRecord::Event(e) => {
            check_event_name(&mut e.evt_name, settings, fixes)?;
            check_ts(&mut e.ts, settings, fixes)?;
            let kind = Kind::Event {
                charged: e.evt_name == "Charged",
            };
            check_properties(&mut e.evt_data, kind, settings, fixes)?;
            check_property_count(&mut e.evt_data, settings, fixes)
        }
    }
}

/// Whether a record passes every rule as it is, with nothing to fix.
pub fn is_clean(record: &UploadRecord, settings: &ValidationSettings) -> bool {
    let mut copy = record.clone();
    matches!(validate(&mut copy, settings), Ok(f) if f.is_empty()) && copy == *record
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Profile,
    Event { charged: bool },
}

fn violation(rule: Rule, key: Option<&str>, reason: String) -> Violation {
    Violation {
        rule,
        code: rule.code().unwrap_or(512),
        key: key.map(str::to_owned),
        reason,
    }
}

fn fix(rule: Rule, key: &str, action: FixAction, detail: String) -> Fix {
    Fix {
        rule,
        code: rule.code(),
        key: key.to_owned(),
        action,
        detail,
    }
}

fn check_event_name(
    name: &mut String,
    s: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<(), Violation> {
    const KEY: &str = "evtName";
    if name.contains(FORBIDDEN_KEY_CHARS) {
        match s.key_chars {
            OnBreach::Reject => {
                return Err(violation(
                    Rule::KeyChars,
                    Some(KEY),
                    format!("event name {name:?} has a forbidden character"),
                ))
            }
            OnBreach::Fix | OnBreach::Drop => {
                let before = std::mem::take(name);
                *name = before.replace(FORBIDDEN_KEY_CHARS, "");
                fixes.push(fix(
                    Rule::KeyChars,
                    KEY,
                    FixAction::Stripped,
                    format!("{before:?} → {name:?}"),
                ));
            }
        }
    }
    if name.chars().count() > s.max_key_chars {
        match s.key_length {
            OnBreach::Reject | OnBreach::Drop => {
                return Err(violation(
                    Rule::KeyLength,
                    Some(KEY),
                    format!("event name is longer than {} characters", s.max_key_chars),
                ))
            }
            OnBreach::Fix => {
                truncate_chars(name, s.max_key_chars);
                fixes.push(fix(
                    Rule::KeyLength,
                    KEY,
                    FixAction::Truncated,
                    format!("to {} characters", s.max_key_chars),
                ));
            }
        }
    }
    if name.trim().is_empty() {
        return Err(violation(
            Rule::MissingEventName,
            Some(KEY),
            "the event has no name".into(),
        ));
    }
    if let Some(system) = RESTRICTED_EVENT_NAMES
        .iter()
        .find(|r| r.eq_ignore_ascii_case(name.trim()))
    {
        return Err(violation(
            Rule::RestrictedEventName,
            Some(KEY),
            format!("{system:?} is a restricted system event name"),
        ));
    }
    Ok(())
}

fn check_ts(
    ts: &mut Option<i64>,
    s: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<(), Violation> {
    let Some(value) = *ts else { return Ok(()) };
    if (0..MILLIS_THRESHOLD).contains(&value) {
        return Ok(());
    }
    let reason = format!("ts {value} is not in epoch seconds");
    match s.ts {
        OnBreach::Reject => Err(violation(Rule::Ts, Some("ts"), reason)),
        OnBreach::Fix if (MILLIS_THRESHOLD..MILLIS_THRESHOLD * 1000).contains(&value) => {
            *ts = Some(value / 1000);
            fixes.push(fix(
                Rule::Ts,
                "ts",
                FixAction::Normalised,
                format!("{value} read as milliseconds: {}", value / 1000),
            ));
            Ok(())
        }
        OnBreach::Fix | OnBreach::Drop => {
            *ts = None;
            fixes.push(fix(Rule::Ts, "ts", FixAction::Dropped, reason));
            Ok(())
        }
    }
}

fn check_property_count(
    data: &mut Map<String, Value>,
    s: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<(), Violation> {
    let count = data.len();
    if count <= s.max_event_properties {
        return Ok(());
    }
    match s.event_properties {
        OnBreach::Reject => Err(violation(
            Rule::EventProperties,
            None,
            format!(
                "{count} event properties, more than {}",
                s.max_event_properties
            ),
        )),
        OnBreach::Fix | OnBreach::Drop => {
            let kept: Map<String, Value> = std::mem::take(data)
                .into_iter()
                .take(s.max_event_properties)
                .collect();
            *data = kept;
            fixes.push(fix(
                Rule::EventProperties,
                "evtData",
                FixAction::KeptFirst,
                format!("kept {} of {count} properties", s.max_event_properties),
            ));
            Ok(())
        }
    }
}

/// Checks every property; rebuilds the map only when something must change.
fn check_properties(
    data: &mut Map<String, Value>,
    kind: Kind,
    s: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<(), Violation> {
    if data.iter().all(|(k, v)| entry_is_clean(k, v, kind, s)) {
        return Ok(());
    }
    let old = std::mem::take(data);
    for (key, value) in old {
        if let Some((key, value)) = fix_entry(key, value, kind, s, fixes)? {
            if data.contains_key(&key) {
                fixes.push(fix(
                    Rule::KeyChars,
                    &key,
                    FixAction::Dropped,
                    "an earlier property has the same name after fixing".into(),
                ));
                continue;
            }
            data.insert(key, value);
        }
    }
    Ok(())
}

fn key_is_clean(key: &str, kind: Kind, s: &ValidationSettings) -> bool {
    !key.is_empty()
        && (key.len() <= s.max_key_chars || key.chars().count() <= s.max_key_chars)
        && !key
            .bytes()
            .any(|b| is_forbidden_byte(b) || (b == b'#' && kind == Kind::Profile))
}

fn is_forbidden_byte(b: u8) -> bool {
    matches!(
        b,
        b'%' | b'>' | b'<' | b'!' | b'|' | b'&' | b'.' | b':' | b';' | b'$' | b'\'' | b'"' | b'\\'
    )
}

fn entry_is_clean(key: &str, value: &Value, kind: Kind, s: &ValidationSettings) -> bool {
    key_is_clean(key, kind, s)
        && match value {
            Value::String(text) => text.len() <= s.max_value_bytes,
            Value::Null | Value::Bool(_) | Value::Number(_) => true,
            Value::Array(items) => shape_ok(key, items, kind, s),
            Value::Object(_) => false,
        }
        && (kind != Kind::Profile || standard_field(key).is_none_or(|f| f.check(value)))
}

/// Whether an array value is allowed where it is: a multi-value profile property (strings,
/// within the item limit and the value length) or `Charged.Items` (objects).
fn shape_ok(key: &str, items: &[Value], kind: Kind, s: &ValidationSettings) -> bool {
    match kind {
        Kind::Profile => {
            items.len() <= s.max_profile_array_items
                && items
                    .iter()
                    .all(|i| matches!(i, Value::String(t) if t.len() <= s.max_value_bytes))
        }
        Kind::Event { charged } => charged && key == "Items" && items.iter().all(Value::is_object),
    }
}

/// Applies the key and value rules to one property. `None` drops it.
fn fix_entry(
    mut key: String,
    mut value: Value,
    kind: Kind,
    s: &ValidationSettings,
    fixes: &mut Vec<Fix>,
) -> Result<Option<(String, Value)>, Violation> {
    let original = key.clone();
    // Key: forbidden characters, emptiness, length.
    let forbidden =
        |c: char| FORBIDDEN_KEY_CHARS.contains(&c) || (c == '#' && kind == Kind::Profile);
    if key.contains(forbidden) {
        let reason = format!("property name {key:?} has a forbidden character");
        match s.key_chars {
            OnBreach::Reject => return Err(violation(Rule::KeyChars, Some(&original), reason)),
            OnBreach::Drop => {
                fixes.push(fix(Rule::KeyChars, &original, FixAction::Dropped, reason));
                return Ok(None);
            }
            OnBreach::Fix => {
                key.retain(|c| !forbidden(c));
                if key.is_empty() {
                    fixes.push(fix(
                        Rule::KeyChars,
                        &original,
                        FixAction::Dropped,
                        "nothing is left once forbidden characters are removed".into(),
                    ));
                    return Ok(None);
                }
                fixes.push(fix(
                    Rule::KeyChars,
                    &original,
                    FixAction::Stripped,
                    format!("renamed to {key:?}"),
                ));
            }
        }
    }
    if key.is_empty() {
        let reason = "empty property name".to_owned();
        if s.key_chars == OnBreach::Reject {
            return Err(violation(Rule::KeyChars, Some(&original), reason));
        }
        fixes.push(fix(Rule::KeyChars, &original, FixAction::Dropped, reason));
        return Ok(None);
    }
    if key.chars().count() > s.max_key_chars {
        let reason = format!("property name longer than {} characters", s.max_key_chars);
        match s.key_length {
            OnBreach::Reject => return Err(violation(Rule::KeyLength, Some(&original), reason)),
            OnBreach::Drop => {
                fixes.push(fix(Rule::KeyLength, &original, FixAction::Dropped, reason));
                return Ok(None);
            }
            OnBreach::Fix => {
                truncate_chars(&mut key, s.max_key_chars);
                if key.is_empty() {
                    fixes.push(fix(Rule::KeyLength, &original, FixAction::Dropped, reason));
                    return Ok(None);
                }
                fixes.push(fix(
                    Rule::KeyLength,
                    &original,
                    FixAction::Truncated,
                    format!("to {} characters", s.max_key_chars),
                ));
            }
        }
    }
    // Value: shape, then length, then CleverTap's standard profile fields.
    if !shape_allowed(&key, &value, kind, s) {
        let reason = format!("{} is not allowed here", crate::payload::json_kind(&value));
        match s.nested {
            OnBreach::Reject => return Err(violation(Rule::Nested, Some(&original), reason)),
            OnBreach::Drop => {
                fixes.push(fix(Rule::Nested, &original, FixAction::Dropped, reason));
                return Ok(None);
            }
            OnBreach::Fix => {
                let (new, action, detail) = fix_shape(value, kind, s);
                value = new;
                fixes.push(fix(Rule::Nested, &original, action, detail));
            }
        }
    }
    if !fits_length(&value, s) {
        let reason = format!("a value is longer than {} bytes", s.max_value_bytes);
        match s.value_length {
            OnBreach::Reject => return Err(violation(Rule::ValueLength, Some(&original), reason)),
            OnBreach::Drop => {
                fixes.push(fix(
                    Rule::ValueLength,
                    &original,
                    FixAction::Dropped,
                    reason,
                ));
                return Ok(None);
            }
            OnBreach::Fix => {
                truncate_values(&mut value, s.max_value_bytes);
                fixes.push(fix(
                    Rule::ValueLength,
                    &original,
                    FixAction::Truncated,
                    format!("to {} bytes", s.max_value_bytes),
                ));
            }
        }
    }
    if kind == Kind::Profile {
        if let Some(field) = standard_field(&key) {
            if !field.check(&value) {
                let rule = field.rule();
                let reason = format!("{key} {value} is not {}", field.expected());
                match field.on_breach(s) {
                    OnBreach::Reject => return Err(violation(rule, Some(&original), reason)),
                    OnBreach::Fix => {
                        if let Some(fixed) = field.repair(&value).filter(|v| field.check(v)) {
                            fixes.push(fix(
                                rule,
                                &original,
                                FixAction::Normalised,
                                format!("{value} → {fixed}"),
                            ));
                            value = fixed;
                        } else {
                            fixes.push(fix(rule, &original, FixAction::Dropped, reason));
                            return Ok(None);
                        }
                    }
                    OnBreach::Drop => {
                        fixes.push(fix(rule, &original, FixAction::Dropped, reason));
                        return Ok(None);
                    }
                }
            }
        }
    }
    Ok(Some((key, value)))
}

fn shape_allowed(key: &str, value: &Value, kind: Kind, s: &ValidationSettings) -> bool {
    match value {
        Value::Object(_) => false,
        Value::Array(items) => match kind {
            Kind::Profile => {
                items.len() <= s.max_profile_array_items && items.iter().all(Value::is_string)
            }
            Kind::Event { .. } => shape_ok(key, items, kind, s),
        },
        _ => true,
    }
}

/// Makes a value scalar: objects and arrays become JSON text, except that a profile array of
/// scalars stays an array of strings (cut to the item limit).
fn fix_shape(value: Value, kind: Kind, s: &ValidationSettings) -> (Value, FixAction, String) {
    if let (Kind::Profile, Value::Array(items)) = (&kind, &value) {
        if items.iter().all(|i| !i.is_object() && !i.is_array()) {
            let total = items.len();
            let strings: Vec<Value> = items
                .iter()
                .filter(|i| !i.is_null())
                .take(s.max_profile_array_items)
                .map(|i| Value::String(scalar_text(i)))
                .collect();
            return if total > s.max_profile_array_items {
                (
                    Value::Array(strings),
                    FixAction::KeptFirst,
                    format!("kept {} of {total} items", s.max_profile_array_items),
                )
            } else {
                (
                    Value::Array(strings),
                    FixAction::Normalised,
                    "items written as strings".into(),
                )
            };
        }
    }
    let text = value.to_string();
    (
        Value::String(text),
        FixAction::Stringified,
        format!("{} written as JSON text", crate::payload::json_kind(&value)),
    )
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fits_length(value: &Value, s: &ValidationSettings) -> bool {
    match value {
        Value::String(t) => t.len() <= s.max_value_bytes,
        Value::Array(items) => items
            .iter()
            .all(|i| !matches!(i, Value::String(t) if t.len() > s.max_value_bytes)),
        _ => true,
    }
}

fn truncate_values(value: &mut Value, max: usize) {
    match value {
        Value::String(t) => truncate_bytes(t, max),
        Value::Array(items) => {
            for item in items {
                if let Value::String(t) = item {
                    truncate_bytes(t, max);
                }
            }
        }
        _ => {}
    }
}

/// Cuts a string to at most `max` bytes, on a character boundary.
pub fn truncate_bytes(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
}

fn truncate_chars(text: &mut String, max: usize) {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
    }
}

/// CleverTap's standard profile fields that have a format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StandardField {
    Phone,
    Gender,
    Email,
    Employed,
    Education,
    Married,
    Age,
}

fn standard_field(key: &str) -> Option<StandardField> {
    Some(match key {
        "Phone" => StandardField::Phone,
        "Gender" => StandardField::Gender,
        "Email" => StandardField::Email,
        "Employed" => StandardField::Employed,
        "Education" => StandardField::Education,
        "Married" => StandardField::Married,
        "Age" => StandardField::Age,
        _ => return None,
    })
}

impl StandardField {
    fn rule(self) -> Rule {
        match self {
            StandardField::Phone => Rule::Phone,
            StandardField::Gender => Rule::Gender,
            StandardField::Email => Rule::Email,
            StandardField::Employed => Rule::Employed,
            StandardField::Education => Rule::Education,
            StandardField::Married => Rule::Married,
            StandardField::Age => Rule::Age,
        }
    }

    fn on_breach(self, s: &ValidationSettings) -> OnBreach {
        match self {
            StandardField::Phone => s.phone,
            StandardField::Gender => s.gender,
            StandardField::Email => s.email,
            StandardField::Employed => s.employed,
            StandardField::Education => s.education,
            StandardField::Married => s.married,
            StandardField::Age => s.age,
        }
    }

    fn expected(self) -> &'static str {
        match self {
            StandardField::Phone => "an E.164 number (+<country><number>)",
            StandardField::Gender => "M or F",
            StandardField::Email => "an email address",
            StandardField::Employed | StandardField::Married => "Y or N",
            StandardField::Education => "Graduate, College or School",
            StandardField::Age => "a whole number from 0 to 150",
        }
    }

    /// Whether the value is acceptable; `null` always is (it sets nothing).
    fn check(self, value: &Value) -> bool {
        if value.is_null() {
            return true;
        }
        match self {
            StandardField::Phone => value.as_str().is_some_and(is_e164),
            StandardField::Gender => matches!(value.as_str(), Some("M" | "F")),
            StandardField::Email => value.as_str().is_some_and(is_email),
            StandardField::Employed | StandardField::Married => {
                matches!(value.as_str(), Some("Y" | "N"))
            }
            StandardField::Education => {
                matches!(value.as_str(), Some("Graduate" | "College" | "School"))
            }
            StandardField::Age => value.as_u64().is_some_and(|a| a <= 150),
        }
    }

    /// A repaired value, when the value can be repaired.
    fn repair(self, value: &Value) -> Option<Value> {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let fixed = match self {
            StandardField::Phone => {
                let mut digits: String = text
                    .chars()
                    .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}'))
                    .collect();
                if let Some(rest) = digits.strip_prefix("00") {
                    digits = format!("+{rest}");
                }
                digits
            }
            StandardField::Gender => match text.to_ascii_lowercase().as_str() {
                "m" | "male" => "M".into(),
                "f" | "female" => "F".into(),
                _ => return None,
            },
            StandardField::Email => text,
            StandardField::Employed | StandardField::Married => match parse_yes_no(&text)? {
                true => "Y".into(),
                false => "N".into(),
            },
            StandardField::Education => ["Graduate", "College", "School"]
                .into_iter()
                .find(|e| e.eq_ignore_ascii_case(&text))?
                .into(),
            StandardField::Age => {
                let n: f64 = text.parse().ok()?;
                if n.fract() != 0.0 || !(0.0..=150.0).contains(&n) {
                    return None;
                }
                return Some(Value::from(n as u64));
            }
        };
        Some(Value::String(fixed))
    }
}

/// `+` then 7 to 15 digits, the first not 0.
fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// A plain syntactic check: `local@domain.tld`, no spaces, one `@`.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && text.len() <= 254
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{EventRecord, Identifier, ProfileRecord};
    use serde_json::json;

    fn profile(data: Value) -> UploadRecord {
        UploadRecord::Profile(ProfileRecord {
            identifier: Identifier::Identity("42".into()),
            ts: None,
            profile_data: serde_json::from_value(data).unwrap(),
        })
    }

    fn event(name: &str, data: Value) -> UploadRecord {
        UploadRecord::Event(EventRecord {
            identifier: Identifier::ObjectId("__a".into()),
            ts: None,
            evt_name: name.into(),
            evt_data: serde_json::from_value(data).unwrap(),
        })
    }

    fn strict() -> ValidationSettings {
        ValidationSettings::strict()
    }

    /// The code a record is rejected with under strict settings.
    fn code(mut record: UploadRecord) -> Option<u16> {
        validate(&mut record, &strict()).err().map(|v| v.code)
    }

    /// The record after default (fixing) validation, and the fixes.
    fn fixed(mut record: UploadRecord) -> (Value, Vec<(Rule, FixAction)>) {
        let fixes = validate(&mut record, &ValidationSettings::default()).unwrap();
        let value = record.to_value();
        assert!(
            is_clean(&record, &strict()),
            "fixed record is not clean: {value}"
        );
        (
            value,
            fixes.into_iter().map(|f| (f.rule, f.action)).collect(),
        )
    }

    #[test]
    fn clean_records_pass_untouched() {
        let r = profile(
            json!({"city": "Mumbai", "datetest": "$D_1589290950", "tags": ["a", "b"],
            "Phone": "+919876543210", "Gender": "F", "Email": "a@b.co", "Employed": "Y",
            "Education": "School", "Married": "N", "Age": 33, "DOB": null}),
        );
        assert_eq!(code(r.clone()), None);
        assert!(is_clean(&r, &strict()));
        let charged = event(
            "Charged",
            json!({"Amount": 10, "Items": [{"id": 1}, {"id": 2}]}),
        );
        assert_eq!(code(charged), None);
    }

    #[test]
    fn missing_identity_is_523() {
        let mut r = profile(json!({}));
        if let UploadRecord::Profile(p) = &mut r {
            p.identifier = Identifier::Identity("  ".into());
        }
        assert_eq!(code(r.clone()), Some(523));
        // Not fixable: default settings reject too.
        assert_eq!(
            validate(&mut r, &ValidationSettings::default())
                .unwrap_err()
                .rule,
            Rule::MissingIdentity
        );
    }

    #[test]
    fn missing_event_name_is_509() {
        assert_eq!(code(event(" ", json!({}))), Some(509));
        // Stripping forbidden characters that leaves nothing is a missing name too.
        let mut r = event("...", json!({}));
        let err = validate(&mut r, &ValidationSettings::default()).unwrap_err();
        assert_eq!(err.code, 509);
    }

    #[test]
    fn restricted_event_names_are_513_in_any_case() {
        assert_eq!(code(event("App Launched", json!({}))), Some(513));
        assert_eq!(code(event("notification viewed", json!({}))), Some(513));
        assert_eq!(code(event("App Launched Again", json!({}))), None);
    }

    #[test]
    fn ts_in_milliseconds_is_525_or_converted() {
        let mut r = event("E", json!({}));
        if let UploadRecord::Event(e) = &mut r {
            e.ts = Some(1_700_000_000_123);
        }
        assert_eq!(code(r.clone()), Some(525));
        let (v, fixes) = fixed(r.clone());
        assert_eq!(v["ts"], json!(1_700_000_000));
        assert_eq!(fixes, [(Rule::Ts, FixAction::Normalised)]);
        if let UploadRecord::Event(e) = &mut r {
            e.ts = Some(-5);
        }
        let (v, fixes) = fixed(r);
        assert_eq!(v.get("ts"), None);
        assert_eq!(fixes, [(Rule::Ts, FixAction::Dropped)]);
    }

    #[test]
    fn long_keys_are_512_or_truncated() {
        let long = "k".repeat(121);
        assert_eq!(code(profile(json!({ long.clone(): 1 }))), Some(512));
        let (v, fixes) = fixed(profile(json!({ long: 1 })));
        assert_eq!(v["profileData"]["k".repeat(120)], json!(1));
        assert_eq!(fixes, [(Rule::KeyLength, FixAction::Truncated)]);
        let name = "é".repeat(121);
        let (v, _) = fixed(event(&name, json!({})));
        assert_eq!(v["evtName"].as_str().unwrap().chars().count(), 120);
    }

    #[test]
    fn a_zero_key_limit_never_leaves_empty_names() {
        let s = ValidationSettings {
            max_key_chars: 0,
            ..ValidationSettings::default()
        };
        let mut r = event("E", json!({"k": 1}));
        assert_eq!(validate(&mut r, &s).unwrap_err().code, 509);
        let mut r = profile(json!({"k": 1}));
        validate(&mut r, &s).unwrap();
        assert_eq!(r.to_value()["profileData"], json!({}));
    }

    #[test]
    fn forbidden_key_characters_are_512_or_stripped() {
        assert_eq!(code(event("E", json!({"a.b": 1}))), Some(512));
        assert_eq!(code(event("Buy!", json!({}))), Some(512));
        assert_eq!(code(profile(json!({"tag#1": 1}))), Some(512));
        assert_eq!(code(event("E", json!({"tag#1": 1}))), None); // `#` only in profile keys
        let (v, fixes) = fixed(profile(json!({"a.b": 1, "ab": 2, "$%": 3})));
        assert_eq!(v["profileData"], json!({"ab": 1}));
        assert_eq!(
            fixes,
            [
                (Rule::KeyChars, FixAction::Stripped),
                (Rule::KeyChars, FixAction::Dropped), // "ab" now collides
                (Rule::KeyChars, FixAction::Dropped), // "$%" would be empty
            ]
        );
    }

    #[test]
    fn long_values_are_512_or_truncated_on_a_char_boundary() {
        let long = "é".repeat(300); // 600 bytes
        assert_eq!(code(event("E", json!({"v": long.clone()}))), Some(512));
        let (v, fixes) = fixed(event("E", json!({"v": long})));
        assert_eq!(v["evtData"]["v"].as_str().unwrap().len(), 512);
        assert_eq!(fixes, [(Rule::ValueLength, FixAction::Truncated)]);
    }

    #[test]
    fn nested_values_are_512_or_stringified() {
        assert_eq!(code(event("E", json!({"o": {"a": 1}}))), Some(512));
        assert_eq!(code(event("E", json!({"Items": [{"a": 1}]}))), Some(512)); // not Charged
        assert_eq!(code(profile(json!({"l": [1, 2]}))), Some(512));
        let (v, _) = fixed(event("E", json!({"o": {"a": 1}, "l": [1]})));
        assert_eq!(v["evtData"], json!({"o": "{\"a\":1}", "l": "[1]"}));
        let (v, fixes) = fixed(profile(
            json!({"l": [1, true, "x"], "many": vec!["x"; 150]}),
        ));
        assert_eq!(v["profileData"]["l"], json!(["1", "true", "x"]));
        assert_eq!(v["profileData"]["many"].as_array().unwrap().len(), 100);
        assert_eq!(
            fixes,
            [
                (Rule::Nested, FixAction::Normalised),
                (Rule::Nested, FixAction::KeptFirst)
            ]
        );
    }

    #[test]
    fn too_many_event_properties_is_522() {
        let data: Map<String, Value> = (0..300).map(|i| (format!("p{i}"), json!(i))).collect();
        let r = event("E", Value::Object(data));
        assert_eq!(code(r.clone()), Some(522));
        let mut s = ValidationSettings::default();
        assert_eq!(validate(&mut r.clone(), &s).unwrap_err().code, 522); // default rejects
        s.event_properties = OnBreach::Fix;
        let mut kept = r;
        validate(&mut kept, &s).unwrap();
        let UploadRecord::Event(e) = kept else {
            unreachable!()
        };
        assert_eq!(e.evt_data.len(), 256);
        assert!(e.evt_data.contains_key("p255"));
    }

    #[test]
    fn phone_is_516_or_normalised() {
        assert_eq!(code(profile(json!({"Phone": "98765 43210"}))), Some(516));
        assert_eq!(code(profile(json!({"Phone": 919876543210_u64}))), Some(516));
        let (v, _) = fixed(profile(json!({"Phone": "0091 (98765) 43-210"})));
        assert_eq!(v["profileData"]["Phone"], json!("+919876543210"));
        let (v, fixes) = fixed(profile(json!({"Phone": "call me"})));
        assert_eq!(v["profileData"], json!({}));
        assert_eq!(fixes, [(Rule::Phone, FixAction::Dropped)]);
    }

    #[test]
    fn gender_is_514_or_normalised() {
        assert_eq!(code(profile(json!({"Gender": "Male"}))), Some(514));
        let (v, _) = fixed(profile(json!({"Gender": "female"})));
        assert_eq!(v["profileData"]["Gender"], json!("F"));
        let (v, _) = fixed(profile(json!({"Gender": "X"})));
        assert_eq!(v["profileData"], json!({}));
    }

    #[test]
    fn email_is_515_or_trimmed() {
        assert_eq!(code(profile(json!({"Email": "not-an-email"}))), Some(515));
        assert_eq!(code(profile(json!({"Email": "a@b"}))), Some(515));
        let (v, _) = fixed(profile(json!({"Email": " a@b.co "})));
        assert_eq!(v["profileData"]["Email"], json!("a@b.co"));
    }

    #[test]
    fn employed_and_married_are_517_519_or_normalised() {
        assert_eq!(code(profile(json!({"Employed": "yes"}))), Some(517));
        assert_eq!(code(profile(json!({"Married": true}))), Some(519));
        let (v, _) = fixed(profile(json!({"Employed": "yes", "Married": false})));
        assert_eq!(v["profileData"], json!({"Employed": "Y", "Married": "N"}));
    }

    #[test]
    fn education_is_518_or_normalised() {
        assert_eq!(code(profile(json!({"Education": "graduate"}))), Some(518));
        let (v, _) = fixed(profile(json!({"Education": "COLLEGE"})));
        assert_eq!(v["profileData"]["Education"], json!("College"));
        let (v, _) = fixed(profile(json!({"Education": "PhD"})));
        assert_eq!(v["profileData"], json!({}));
    }

    #[test]
    fn age_is_520_or_normalised() {
        assert_eq!(code(profile(json!({"Age": "33"}))), Some(520));
        assert_eq!(code(profile(json!({"Age": 200}))), Some(520));
        assert_eq!(code(profile(json!({"Age": -1}))), Some(520));
        let (v, _) = fixed(profile(json!({"Age": "33"})));
        assert_eq!(v["profileData"]["Age"], json!(33));
    }

    #[test]
    fn standard_fields_only_apply_to_profiles_and_exact_names() {
        assert_eq!(code(event("E", json!({"Gender": "x"}))), None);
        assert_eq!(code(profile(json!({"gender": "x"}))), None);
    }

    #[test]
    fn drop_setting_removes_the_property() {
        let s = ValidationSettings {
            gender: OnBreach::Drop,
            nested: OnBreach::Drop,
            ..ValidationSettings::default()
        };
        let mut r = profile(json!({"Gender": "male", "o": {"a": 1}, "k": 1}));
        let fixes = validate(&mut r, &s).unwrap();
        assert_eq!(r.to_value()["profileData"], json!({"k": 1}));
        assert!(fixes.iter().all(|f| f.action == FixAction::Dropped));
    }

    #[test]
    fn rule_codes_serialize_snake_case() {
        assert_eq!(
            serde_json::to_value(Rule::RestrictedEventName).unwrap(),
            json!("restricted_event_name")
        );
        assert_eq!(Rule::Mapping.code(), None);
        for rule in [
            Rule::MissingIdentity,
            Rule::KeyChars,
            Rule::Mapping,
            Rule::Age,
        ] {
            assert_eq!(serde_json::to_value(rule).unwrap(), json!(rule.name()));
        }
        for action in [FixAction::KeptFirst, FixAction::Normalised] {
            assert_eq!(serde_json::to_value(action).unwrap(), json!(action.name()));
        }
    }
}
