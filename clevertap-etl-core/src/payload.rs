//! The webhook payload CleverTap POSTs to us (the "extract" step), and its decoder.
//!
//! CleverTap is not consistent about key spelling: a live campaign sends `identity`,
//! `objectId`, `profileData`; the test call sent when a webhook is created sends `Identity`,
//! `Email`. Keys are therefore matched case-insensitively and with `_` ignored
//! (`key_values` = `keyValues` = `Key_Values`). `profiles` may be an array or a single object.
//! Keys we do not model are kept in `extra`, never dropped.

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object, in the order the keys arrived.
pub type Object = Map<String, Value>;

/// One webhook call: the campaign's key/values and the qualifying profiles.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookPayload {
    /// CleverTap's campaign (target) id, as sent (usually a number).
    #[serde(rename = "targetId", skip_serializing_if = "Option::is_none")]
    pub target_id: Option<Value>,
    /// The campaign's custom key/value pairs (`target_account`, `profile_upload`, ...).
    pub key_values: Object,
    /// The profiles that qualified for the campaign.
    pub profiles: Vec<WebhookProfile>,
    /// `true` on the test call CleverTap sends when a webhook is created.
    pub is_test: bool,
    /// Top-level keys this model does not name, kept as they came.
    #[serde(flatten)]
    pub extra: Object,
}

/// One qualifying profile inside a webhook payload.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct WebhookProfile {
    /// The profile's custom identity, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The profile's email address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// CleverTap's own id for the profile (`__…` or a device id).
    #[serde(rename = "objectId", skip_serializing_if = "Option::is_none")]
    pub object_id: Option<String>,
    /// Every identity attached to the profile.
    pub all_identities: Vec<String>,
    /// The profile's name, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The push token, when the campaign includes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_token: Option<String>,
    /// Profile properties (`profileData`).
    #[serde(rename = "profileData")]
    pub profile_data: Object,
    /// Properties of the event that triggered a live campaign; absent for past-behaviour ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_properties: Option<Object>,
    /// Per-profile copy of the campaign key/values (overrides the top-level ones).
    pub key_values: Object,
    /// Keys this model does not name, kept as they came.
    #[serde(flatten)]
    pub extra: Object,
}

/// Why a webhook body could not be decoded, with the JSON path of the fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid webhook payload at `{path}`: {message}")]
pub struct DecodeError {
    /// Where in the document the fault is, e.g. `profiles[3].profileData`; `.` for the root.
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl WebhookPayload {
    /// Decodes a webhook body.
    ///
    /// ```
    /// use clevertap_etl_core::WebhookPayload;
    ///
    /// let body = br#"{"targetId": 1, "profiles": {"Identity": "42", "profileData": {}}}"#;
    /// let payload = WebhookPayload::from_slice(body)?;
    /// assert_eq!(payload.profiles[0].identity.as_deref(), Some("42"));
    ///
    /// let err = WebhookPayload::from_slice(br#"{"profiles": [{"profileData": 7}]}"#).unwrap_err();
    /// assert_eq!(err.path, "profiles[0].profileData");
    /// # Ok::<(), clevertap_etl_core::DecodeError>(())
    /// ```
    pub fn from_slice(body: &[u8]) -> Result<Self, DecodeError> {
        decode(body)
    }

    /// Campaign key/values seen by one profile: the top-level ones, overridden by the
    /// profile's own copy.
    pub fn key_value<'a>(&'a self, profile: &'a WebhookProfile, key: &str) -> Option<&'a Value> {
        lookup_ci(&profile.key_values, key).or_else(|| lookup_ci(&self.key_values, key))
    }
}

impl WebhookProfile {
    /// Decodes one profile object (as found in `profiles[]`, or on one line of a JSON-lines
    /// backfill file).
    pub fn from_slice(body: &[u8]) -> Result<Self, DecodeError> {
        decode(body)
    }
}

/// Looks a key up in an object, case-insensitively.
pub fn lookup_ci<'a>(object: &'a Object, key: &str) -> Option<&'a Value> {
    object
        .get(key)
        .or_else(|| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
}

/// Decodes any JSON document into `T`, reporting the JSON path of the first fault.
///
/// The happy path decodes without tracking the path (path tracking allocates every map key a
/// second time); only a body that fails is decoded again to find where.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    match serde_json::from_slice(body) {
        Ok(value) => Ok(value),
        Err(_) => decode_tracked(body),
    }
}

fn decode_tracked<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        DecodeError {
            path,
            message: e.into_inner().to_string(),
        }
    })?;
    de_end(&mut de)?;
    Ok(value)
}

fn de_end(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'_>>,
) -> Result<(), DecodeError> {
    de.end().map_err(|e| DecodeError {
        path: ".".into(),
        message: e.to_string(),
    })
}

