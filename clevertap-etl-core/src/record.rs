//! The Upload API's wire format (the "load" step): records, the `{"d": [...]}` body, and the
//! response CleverTap sends back (which can say `partial` or `fail` even with HTTP 200).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::payload::Object;

/// The one identifier every upload record carries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Identifier {
    /// The account's own user id (`identity`). An unknown identity creates a profile.
    #[serde(rename = "identity")]
    Identity(String),
    /// CleverTap's id for the profile (`objectId`).
    #[serde(rename = "objectId")]
    ObjectId(String),
    /// A Facebook id (`FBID`).
    #[serde(rename = "FBID")]
    Fbid(String),
    /// A Google Plus id (`GPID`).
    #[serde(rename = "GPID")]
    Gpid(String),
}

impl Identifier {
    /// The identifier's value.
    pub fn value(&self) -> &str {
        match self {
            Identifier::Identity(v)
            | Identifier::ObjectId(v)
            | Identifier::Fbid(v)
            | Identifier::Gpid(v) => v,
        }
    }
}

/// One record of an upload body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum UploadRecord {
    /// Sets profile properties.
    Profile(ProfileRecord),
    /// Raises an event on a profile.
    Event(EventRecord),
}

/// `{"type": "profile", <identifier>, "ts"?, "profileData": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Whose profile.
    #[serde(flatten)]
    pub identifier: Identifier,
    /// When, in UNIX epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// The properties to set.
    #[serde(rename = "profileData")]
    pub profile_data: Object,
}

/// `{"type": "event", <identifier>, "ts"?, "evtName": "...", "evtData": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Whose event.
    #[serde(flatten)]
    pub identifier: Identifier,
    /// When, in UNIX epoch seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<i64>,
    /// The event's name.
    #[serde(rename = "evtName")]
    pub evt_name: String,
    /// The event's properties.
    #[serde(rename = "evtData")]
    pub evt_data: Object,
}

impl UploadRecord {
    /// The record's identifier.
    pub fn identifier(&self) -> &Identifier {
        match self {
            UploadRecord::Profile(p) => &p.identifier,
            UploadRecord::Event(e) => &e.identifier,
        }
    }

    /// `true` for profile records (which CleverTap wants before events).
    pub fn is_profile(&self) -> bool {
        matches!(self, UploadRecord::Profile(_))
    }

    /// A one-line description for reports: `profile objectId=__abc` or `event "Name" identity=42`.
    pub fn describe(&self) -> String {
        let id = match self.identifier() {
            Identifier::Identity(v) => format!("identity={v}"),
            Identifier::ObjectId(v) => format!("objectId={v}"),
            Identifier::Fbid(v) => format!("FBID={v}"),
            Identifier::Gpid(v) => format!("GPID={v}"),
        };
        match self {
            UploadRecord::Profile(_) => format!("profile {id}"),
            UploadRecord::Event(e) => format!("event {:?} {id}", e.evt_name),
        }
    }

    /// The record as a JSON value, as it is sent.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The body of one Upload API request: `{"d": [record, ...]}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadBody {
    /// The records, at most 1000.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub d: Vec<UploadRecord>,
}

/// The overall verdict in an Upload API response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponseStatus {
    /// Every record was processed.
    Success,
    /// Some records were processed, the others are listed in `unprocessed`.
    Partial,
    /// Nothing was processed.
    Fail,
    /// A status this library does not know.
    #[serde(other)]
    Unknown,
}

/// An Upload API response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadResponse {
    /// The overall verdict.
    pub status: ResponseStatus,
    /// How many records CleverTap processed.
    #[serde(default)]
    pub processed: u64,
    /// The records it did not process, with why.
    #[serde(default)]
    pub unprocessed: Vec<Unprocessed>,
    /// A request-level error message, when CleverTap sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A request-level error code, when CleverTap sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
}

/// One entry of `unprocessed[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unprocessed {
    /// Usually `"fail"`.
    #[serde(default)]
    pub status: Option<String>,
    /// CleverTap's per-record code (509, 523, 555, ...).
    #[serde(default)]
    pub code: Option<i64>,
    /// CleverTap's message, e.g. `"Event name is mandatory. Skipped record number : 2"`.
    #[serde(default)]
    pub error: Option<String>,
    /// The record as CleverTap echoed it back.
    #[serde(default)]
    pub record: Option<Value>,
}

impl Unprocessed {
    /// The zero-based index in the request body named by "Skipped record number : N"
    /// (CleverTap counts from 1), when the message has one.
    pub fn skipped_index(&self) -> Option<usize> {
        let msg = self.error.as_deref()?;
        let at = msg.to_ascii_lowercase().find("record number")?;
        let digits: String = msg[at + "record number".len()..]
            .chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<usize>().ok()?.checked_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_serialize_in_clevertap_shape() {
        let r = UploadRecord::Event(EventRecord {
            identifier: Identifier::ObjectId("__a".into()),
            ts: Some(10),
            evt_name: "E".into(),
            evt_data: Object::new(),
        });
        assert_eq!(
            r.to_value(),
            json!({"type": "event", "objectId": "__a", "ts": 10, "evtName": "E", "evtData": {}})
        );
        let back: UploadRecord = serde_json::from_value(r.to_value()).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn response_parses_partial_and_unknown_status() {
        let r: UploadResponse = serde_json::from_value(json!({
            "status": "partial", "processed": 1,
            "unprocessed": [{"status": "fail", "code": 509,
                "error": "Event name is mandatory. Skipped record number : 2", "record": {}}]
        }))
        .unwrap();
        assert_eq!(r.status, ResponseStatus::Partial);
        assert_eq!(r.unprocessed[0].skipped_index(), Some(1));
        let r: UploadResponse = serde_json::from_value(json!({"status": "weird"})).unwrap();
        assert_eq!(r.status, ResponseStatus::Unknown);
    }

    #[test]
    fn skipped_index_absent_or_zero_is_none() {
        let u = |e: &str| Unprocessed {
            status: None,
            code: None,
            error: Some(e.into()),
            record: None,
        };
        assert_eq!(u("no number here").skipped_index(), None);
        assert_eq!(u("Skipped record number : 0").skipped_index(), None);
        assert_eq!(u("skipped Record Number: 12").skipped_index(), Some(11));
    }
}
