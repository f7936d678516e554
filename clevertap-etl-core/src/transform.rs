//! The pure transform: a decoded webhook payload and a spec in, a [`Plan`] out.
//!
//! Invariant: nothing here reads a clock, a file or a socket; the time is passed in.

use serde::Serialize;
use serde_json::Value;

use crate::account::{AccountId, Credentials, Passcode};
use crate::payload::{WebhookPayload, WebhookProfile};
use crate::record::{EventRecord, Identifier, ProfileRecord, UploadRecord};
use crate::spec::{parse_yes_no, IdentifierSource, Routing, TransformSpec};

/// A point in time, in UNIX epoch seconds (CleverTap's unit for `ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct UnixSeconds(pub i64);

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
    let _ = now; // the default spec sends no `ts`; time-based mappings use it
    let mut plan = Plan {
        target_id: payload.target_id.clone(),
        is_test: payload.is_test,
        accounts: Vec::new(),
        skipped: Vec::new(),
    };
    for (index, profile) in payload.profiles.iter().enumerate() {
        let target = route(payload, profile, index, routing)?;
        let records = profile_records(payload, profile, index, spec, &mut plan.skipped);
        if records.is_empty() {
            continue;
        }
        match plan.accounts.iter_mut().find(|a| a.target == target) {
            Some(group) => group.records.extend(records),
            None => plan.accounts.push(AccountPlan { target, records }),
        }
    }
    Ok(plan)
}

fn route(
    payload: &WebhookPayload,
    profile: &WebhookProfile,
    index: usize,
    routing: &Routing,
) -> Result<Target, TransformError> {
    let (named, path) = match profile
        .key_values
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("target_account"))
    {
        Some((_, v)) if !v.is_null() => (
            Some(v),
            format!("profiles[{index}].key_values.target_account"),
        ),
        _ => (
            payload.key_value(profile, "target_account"),
            "key_values.target_account".to_owned(),
        ),
    };
    let Some(named) = named else {
        return routing
            .accounts
            .first()
            .cloned()
            .map(Target::Configured)
            .ok_or(TransformError::NoAccount);
    };
    let text = match named {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let id = AccountId::try_from(text.as_str()).map_err(|e| TransformError::InvalidAccount {
        path: path.clone(),
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
        path,
    })
}

fn flag(payload: &WebhookPayload, profile: &WebhookProfile, key: &str, default: bool) -> bool {
    match payload.key_value(profile, key) {
        Some(Value::String(s)) => parse_yes_no(s).unwrap_or(default),
        Some(Value::Bool(b)) => *b,
        _ => default,
    }
}

fn identifier(profile: &WebhookProfile, spec: &TransformSpec) -> Option<Identifier> {
    spec.identifiers.iter().find_map(|source| match source {
        IdentifierSource::ObjectId => profile.object_id.clone().map(Identifier::ObjectId),
        IdentifierSource::Identity => profile.identity.clone().map(Identifier::Identity),
        IdentifierSource::Email => profile.email.clone().map(Identifier::Identity),
    })
}

fn profile_records(
    payload: &WebhookPayload,
    profile: &WebhookProfile,
    index: usize,
    spec: &TransformSpec,
    skipped: &mut Vec<Skipped>,
) -> Vec<PlannedRecord> {
    let want_profile = flag(payload, profile, "profile_upload", spec.profile_upload);
    let want_event = flag(payload, profile, "event_upload", spec.event_upload);
    if !want_profile && !want_event {
        return Vec::new();
    }
    let Some(id) = identifier(profile, spec) else {
        skipped.push(Skipped {
            profile: index,
            record: serde_json::json!({"profile": index}),
            code: 523,
            reason: format!(
                "profiles[{index}] has none of the identifiers {:?}",
                spec.identifiers
            ),
        });
        return Vec::new();
    };
    let mut out = Vec::with_capacity(2);
    if want_profile {
        out.push(PlannedRecord {
            profile: index,
            record: UploadRecord::Profile(ProfileRecord {
                identifier: id.clone(),
                ts: None,
                profile_data: profile.profile_data.clone(),
            }),
        });
    }
    if want_event {
        let evt_name = match payload.key_value(profile, "event_name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => spec.event_name.clone(),
        };
        out.push(PlannedRecord {
            profile: index,
            record: UploadRecord::Event(EventRecord {
                identifier: id,
                ts: None,
                evt_name,
                evt_data: profile.event_properties.clone().unwrap_or_default(),
            }),
        });
    }
    out
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