/// The canonical form of a key: lowercase, without `_` or `-`, written into `buf`. Keys too
/// long for `buf` are none of ours and come out empty. No allocation: this runs for every key of
/// every profile.
fn canonical<'b>(key: &str, buf: &'b mut [u8; 24]) -> &'b str {
    let mut n = 0;
    for b in key.bytes().filter(|b| *b != b'_' && *b != b'-') {
        let Some(slot) = buf.get_mut(n) else {
            return "";
        };
        *slot = b.to_ascii_lowercase();
        n += 1;
    }
    std::str::from_utf8(&buf[..n]).unwrap_or("")
}

/// A map key, borrowed from the input when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }

    fn into_owned(self) -> String {
        match self {
            Key::Borrowed(s) => s.to_owned(),
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        deserializer.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for WebhookPayload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PayloadVisitor;
        impl<'de> Visitor<'de> for PayloadVisitor {
            type Value = WebhookPayload;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a CleverTap webhook payload (a JSON object with `profiles`)")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = WebhookPayload::default();
                let mut saw_profiles = false;
                let mut buf = [0; 24];
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match canonical(key.as_str(), &mut buf) {
                        "targetid" => out.target_id = map.next_value::<Option<Value>>()?,
                        "keyvalues" => out.key_values = map.next_value::<NullableObject>()?.0,
                        "profiles" | "profile" => {
                            out.profiles = map.next_value::<OneOrMany<WebhookProfile>>()?.0;
                            saw_profiles = true;
                        }
                        "istest" => out.is_test = map.next_value::<Flag>()?.0,
                        _ => {
                            let value = map.next_value::<Value>()?;
                            out.extra.insert(key.into_owned(), value);
                        }
                    }
                }
                if !saw_profiles {
                    return Err(de::Error::missing_field("profiles"));
                }
                Ok(out)
            }
        }
        deserializer.deserialize_map(PayloadVisitor)
    }
}

impl<'de> Deserialize<'de> for WebhookProfile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ProfileVisitor;
        impl<'de> Visitor<'de> for ProfileVisitor {
            type Value = WebhookProfile;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a profile object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut p = WebhookProfile::default();
                let mut buf = [0; 24];
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    match canonical(key.as_str(), &mut buf) {
                        "identity" => p.identity = map.next_value::<Scalar>()?.0,
                        "email" => p.email = map.next_value::<Scalar>()?.0,
                        "objectid" => p.object_id = map.next_value::<Scalar>()?.0,
                        "allidentities" => {
                            p.all_identities = map
                                .next_value::<Option<Vec<Scalar>>>()?
                                .unwrap_or_default()
                                .into_iter()
                                .filter_map(|s| s.0)
                                .collect();
                        }
                        "name" => p.name = map.next_value::<Scalar>()?.0,
                        "pushtoken" => p.push_token = map.next_value::<Scalar>()?.0,
                        "profiledata" => p.profile_data = map.next_value::<NullableObject>()?.0,
                        "eventproperties" => {
                            p.event_properties = map.next_value::<Option<Object>>()?;
                        }
                        "keyvalues" => p.key_values = map.next_value::<NullableObject>()?.0,
                        _ => {
                            let value = map.next_value::<Value>()?;
                            p.extra.insert(key.into_owned(), value);
                        }
                    }
                }
                Ok(p)
            }
        }
        deserializer.deserialize_map(ProfileVisitor)
    }
}

/// `T` or `[T, ...]`, decoded without losing the JSON path of a fault inside.
struct OneOrMany<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrMany<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of objects or a single object")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(item) = seq.next_element()? {
                    out.push(item);
                }
                Ok(OneOrMany(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(OneOrMany(vec![one]))
            }
        }
        deserializer.deserialize_any(V(std::marker::PhantomData))
    }
}

/// An object, where `null` means empty.
struct NullableObject(Object);

impl<'de> Deserialize<'de> for NullableObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(NullableObject(
            Option::<Object>::deserialize(deserializer)?.unwrap_or_default(),
        ))
    }
}

/// A string-ish identifier: a string, or a number written as its decimal text; `null` is none.
/// A number that an `f64` cannot hold exactly (2^53 or more, past the 64-bit integers) is
/// refused rather than rounded.
struct Scalar(Option<String>);

