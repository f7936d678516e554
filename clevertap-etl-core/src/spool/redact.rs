//! Secrets out of stored payloads: a campaign may carry `target_passcode` (the seed did) or other
//! credentials in its key/values; they are never written to the spool.

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

fn redact_key_values(object: &mut serde_json::Map<String, Value>) {
    for (key, value) in object.iter_mut() {
        let canonical: String = key
            .chars()
            .filter(|c| *c != '_')
            .collect::<String>()
            .to_ascii_lowercase();
        if canonical == "keyvalues" {
            if let Value::Object(kv) = value {
                for (k, v) in kv.iter_mut() {
                    if is_secret(k) && !v.is_null() {
                        *v = Value::String(REDACTED.into());
                    }
                }
            }
        }
    }
}

/// Returns the body with every secret-looking campaign key/value (top-level `key_values` and
/// each profile's) replaced by `"<redacted>"`. A body that is not a JSON object is returned as
/// is (it was refused before it got here).
pub fn redact_secrets(body: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Value::Object(top) = &mut value {
        redact_key_values(top);
        for (key, profiles) in top.iter_mut() {
            if key.eq_ignore_ascii_case("profiles") || key.eq_ignore_ascii_case("profile") {
                match profiles {
                    Value::Array(items) => items.iter_mut().for_each(|p| {
                        if let Value::Object(p) = p {
                            redact_key_values(p);
                        }
                    }),
                    Value::Object(p) => redact_key_values(p),
                    _ => {}
                }
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
