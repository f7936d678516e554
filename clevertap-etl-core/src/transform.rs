//! The pure transform: a decoded webhook payload and a spec in, a [`Plan`] out.
//!
//! Invariant: nothing here reads a clock, a file or a socket; the time is passed in.

use serde::Serialize;
use serde_json::Value;

use crate::account::{AccountId, Credentials, Passcode};
use crate::payload::{lookup_ci, Object, WebhookPayload, WebhookProfile};
use crate::record::{EventRecord, Identifier, ProfileRecord, UploadRecord};
use crate::spec::{
    parse_yes_no, Conversion, EventSpec, FieldPath, IdentifierSource, Mapping, Routing, Source,
    TransformSpec, TsKeyword, TsSpec,
};
use crate::timestamp::epoch_seconds;
use crate::validate::{validate_into, Fix, FixAction, Rule};

/// A point in time, in UNIX epoch seconds (CleverTap's unit for `ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnixSeconds(pub i64);

impl UnixSeconds {
    /// The system clock, now. For callers of the transform (adapters, the spool worker): the
    /// transform itself never calls this, it is handed the time.
    pub fn now() -> Self {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        UnixSeconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// What the transform decided: the records per target account, and what it will not send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The campaign id the payload carried.
    pub target_id: Option<Value>,
    /// `true` for CleverTap's test call: nothing should be uploaded.
    pub is_test: bool,
    /// Records to upload, grouped by target account, in payload order.
    pub accounts: Vec<AccountPlan>,
    /// Records (or would-be records) the transform will not send, with CleverTap's code.
    pub skipped: Vec<Skipped>,
}

/// The records bound for one account.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountPlan {
    /// Where they go.
    pub target: Target,
    /// What goes there.
    pub records: Vec<PlannedRecord>,
}

/// The account a group of records is loaded into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Target {
    /// One of the configured accounts (the service holds its passcode).
    Configured(AccountId),
    /// An account the payload named with its own passcode (only with
    /// `allow_payload_credentials`). The passcode serializes redacted.
    FromPayload(Credentials),
}

impl Target {
    /// The account id.
    pub fn account_id(&self) -> &AccountId {
        match self {
            Target::Configured(id) => id,
            Target::FromPayload(c) => &c.account_id,
        }
    }
}

impl Serialize for Credentials {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.account_id.serialize(s)
    }
}

/// One record to upload, and the input profile it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedRecord {
    /// Index of the source profile in the payload's `profiles`.
    pub profile: usize,
    /// The record as it will be sent.
    pub record: UploadRecord,
    /// What mapping and validation changed so that it could be sent.
    pub fixes: Vec<Fix>,
}

/// A record the transform will not send.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    /// Index of the source profile in the payload's `profiles`.
    pub profile: usize,
    /// The record, or what is known of it.
    pub record: Value,
    /// CleverTap's code for the fault (523 missing identity, 509 missing event name, ...).
    pub code: u16,
    /// Why, in words.
    pub reason: String,
    /// The rule it breaks.
    pub rule: Rule,
    /// The key at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The account it would have gone to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<AccountId>,
    /// Fixes made before the record was rejected.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fixes: Vec<Fix>,
}

