//! `CLEVERTAP_ETL_<SECTION>__<KEY>` environment overrides of the configuration file.

use toml::{Table, Value};

use crate::config::ConfigError;

/// The prefix of override variables.
pub const PREFIX: &str = "CLEVERTAP_ETL_";

/// Applies every `CLEVERTAP_ETL_A__B__C=value` variable to `table` as `a.b.c = value`.
/// Variables without `__` (such as `CLEVERTAP_ETL_CONFIG`) are not overrides and are skipped.
pub(crate) fn apply(
    table: &mut Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let mut overrides: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(PREFIX) && k.contains("__"))
        .collect();
    overrides.sort();
    for (name, raw) in overrides {
        let path: Vec<String> = name[PREFIX.len()..]
            .split("__")
            .map(str::to_ascii_lowercase)
            .collect();
        let dotted = path.join(".");
        if path.iter().any(String::is_empty) {
            return Err(ConfigError {
                path: dotted,
                message: format!("malformed override variable {name}"),
            });
        }
        set(table, &path, parse_value(&raw)).map_err(|message| ConfigError {
            path: dotted,
            message: format!("{name}: {message}"),
        })?;
    }
    Ok(())
}

/// A value as TOML when it parses as one, else the raw string.
fn parse_value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_owned()))
}

fn set(table: &mut Table, path: &[String], value: Value) -> Result<(), String> {
    let (key, rest) = path.split_first().ok_or("empty key")?;
    if rest.is_empty() {
        table.insert(key.clone(), value);
        return Ok(());
    }
    let entry = table.entry(key.clone()).or_insert_with(|| {
        if rest[0].parse::<usize>().is_ok() {
            Value::Array(Vec::new())
        } else {
            Value::Table(Table::new())
        }
    });
    set_in(entry, key, rest, value)
}

fn set_in(node: &mut Value, name: &str, path: &[String], value: Value) -> Result<(), String> {
    match node {
        Value::Table(t) => set(t, path, value),
        Value::Array(items) => {
            let (index, rest) = path.split_first().ok_or("empty key")?;
            let i: usize = index
                .parse()
                .map_err(|_| format!("{name} is a list: {index:?} is not an index"))?;
            if i > items.len() {
                return Err(format!(
                    "index {i} skips entries ({name} has {})",
                    items.len()
                ));
            }
            if i == items.len() {
                items.push(Value::Table(Table::new()));
            }
            if rest.is_empty() {
                items[i] = value;
                return Ok(());
            }
            set_in(&mut items[i], name, rest, value)
        }
        _ => Err(format!("{name} is not a table")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn overrides_set_nested_keys_with_typed_values() {
        let mut t: Table =
            toml::from_str("[server]\nlisten = \"a\"\n[[accounts]]\nid = \"A\"").unwrap();
        apply(
            &mut t,
            vars(&[
                ("CLEVERTAP_ETL_SERVER__LISTEN", "0.0.0.0:9"),
                ("CLEVERTAP_ETL_SERVER__MAX_BODY_BYTES", "42"),
                ("CLEVERTAP_ETL_ACCOUNTS__0__PASSCODE_ENV", "PC"),
                ("CLEVERTAP_ETL_ACCOUNTS__1__ID", "B"),
                ("CLEVERTAP_ETL_CONFIG", "ignored.toml"),
                ("OTHER__X", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(t["server"]["listen"].as_str(), Some("0.0.0.0:9"));
        assert_eq!(t["server"]["max_body_bytes"].as_integer(), Some(42));
        assert_eq!(t["accounts"][0]["passcode_env"].as_str(), Some("PC"));
        assert_eq!(t["accounts"][1]["id"].as_str(), Some("B"));
        assert!(!t.contains_key("config"));
    }

    #[test]
    fn bad_overrides_name_the_key() {
        let mut t = Table::new();
        let err = apply(&mut t, vars(&[("CLEVERTAP_ETL_ACCOUNTS__5__ID", "B")])).unwrap_err();
        assert_eq!(err.path, "accounts.5.id");
        let err = apply(&mut t, vars(&[("CLEVERTAP_ETL_SERVER____X", "B")])).unwrap_err();
        assert!(err.message.contains("malformed"));
    }
}