/// 2^53: from here on, not every integer has an exact `f64`.
const MAX_EXACT_F64: f64 = 9_007_199_254_740_992.0;

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar((!v.is_empty()).then(|| v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                Ok(Scalar((!v.is_empty()).then_some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                // From 2^53 on, a number may have lost digits on its way to an f64 (an
                // integer past u64::MAX, or one written with an exponent): its text would not
                // be the identifier that was sent, and two profiles could merge into one.
                if v.abs() >= MAX_EXACT_F64 {
                    return Err(E::invalid_value(
                        de::Unexpected::Float(v),
                        &"a string, or a number below 2^53 (send larger identifiers as strings)",
                    ));
                }
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// A boolean flag: `true`/`false`, or the strings `"true"`/`"yes"`/`"1"`; `null` is false.
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<Value>::deserialize(deserializer)? {
            None | Some(Value::Null) => Ok(Flag(false)),
            Some(Value::Bool(b)) => Ok(Flag(b)),
            Some(Value::String(s)) => Ok(Flag(crate::spec::parse_yes_no(&s).unwrap_or(false))),
            Some(Value::Number(n)) => Ok(Flag(n.as_f64().is_some_and(|n| n != 0.0))),
            Some(other) => Err(de::Error::invalid_type(
                de::Unexpected::Other(json_kind(&other)),
                &"a boolean",
            )),
        }
    }
}

/// A short name for the kind of a JSON value, for messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn capitalised_keys_and_single_profile_are_accepted() {
        let p = WebhookPayload::from_slice(
            br#"{"is_test": true, "Profiles": {"Identity": 7, "Email": "a@b.c", "ObjectId": "__x",
                 "ProfileData": {"k": 1}, "Unknown": [1]}}"#,
        )
        .unwrap();
        assert!(p.is_test);
        let prof = &p.profiles[0];
        assert_eq!(prof.identity.as_deref(), Some("7"));
        assert_eq!(prof.email.as_deref(), Some("a@b.c"));
        assert_eq!(prof.object_id.as_deref(), Some("__x"));
        assert_eq!(prof.profile_data["k"], json!(1));
        assert_eq!(prof.extra["Unknown"], json!([1]));
    }

    #[test]
    fn escaped_and_long_keys_decode() {
        let long = "x".repeat(40);
        let body = format!(
            r#"{{"pro\u0066iles": [{{"object\u005fId": "__a", "{long}": 1, "profile_data": {{}}}}]}}"#
        );
        let p = WebhookPayload::from_slice(body.as_bytes()).unwrap();
        assert_eq!(p.profiles[0].object_id.as_deref(), Some("__a"));
        assert_eq!(p.profiles[0].extra[&long], json!(1));
    }

    #[test]
    fn unknown_top_level_keys_are_kept() {
        let p = WebhookPayload::from_slice(br#"{"profiles": [], "campaign": "c1"}"#).unwrap();
        assert_eq!(p.extra["campaign"], json!("c1"));
    }

    #[test]
    fn errors_name_the_json_path() {
        let cases: [(&[u8], &str); 5] = [
            (
                br#"{"profiles": [{}, {}, {}, {"profileData": "x"}]}"#,
                "profiles[3].profileData",
            ),
            (
                br#"{"profiles": {"event_properties": 3}}"#,
                "profiles.event_properties",
            ),
            (br#"{"key_values": []}"#, "key_values"),
            (br#"{"targetId": 1}"#, "."),
            (br#"[1]"#, "."),
        ];
        for (body, path) in cases {
            let err = WebhookPayload::from_slice(body).unwrap_err();
            assert_eq!(err.path, path, "{err}");
        }
    }

    #[test]
    fn numeric_identifiers_are_kept_exactly_or_refused() {
        let p = WebhookPayload::from_slice(
            br#"{"profiles": [{"identity": 18446744073709551615, "objectId": -7, "email": 1.5}]}"#,
        )
        .unwrap();
        assert_eq!(
            p.profiles[0].identity.as_deref(),
            Some("18446744073709551615")
        );
        assert_eq!(p.profiles[0].object_id.as_deref(), Some("-7"));
        assert_eq!(p.profiles[0].email.as_deref(), Some("1.5"));
        // 2^64 + 1 only fits an f64 rounded: refused, not sent as "18446744073709552000".
        for body in [
            &br#"{"profiles": [{"identity": 18446744073709551617}]}"#[..],
            br#"{"profiles": [{"identity": 1e20}]}"#,
        ] {
            let err = WebhookPayload::from_slice(body).unwrap_err();
            assert_eq!(err.path, "profiles[0].identity", "{err}");
        }
    }

    #[test]
    fn trailing_garbage_is_rejected() {
        let err = WebhookPayload::from_slice(br#"{"profiles": []} x"#).unwrap_err();
        assert!(err.message.contains("trailing"), "{err}");
    }

    #[test]
    fn profile_key_values_override_campaign_ones() {
        let p = WebhookPayload::from_slice(
            br#"{"key_values": {"a": "top", "b": "top"}, "profiles": [{"key_values": {"A": "mine"}}]}"#,
        )
        .unwrap();
        let prof = &p.profiles[0];
        assert_eq!(p.key_value(prof, "a"), Some(&json!("mine")));
        assert_eq!(p.key_value(prof, "b"), Some(&json!("top")));
        assert_eq!(p.key_value(prof, "c"), None);
    }
}