/// Why a payload cannot be planned at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransformError {
    /// The payload names an account that is not configured.
    #[error("target account {account:?} at `{path}` is not configured")]
    UnknownAccount {
        /// The account the payload named.
        account: String,
        /// Where it named it.
        path: String,
    },
    /// No account is configured and the payload names none.
    #[error("no target account: the payload has no `key_values.target_account` and no account is configured")]
    NoAccount,
    /// The payload's account id is not a valid id.
    #[error("invalid target account at `{path}`: {message}")]
    InvalidAccount {
        /// Where the bad id is.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

impl TransformError {
    /// The JSON path the error is about, when it has one.
    pub fn path(&self) -> Option<&str> {
        match self {
            TransformError::UnknownAccount { path, .. }
            | TransformError::InvalidAccount { path, .. } => Some(path),
            TransformError::NoAccount => None,
        }
    }
}

impl Plan {
    /// How many records the plan will upload.
    pub fn record_count(&self) -> usize {
        self.accounts.iter().map(|a| a.records.len()).sum()
    }
}

/// Maps a webhook payload to upload records, per the spec and routing. Pure and deterministic.
///
/// ```
/// use clevertap_etl_core::{transform, Routing, TransformSpec, UnixSeconds, WebhookPayload};
///
/// let payload = WebhookPayload::from_slice(br#"{"key_values": {"target_account": "ACC-1"},
///     "profiles": [{"objectId": "__a", "profileData": {"city": "Pune"}}]}"#)?;
/// let plan = transform(&payload, &TransformSpec::default(), &Routing::default(), UnixSeconds(0))?;
/// assert_eq!(plan.accounts[0].target.account_id().as_str(), "ACC-1");
/// assert_eq!(plan.record_count(), 2); // a profile record and a "From Webhook" event
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn transform(
    payload: &WebhookPayload,
    spec: &TransformSpec,
    routing: &Routing,
    now: UnixSeconds,
) -> Result<Plan, TransformError> {
    let mut planner = Planner::new(payload, spec, payload.profiles.len());
    for (index, profile) in payload.profiles.iter().enumerate() {
        planner.add(profile, index, routing, now, Spare::default())?;
    }
    Ok(planner.plan)
}

/// [`transform`], consuming the payload so that source objects used once as they are
/// (`profileData` by the profile record and `event_properties` by the one event, under the
/// default spec) move into the records instead of being copied. Same plan, less allocation: for
/// the webhook path, where the payload is not needed afterwards. ([`explain`](crate::explain())
/// needs the payload: use [`transform`] there.)
///
/// ```
/// use clevertap_etl_core::{transform, transform_owned, Routing, TransformSpec, UnixSeconds, WebhookPayload};
///
/// let payload = WebhookPayload::from_slice(br#"{"key_values": {"target_account": "ACC-1"},
///     "profiles": [{"objectId": "__a", "profileData": {"city": "Pune"}}]}"#)?;
/// let (spec, routing) = (TransformSpec::default(), Routing::default());
/// let borrowed = transform(&payload, &spec, &routing, UnixSeconds(0))?;
/// assert_eq!(transform_owned(payload, &spec, &routing, UnixSeconds(0))?, borrowed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn transform_owned(
    mut payload: WebhookPayload,
    spec: &TransformSpec,
    routing: &Routing,
    now: UnixSeconds,
) -> Result<Plan, TransformError> {
    let profiles = std::mem::take(&mut payload.profiles);
    let mut planner = Planner::new(&payload, spec, profiles.len());
    let movable = planner.movable();
    for (index, mut profile) in profiles.into_iter().enumerate() {
        let spare = Spare::take(&mut profile, movable);
        planner.add(&profile, index, routing, now, spare)?;
    }
    Ok(planner.plan)
}

/// The plan being built, profile by profile.
struct Planner<'a> {
    payload: &'a WebhookPayload,
    spec: &'a TransformSpec,
    events: std::borrow::Cow<'a, [EventSpec]>,
    count: usize,
    records: Vec<PlannedRecord>,
    plan: Plan,
}

impl<'a> Planner<'a> {
    fn new(payload: &'a WebhookPayload, spec: &'a TransformSpec, count: usize) -> Self {
        Planner {
            payload,
            spec,
            events: match &spec.events {
                Some(events) => std::borrow::Cow::Borrowed(events.as_slice()),
                None => std::borrow::Cow::Owned(vec![EventSpec::default()]),
            },
            count,
            records: Vec::new(),
            plan: Plan {
                target_id: payload.target_id.clone(),
                is_test: payload.is_test,
                accounts: Vec::new(),
                skipped: Vec::new(),
            },
        }
    }

    /// Which sources may be moved: those used by exactly one mapping, as its plain-copy source
    /// (no `copy` or `ts` field reads them anywhere).
    fn movable(&self) -> Movable {
        let mappings = std::iter::once(self.spec.profile.mapping())
            .chain(self.events.iter().map(EventSpec::mapping));
        let (mut uses, mut plain) = ([0usize; 2], [false; 2]);
        for m in mappings {
            let slot = |s: Source| match s {
                Source::ProfileData => Some(0),
                Source::EventProperties => Some(1),
                Source::KeyValues | Source::None => None,
            };
            if let Some(i) = slot(m.source) {
                uses[i] += 1;
                plain[i] = m.is_plain_copy();
            }
            let fields = m.copy.values().chain(match m.ts {
                TsSpec::Field(f) => Some(&f.field),
                TsSpec::Keyword(_) => None,
            });
            for field in fields {
                match field {
                    FieldPath::ProfileData(_) => uses[0] += 1,
                    FieldPath::EventProperties(_) => uses[1] += 1,
                    _ => {}
                }
            }
        }
        Movable {
            profile_data: uses[0] == 1 && plain[0],
            event_properties: uses[1] == 1 && plain[1],
        }
    }

