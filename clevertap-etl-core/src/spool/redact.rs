//! Secrets out of stored payloads: a campaign may carry `target_passcode` (the seed did) or other
//! credentials in its key/values; they are never written to the spool.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::account::REDACTED;

/// Whether a key/value name holds a secret.
fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "passcode", "password", "secret", "token", "api_key", "apikey",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Whether a key names the campaign key/values (`key_values`, `keyValues`, `Key_Values`…).
fn is_key_values(key: &str) -> bool {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .eq("keyvalues".chars())
}

/// Rewrites one object's `key_values`, keeping every other value as its raw text.
fn redact_object<'a>(
    object: Vec<(String, &'a RawValue)>,
) -> Result<Vec<(String, Cow<'a, RawValue>)>, serde_json::Error> {
    object
        .into_iter()
        .map(|(key, raw)| {
            if !is_key_values(&key) {
                return Ok((key, Cow::Borrowed(raw)));
            }
            let Ok(mut kv) = serde_json::from_str::<serde_json::Map<String, Value>>(raw.get())
            else {
                return Ok((key, Cow::Borrowed(raw)));
            };
            let mut changed = false;
            for (k, v) in kv.iter_mut() {
                if is_secret(k) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                    changed = true;
                }
            }
            if !changed {
                return Ok((key, Cow::Borrowed(raw)));
            }
            Ok((
                key,
                Cow::Owned(RawValue::from_string(serde_json::to_string(&kv)?)?),
            ))
        })
        .collect()
}

/// Returns the body with every secret-looking campaign key/value (top-level `key_values` and
/// each profile's) replaced by `"<redacted>"`. Everything else is copied as the raw text it
/// came as, so memory stays near the body's size whatever the payload holds. A body that is
/// not a JSON object is returned as is (it was refused before it got here).
pub fn redact_secrets(body: &[u8]) -> Vec<u8> {
    redact(body).unwrap_or_else(|_| body.to_vec())
}

fn redact(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let top: Vec<(String, &RawValue)> = ordered(serde_json::from_slice::<Entries<'_>>(body)?);
    let mut out: Vec<(String, Cow<'_, RawValue>)> = Vec::with_capacity(top.len());
    for (key, cow) in redact_object(top)? {
        let is_profiles =
            key.eq_ignore_ascii_case("profiles") || key.eq_ignore_ascii_case("profile");
        if !is_profiles {
            out.push((key, cow));
            continue;
        }
        let raw = cow.get();
        let rewritten = if let Ok(items) = serde_json::from_str::<Vec<Entries<'_>>>(raw) {
            let items = items
                .into_iter()
                .map(|p| redact_object(ordered(p)).map(Object))
                .collect::<Result<Vec<_>, _>>()?;
            serde_json::to_string(&items)?
        } else if let Ok(one) = serde_json::from_str::<Entries<'_>>(raw) {
            serde_json::to_string(&Object(redact_object(ordered(one))?))?
        } else {
            raw.to_owned()
        };
        out.push((key, Cow::Owned(RawValue::from_string(rewritten)?)));
    }
    serde_json::to_vec(&Object(out))
}

/// An object's entries in document order, values borrowed raw.
#[derive(serde::Deserialize)]
#[serde(transparent)]
struct Entries<'a>(#[serde(borrow, with = "entries")] Vec<(String, &'a RawValue)>);

fn ordered(e: Entries<'_>) -> Vec<(String, &RawValue)> {
    e.0
}

/// Serializes entries back as a JSON object, in order.
struct Object<'a>(Vec<(String, Cow<'a, RawValue>)>);

impl serde::Serialize for Object<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v.as_ref())?;
        }
        map.end()
    }
}

mod entries {
    use std::fmt;

    use serde::de::{Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(String, &'de RawValue)>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<(String, &'de RawValue)>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    out.push((k, v));
                }
                Ok(out)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn everything_but_secrets_is_kept_as_it_came() {
        let body = br#"{"targetId": 1.50, "profiles": {"key_values": {"x": "y"}, "n": [1, 2.0]}, "z": null}"#;
        let out: Value = serde_json::from_slice(&redact_secrets(body)).unwrap();
        assert_eq!(out, serde_json::from_slice::<Value>(body).unwrap());
        assert_eq!(redact_secrets(b"not json"), b"not json");
    }

    #[test]
    fn campaign_secrets_are_redacted_everywhere_they_appear() {
        let body = json!({"key_values": {"target_account": "A", "target_passcode": "S1", "api_token": "S2"},
                          "profiles": [{"key_values": {"Target_Passcode": "S3"}, "push_token": "kept", "profileData": {"x": 1}}]});
        let out = String::from_utf8(redact_secrets(body.to_string().as_bytes())).unwrap();
        for s in ["S1", "S2", "S3"] {
            assert!(!out.contains(&format!("\"{s}\"")), "{out}");
        }
        assert!(out.contains("\"kept\"") && out.contains("\"A\""), "{out}");
    }
}