    fn add(
        &mut self,
        profile: &WebhookProfile,
        index: usize,
        routing: &Routing,
        now: UnixSeconds,
        mut spare: Spare,
    ) -> Result<(), TransformError> {
        let target = route(self.payload, profile, index, routing)?;
        let ctx = Ctx {
            payload: self.payload,
            profile,
            index,
            spec: self.spec,
            now,
            account: target.account_id(),
        };
        ctx.records(
            &self.events,
            &mut spare,
            &mut self.records,
            &mut self.plan.skipped,
        );
        if self.records.is_empty() {
            return Ok(());
        }
        match self.plan.accounts.iter_mut().find(|a| a.target == target) {
            Some(group) => group.records.append(&mut self.records),
            None => {
                // Most payloads go to one account: size its group once instead of growing it.
                let left = self.count.saturating_sub(index);
                let per_profile = 1 + self.events.len();
                let mut group = Vec::with_capacity(left.saturating_mul(per_profile));
                group.append(&mut self.records);
                self.plan.accounts.push(AccountPlan {
                    target,
                    records: group,
                });
            }
        }
        Ok(())
    }
}

/// Which of a profile's objects [`transform_owned`] may move into a record.
#[derive(Debug, Clone, Copy, Default)]
struct Movable {
    profile_data: bool,
    event_properties: bool,
}

/// Objects taken out of an owned profile, for the one record that copies each as it is.
#[derive(Debug, Default)]
struct Spare {
    profile_data: Option<Object>,
    event_properties: Option<Object>,
}

impl Spare {
    fn take(profile: &mut WebhookProfile, movable: Movable) -> Self {
        Spare {
            profile_data: movable
                .profile_data
                .then(|| std::mem::take(&mut profile.profile_data)),
            event_properties: if movable.event_properties {
                profile.event_properties.take()
            } else {
                None
            },
        }
    }
}

fn route(
    payload: &WebhookPayload,
    profile: &WebhookProfile,
    index: usize,
    routing: &Routing,
) -> Result<Target, TransformError> {
    let (named, own) = match profile
        .key_values
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("target_account"))
    {
        Some((_, v)) if !v.is_null() => (Some(v), true),
        _ => (payload.key_value(profile, "target_account"), false),
    };
    // Built only for errors: this runs once per profile.
    let path = || {
        if own {
            format!("profiles[{index}].key_values.target_account")
        } else {
            "key_values.target_account".to_owned()
        }
    };
    let Some(named) = named else {
        return routing
            .accounts
            .first()
            .cloned()
            .map(Target::Configured)
            .ok_or(TransformError::NoAccount);
    };
    // The common case, a configured account named as it is configured: one clone, no parsing.
    if let Value::String(s) = named {
        if let Some(known) = routing.accounts.iter().find(|a| a.as_str() == s.trim()) {
            return Ok(Target::Configured(known.clone()));
        }
    }
    let text = match named {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let id = AccountId::try_from(text.as_str()).map_err(|e| TransformError::InvalidAccount {
        path: path(),
        message: e.to_string(),
    })?;
    if routing.accounts.is_empty() || routing.accounts.contains(&id) {
        return Ok(Target::Configured(id));
    }
    if routing.allow_payload_credentials {
        if let Some(Value::String(pass)) = payload.key_value(profile, "target_passcode") {
            return Ok(Target::FromPayload(Credentials {
                account_id: id,
                passcode: Passcode::new(pass.clone()),
            }));
        }
    }
    Err(TransformError::UnknownAccount {
        account: text,
        path: path(),
    })
}

/// A campaign flag: the profile's own key/value, else the top-level one, else `default`. An
/// unreadable value (`"maybe"`) counts as absent.
fn flag(payload: &WebhookPayload, profile: &WebhookProfile, key: &str, default: bool) -> bool {
    let read = |v: Option<&Value>| match v {
        Some(Value::String(s)) => parse_yes_no(s),
        Some(Value::Bool(b)) => Some(*b),
        _ => None,
    };
    read(lookup_ci(&profile.key_values, key))
        .or_else(|| read(lookup_ci(&payload.key_values, key)))
        .unwrap_or(default)
}

fn identifier(profile: &WebhookProfile, spec: &TransformSpec) -> Option<Identifier> {
    spec.identifiers.iter().find_map(|source| match source {
        IdentifierSource::ObjectId => profile.object_id.clone().map(Identifier::ObjectId),
        IdentifierSource::Identity => profile.identity.clone().map(Identifier::Identity),
        IdentifierSource::Email => profile.email.clone().map(Identifier::Identity),
    })
}

/// One profile being mapped.
struct Ctx<'a> {
    payload: &'a WebhookPayload,
    profile: &'a WebhookProfile,
    index: usize,
    spec: &'a TransformSpec,
    now: UnixSeconds,
    account: &'a AccountId,
}

impl Ctx<'_> {
    /// The profile's records, validated: good ones to `out`, rejected ones to `skipped`.
    fn records(
        &self,
        events: &[EventSpec],
        spare: &mut Spare,
        out: &mut Vec<PlannedRecord>,
        skipped: &mut Vec<Skipped>,
    ) {
        let (payload, profile, spec) = (self.payload, self.profile, self.spec);
        let want_profile = flag(payload, profile, "profile_upload", spec.profile_upload);
        let want_event =
            flag(payload, profile, "event_upload", spec.event_upload) && !events.is_empty();
        if !want_profile && !want_event {
            return;
        }
        let Some(id) = identifier(profile, spec) else {
            skipped.push(Skipped {
                profile: self.index,
                record: serde_json::json!({"profile": self.index}),
                code: 523,
                reason: format!(
                    "profiles[{}] has none of the identifiers {:?}",
                    self.index, spec.identifiers
                ),
                rule: Rule::MissingIdentity,
                key: None,
                account: Some(self.account.clone()),
                fixes: Vec::new(),
            });
            return;
        };
        if want_profile {
            let mapping = spec.profile.mapping();
            let mut fixes = Vec::new();
            let ts = self.ts(mapping.ts, &mut fixes);
            let profile_data = self.properties(mapping, spare, &mut fixes);
            let record = UploadRecord::Profile(ProfileRecord {
                identifier: id.clone(),
                ts,
                profile_data,
            });
            self.check(record, fixes, out, skipped);
        }
        if want_event {
            for event in events {
                let mapping = event.mapping();
                let mut fixes = Vec::new();
                let ts = self.ts(mapping.ts, &mut fixes);
                let evt_data = self.properties(mapping, spare, &mut fixes);
                let record = UploadRecord::Event(EventRecord {
                    identifier: id.clone(),
                    ts,
                    evt_name: self.event_name(event),
                    evt_data,
                });
                self.check(record, fixes, out, skipped);
            }
        }
    }

    fn check(
        &self,
        mut record: UploadRecord,
        mut fixes: Vec<Fix>,
        out: &mut Vec<PlannedRecord>,
        skipped: &mut Vec<Skipped>,
    ) {
        match validate_into(&mut record, &self.spec.validation, &mut fixes) {
            Ok(()) => out.push(PlannedRecord {
                profile: self.index,
                record,
                fixes,
            }),
            Err(v) => skipped.push(Skipped {
                profile: self.index,
                record: record.to_value(),
                code: v.code,
                reason: format!("profiles[{}]: {}", self.index, v.reason),
                rule: v.rule,
                key: v.key,
                account: Some(self.account.clone()),
                fixes,
            }),
        }
    }

    fn event_name(&self, event: &EventSpec) -> String {
        if let Some(name) = &event.name {
            return name.clone();
        }
        match self.payload.key_value(self.profile, "event_name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => self.spec.event_name.clone(),
        }
    }

    fn ts(&self, ts: &TsSpec, fixes: &mut Vec<Fix>) -> Option<i64> {
        match ts {
            TsSpec::Keyword(TsKeyword::None) => None,
            TsSpec::Keyword(TsKeyword::Now) => Some(self.now.0),
            TsSpec::Field(field) => {
                let value = self.lookup(&field.field);
                let secs = value.as_ref().and_then(|v| epoch_seconds(v, field.unit));
                if secs.is_none() {
                    let path = String::from(field.field.clone());
                    let detail = match value {
                        None => format!("{path} is absent: sent without ts"),
                        Some(v) => format!(
                            "{path} = {v} cannot be read as a time ({}): sent without ts",
                            field.unit.name()
                        ),
                    };
                    fixes.push(mapping_fix("ts", FixAction::Dropped, detail));
                }
                secs
            }
        }
    }

    /// The properties of one record, per its mapping.
    fn properties(&self, m: Mapping<'_>, spare: &mut Spare, fixes: &mut Vec<Fix>) -> Object {
        if m.is_plain_copy() {
            let moved = match m.source {
                Source::ProfileData => spare.profile_data.take(),
                Source::EventProperties => spare.event_properties.take(),
                Source::KeyValues | Source::None => None,
            };
            if let Some(object) = moved {
                return object;
            }
        }
        let kv_merged;
        let source: &Object = match m.source {
            Source::ProfileData => &self.profile.profile_data,
            Source::EventProperties => match &self.profile.event_properties {
                Some(props) => props,
                None => return self.extras(Object::new(), m, fixes),
            },
            Source::KeyValues => {
                let mut merged = self.payload.key_values.clone();
                for (k, v) in &self.profile.key_values {
                    merged.insert(k.clone(), v.clone());
                }
                merged.retain(|k, _| !is_secret(k));
                kv_merged = merged;
                &kv_merged
            }
            Source::None => return self.extras(Object::new(), m, fixes),
        };
        if m.is_plain_copy() {
            return source.clone();
        }
        let mut out = Object::new();
        for (key, value) in source {
            if m.include.is_some_and(|inc| !inc.contains(key)) || m.exclude.contains(key) {
                continue;
            }
            let name = m.rename.get(key).unwrap_or(key);
            out.insert(name.clone(), value.clone());
        }
        self.extras(out, m, fixes)
    }

    /// Adds `copy` and `constants`, then applies `convert`.
    fn extras(&self, mut out: Object, m: Mapping<'_>, fixes: &mut Vec<Fix>) -> Object {
        for (key, path) in m.copy {
            if let Some(value) = self.lookup(path) {
                out.insert(key.clone(), value);
            }
        }
        for (key, value) in m.constants {
            out.insert(key.clone(), value.clone());
        }
        for (key, conversion) in m.convert {
            let Some(value) = out.get_mut(key) else {
                continue;
            };
            if value.is_null() {
                continue;
            }
            match convert(value, *conversion) {
                Some(new) => *value = new,
                None => {
                    let detail = format!("{value} cannot be converted to {}", conversion.name());
                    out.shift_remove(key);
                    fixes.push(mapping_fix(key, FixAction::Dropped, detail));
                }
            }
        }
        out
    }

    /// A payload field, as seen from this profile.
    fn lookup(&self, path: &FieldPath) -> Option<Value> {
        let (p, profile) = (self.payload, self.profile);
        let text = |s: &Option<String>| s.clone().map(Value::String);
        match path {
            FieldPath::Identity => text(&profile.identity),
            FieldPath::Email => text(&profile.email),
            FieldPath::ObjectId => text(&profile.object_id),
            FieldPath::Name => text(&profile.name),
            FieldPath::PushToken => text(&profile.push_token),
            FieldPath::AllIdentities => (!profile.all_identities.is_empty()).then(|| {
                profile
                    .all_identities
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect()
            }),
            FieldPath::TargetId => p.target_id.clone().filter(|v| !v.is_null()),
            FieldPath::KeyValue(k) if is_secret(k) => None,
            FieldPath::KeyValue(k) => p.key_value(profile, k).cloned(),
            FieldPath::ProfileData(k) => lookup_ci(&profile.profile_data, k).cloned(),
            FieldPath::EventProperties(k) => profile
                .event_properties
                .as_ref()
                .and_then(|e| lookup_ci(e, k))
                .cloned(),
            FieldPath::Profile(k) => lookup_ci(&profile.extra, k).cloned(),
        }
    }
}

/// Campaign key/values never copied into records: the payload's passcode.
fn is_secret(key: &str) -> bool {
    key.eq_ignore_ascii_case("target_passcode")
}

fn mapping_fix(key: &str, action: FixAction, detail: String) -> Fix {
    Fix {
        rule: Rule::Mapping,
        code: None,
        key: key.to_owned(),
        action,
        detail,
    }
}

/// Converts a non-null value; `None` when it cannot be.
fn convert(value: &Value, conversion: Conversion) -> Option<Value> {
    match conversion {
        Conversion::Number => match value {
            Value::Number(_) => Some(value.clone()),
            Value::Bool(b) => Some(Value::from(u8::from(*b))),
            Value::String(s) => {
                let s = s.trim();
                if let Ok(i) = s.parse::<i64>() {
                    Some(Value::from(i))
                } else {
                    s.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map(Value::Number)
                }
            }
            _ => None,
        },
        Conversion::Bool => match value {
            Value::Bool(_) => Some(value.clone()),
            Value::String(s) => parse_yes_no(s).map(Value::Bool),
            Value::Number(n) => n.as_f64().map(|f| Value::Bool(f != 0.0)),
            _ => None,
        },
        Conversion::String => Some(Value::String(match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })),
        Conversion::Date => epoch_seconds(value, crate::spec::TsUnit::Auto)
            .map(|s| Value::String(format!("$D_{s}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(body: Value, routing: &Routing) -> Result<Plan, TransformError> {
        let payload = WebhookPayload::from_slice(body.to_string().as_bytes()).unwrap();
        transform(
            &payload,
            &TransformSpec::default(),
            routing,
            UnixSeconds(1_700_000_000),
        )
    }

    fn routing(ids: &[&str]) -> Routing {
        Routing {
            accounts: ids
                .iter()
                .map(|i| AccountId::try_from(*i).unwrap())
                .collect(),
            allow_payload_credentials: false,
        }
    }

    #[test]
    fn campaign_flags_turn_uploads_off() {
        let p = plan(
            json!({"key_values": {"profile_upload": "No", "event_upload": "yes"},
                   "profiles": [{"objectId": "__a", "event_properties": {"x": 1}}]}),
            &routing(&["A"]),
        )
        .unwrap();
        assert_eq!(p.record_count(), 1);
        assert!(!p.accounts[0].records[0].record.is_profile());
    }

    #[test]
    fn missing_identifier_is_skipped_with_523() {
        let p = plan(json!({"profiles": [{"identity": "1"}]}), &routing(&["A"])).unwrap();
        assert_eq!(p.record_count(), 0);
        assert_eq!(p.skipped[0].code, 523);
    }

    #[test]
    fn unconfigured_account_is_an_error_with_path() {
        let err = plan(
            json!({"key_values": {"target_account": "B"}, "profiles": [{"objectId": "__a"}]}),
            &routing(&["A"]),
        )
        .unwrap_err();
        assert_eq!(err.path(), Some("key_values.target_account"));
    }

    #[test]
    fn payload_passcode_needs_the_opt_in() {
        let body = json!({"key_values": {"target_account": "B", "target_passcode": "S"},
                          "profiles": [{"objectId": "__a"}]});
        assert!(plan(body.clone(), &routing(&["A"])).is_err());
        let mut r = routing(&["A"]);
        r.allow_payload_credentials = true;
        let p = plan(body, &r).unwrap();
        assert!(matches!(p.accounts[0].target, Target::FromPayload(_)));
        assert!(!serde_json::to_string(&p).unwrap().contains("\"S\""));
    }

    #[test]
    fn profiles_split_by_their_own_target_account() {
        let p = plan(
            json!({"profiles": [
                {"objectId": "__a", "key_values": {"target_account": "A"}},
                {"objectId": "__b", "key_values": {"target_account": "B"}},
                {"objectId": "__c"}]}),
            &routing(&["A", "B"]),
        )
        .unwrap();
        let ids: Vec<_> = p
            .accounts
            .iter()
            .map(|a| (a.target.account_id().as_str(), a.records.len()))
            .collect();
        assert_eq!(ids, [("A", 4), ("B", 2)]);
    }

    fn plan_with(body: Value, spec: &str) -> Plan {
        let payload = WebhookPayload::from_slice(body.to_string().as_bytes()).unwrap();
        let spec: TransformSpec = toml::from_str(spec).unwrap();
        transform(
            &payload,
            &spec,
            &routing(&["A"]),
            UnixSeconds(1_700_000_000),
        )
        .unwrap()
    }

    fn values(p: &Plan) -> Vec<Value> {
        p.accounts[0]
            .records
            .iter()
            .map(|r| r.record.to_value())
            .collect()
    }

    #[test]
    fn mapping_selects_renames_copies_and_converts() {
        let p = plan_with(
            json!({"key_values": {"plan": "gold"}, "profiles": [{"identity": "7", "name": "Ann",
                "profileData": {"a": "1", "b": 2, "c": 3, "when": "2020-05-12T13:42:30Z"}}]}),
            r#"identifiers = ["identity"]
               events = []
               [profile]
               include = ["a", "b", "when"]
               exclude = ["b"]
               rename = { a = "A" }
               copy = { Name = "name", Plan = "key_values.plan", Missing = "email" }
               constants = { Source = "webhook" }
               convert = { A = "number", when = "date", Source = "bool" }
               ts = "now""#,
        );
        assert_eq!(
            values(&p),
            [
                json!({"type": "profile", "identity": "7", "ts": 1_700_000_000,
                "profileData": {"A": 1, "when": "$D_1589290950", "Name": "Ann", "Plan": "gold"}})
            ]
        );
        let fixes = &p.accounts[0].records[0].fixes;
        assert_eq!(
            (fixes[0].rule, fixes[0].key.as_str()),
            (Rule::Mapping, "Source")
        );
    }

    #[test]
    fn several_events_each_with_name_source_and_ts() {
        let p = plan_with(
            json!({"key_values": {"event_name": "Campaign Name"}, "profiles": [{"objectId": "__a",
                "profileData": {"city": "Pune"},
                "event_properties": {"x": 1, "at": 1_589_290_950_000_i64}}]}),
            r#"profile_upload = false
               [[events]]
               ts = { field = "event_properties.at" }
               [[events]]
               name = "City Seen"
               source = "profileData"
               ts = { field = "event_properties.nope" }"#,
        );
        assert_eq!(
            values(&p),
            [
                json!({"type": "event", "objectId": "__a", "ts": 1_589_290_950,
                    "evtName": "Campaign Name", "evtData": {"x": 1, "at": 1_589_290_950_000_i64}}),
                json!({"type": "event", "objectId": "__a", "evtName": "City Seen",
                    "evtData": {"city": "Pune"}}),
            ]
        );
        assert_eq!(p.accounts[0].records[1].fixes[0].key, "ts");
    }

    #[test]
    fn rejected_records_are_skipped_with_their_code_and_account() {
        let p = plan_with(
            json!({"profiles": [{"objectId": "__a", "event_properties": {"k": 1}}]}),
            r#"event_name = "App Launched""#,
        );
        assert_eq!(p.record_count(), 1);
        let s = &p.skipped[0];
        assert_eq!((s.code, s.rule), (513, Rule::RestrictedEventName));
        assert_eq!(s.account.as_ref().unwrap().as_str(), "A");
        assert_eq!(s.record["evtName"], json!("App Launched"));
    }

    #[test]
    fn owned_transform_moves_only_sources_used_once_as_they_are() {
        let body = json!({"key_values": {"target_account": "A"}, "profiles": [{"objectId": "__a",
            "profileData": {"city": "Pune"}, "event_properties": {"x": 1}}]});
        let payload = WebhookPayload::from_slice(body.to_string().as_bytes()).unwrap();
        for spec in [
            "",
            "[[events]]\n[[events]]\nname = \"Again\"",
            "[profile]\nts = { field = \"profileData.at\" }",
            "[[events]]\nsource = \"profileData\"\n[[events]]\ncopy = { C = \"profileData.city\" }",
        ] {
            let spec: TransformSpec = toml::from_str(spec).unwrap();
            let routing = routing(&["A"]);
            assert_eq!(
                transform_owned(payload.clone(), &spec, &routing, UnixSeconds(5)),
                transform(&payload, &spec, &routing, UnixSeconds(5)),
            );
        }
        let default = TransformSpec::default();
        let m = Planner::new(&payload, &default, 1).movable();
        assert!(m.profile_data && m.event_properties);
        let two: TransformSpec = toml::from_str("[[events]]\n[[events]]").unwrap();
        let m = Planner::new(&payload, &two, 1).movable();
        assert!(m.profile_data && !m.event_properties);
    }

    #[test]
    fn no_account_at_all_is_an_error() {
        assert_eq!(
            plan(
                json!({"profiles": [{"objectId": "__a"}]}),
                &Routing::default()
            ),
            Err(TransformError::NoAccount)
        );
    }
}
