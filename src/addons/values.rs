//! Typed add-on values: what an add-on declares, and turning `--set`, `-f`
//! files and config-file maps into a checked, complete set of values.
//!
//! Values work like a Helm chart's, minus the surprises: every value is
//! declared with a type and a default, so a typo or a wrong type is an error
//! that lists the valid keys instead of a silently ignored setting.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AddonError;

/// The values of one add-on, every declared key present.
pub type Values = BTreeMap<String, Value>;

/// The type of a declared value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ValueType {
    String,
    Integer,
    Boolean,
    /// A TCP/UDP port, 1-65535.
    Port,
    /// A list of strings (each checked against `item`).
    List,
    /// A map from names to strings (each checked against `item`).
    Map,
}

/// What the strings of a value (or of a list's or map's entries) must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// An IPv4 or IPv6 address.
    Ip,
    /// A CIDR (`10.0.0.0/28`) or an inclusive range (`10.0.0.10-10.0.0.20`).
    IpRange,
    /// A DNS name (lower-case letters, digits, `-` and `.`).
    DnsName,
    /// An absolute path.
    AbsolutePath,
}

/// One declared value, from an add-on's `addon.yaml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValueSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueType,
    /// Format of a string value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Format>,
    /// Format of each list item or map value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<Format>,
    /// The only strings allowed, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#enum: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    pub default: Value,
    pub description: String,
}

impl ValueSpec {
    /// `name (type)`, for lists of valid keys.
    pub fn signature(&self) -> String {
        let kind = match self.kind {
            ValueType::String => "string",
            ValueType::Integer => "integer",
            ValueType::Boolean => "boolean",
            ValueType::Port => "port",
            ValueType::List => "list",
            ValueType::Map => "map",
        };
        format!("{} ({kind})", self.name)
    }

    /// Checks a value against this declaration.
    pub fn check(&self, value: &Value) -> Result<(), String> {
        match (self.kind, value) {
            (ValueType::String, Value::String(s)) => {
                if let Some(allowed) = &self.r#enum
                    && !allowed.contains(s)
                {
                    return Err(format!("{s:?} is not one of {}", allowed.join(", ")));
                }
                match self.format {
                    // An empty string means "not set" for optional strings.
                    Some(format) if !s.is_empty() => check_format(format, s),
                    _ => Ok(()),
                }
            }
            (ValueType::Integer | ValueType::Port, Value::Number(n)) => {
                let n = n
                    .as_i64()
                    .ok_or_else(|| format!("{n} is not a whole number"))?;
                let (min, max) = match self.kind {
                    ValueType::Port => (Some(1), Some(65535)),
                    _ => (self.min, self.max),
                };
                if let Some(min) = min.filter(|m| n < *m) {
                    return Err(format!("{n} is below the minimum {min}"));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    return Err(format!("{n} is above the maximum {max}"));
                }
                Ok(())
            }
            (ValueType::Boolean, Value::Bool(_)) => Ok(()),
            (ValueType::List, Value::Array(items)) => {
                for item in items {
                    let Value::String(s) = item else {
                        return Err(format!("list items must be strings, got {item}"));
                    };
                    if let Some(format) = self.item {
                        check_format(format, s)?;
                    }
                }
                Ok(())
            }
            (ValueType::Map, Value::Object(entries)) => {
                for (key, item) in entries {
                    // Map keys end up in configuration files (e.g. a Corefile).
                    check_format(Format::DnsName, key).map_err(|e| format!("key {e}"))?;
                    let Value::String(s) = item else {
                        return Err(format!("map values must be strings, got {item}"));
                    };
                    if let Some(format) = self.item {
                        check_format(format, s).map_err(|e| format!("{key}: {e}"))?;
                    }
                }
                Ok(())
            }
            (kind, other) => Err(format!(
                "expected {}, got {}",
                article(kind),
                describe(other)
            )),
        }
    }

    /// Parses the text of a `--set` value into this value's type.
    fn parse_text(&self, text: &str) -> Result<Value, String> {
        let value = match self.kind {
            ValueType::String => Value::String(text.to_string()),
            ValueType::Integer | ValueType::Port => {
                let n: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?} is not a whole number"))?;
                Value::from(n)
            }
            ValueType::Boolean => match text.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                other => return Err(format!("{other:?} is not true or false")),
            },
            ValueType::List => {
                // `a,b`, `[a,b]` and `` (empty list) are accepted, like Helm's `{a,b}`.
                let inner = text
                    .trim()
                    .trim_start_matches(['[', '{'])
                    .trim_end_matches([']', '}']);
                Value::Array(
                    inner
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                )
            }
            ValueType::Map => {
                return Err(format!(
                    "set entries one at a time: --set {}.NAME=VALUE",
                    self.name
                ));
            }
        };
        self.check(&value)?;
        Ok(value)
    }
}

fn article(kind: ValueType) -> &'static str {
    match kind {
        ValueType::String => "a string",
        ValueType::Integer => "an integer",
        ValueType::Boolean => "true or false",
        ValueType::Port => "a port number",
        ValueType::List => "a list of strings",
        ValueType::Map => "a map of strings",
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

fn check_format(format: Format, s: &str) -> Result<(), String> {
    let ok = match format {
        Format::Ip => s.parse::<IpAddr>().is_ok(),
        Format::IpRange => {
            s.parse::<IpNet>().is_ok()
                || s.split_once('-').is_some_and(|(a, b)| {
                    matches!(
                        (a.trim().parse::<IpAddr>(), b.trim().parse::<IpAddr>()),
                        (Ok(a), Ok(b)) if a.is_ipv4() == b.is_ipv4() && a <= b
                    )
                })
        }
        Format::DnsName => {
            !s.is_empty()
                && s.len() <= 253
                && s.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
        }
        Format::AbsolutePath => {
            s.starts_with('/') && !s.split('/').any(|p| p == "..") && !s.contains(['\n', '"', '\\'])
        }
    };
    if ok {
        Ok(())
    } else {
        let expected = match format {
            Format::Ip => "an IP address",
            Format::IpRange => "a CIDR or a FROM-TO address range",
            Format::DnsName => "a lower-case DNS name",
            Format::AbsolutePath => "an absolute path",
        };
        Err(format!("{s:?} is not {expected}"))
    }
}

/// Values given for one add-on before checking: a values file or a config
/// map (merged first) and `--set key=value` assignments (applied last).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub maps: Vec<serde_json::Map<String, Value>>,
    pub sets: Vec<String>,
}

/// Checks `overrides` against `specs` and returns the complete values:
/// defaults, then each map in order, then each `--set`.
pub fn resolve(
    addon: &str,
    specs: &[ValueSpec],
    overrides: &Overrides,
) -> Result<Values, AddonError> {
    let valid = || specs.iter().map(ValueSpec::signature).collect::<Vec<_>>();
    let find = |key: &str| {
        specs
            .iter()
            .find(|s| s.name == key)
            .ok_or_else(|| AddonError::UnknownValue {
                addon: addon.to_string(),
                key: key.to_string(),
                valid: valid(),
            })
    };
    let invalid = |key: &str, message: String| AddonError::InvalidValue {
        addon: addon.to_string(),
        key: key.to_string(),
        message,
        valid: valid(),
    };

    let mut values: Values = specs
        .iter()
        .map(|s| (s.name.clone(), s.default.clone()))
        .collect();
    for map in &overrides.maps {
        for (key, value) in map {
            let spec = find(key)?;
            spec.check(value).map_err(|m| invalid(key, m))?;
            values.insert(key.clone(), value.clone());
        }
    }
    for assignment in &overrides.sets {
        let (key, text) = assignment
            .split_once('=')
            .ok_or_else(|| invalid(assignment, "expected KEY=VALUE".to_string()))?;
        let key = key.trim();
        if let Some((map_key, entry)) = key.split_once('.') {
            // `hosts.db.local=10.0.0.5`: an entry of a map value.
            let spec = find(map_key)?;
            if spec.kind != ValueType::Map {
                return Err(invalid(
                    map_key,
                    format!("is not a map, so {key:?} means nothing"),
                ));
            }
            let mut map = match values.get(map_key) {
                Some(Value::Object(m)) => m.clone(),
                _ => serde_json::Map::new(),
            };
            map.insert(entry.to_string(), Value::String(text.to_string()));
            let map = Value::Object(map);
            spec.check(&map).map_err(|m| invalid(map_key, m))?;
            values.insert(map_key.to_string(), map);
        } else {
            let spec = find(key)?;
            let value = spec.parse_text(text).map_err(|m| invalid(key, m))?;
            values.insert(key.to_string(), value);
        }
    }
    Ok(values)
}

/// Parses a values file (`-f`): a YAML mapping.
pub fn parse_file(text: &str, origin: &str) -> Result<serde_json::Map<String, Value>, AddonError> {
    let value: Value = serde_norway::from_str(text)
        .map_err(|e| AddonError::BadValuesFile(format!("{origin}: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(serde_json::Map::new()),
        other => Err(AddonError::BadValuesFile(format!(
            "{origin}: expected a mapping of values, got {}",
            describe(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn specs() -> Vec<ValueSpec> {
        serde_norway::from_str(
            r#"
- {name: replicas, type: integer, min: 1, max: 5, default: 2, description: d}
- {name: port, type: port, default: 80, description: d}
- {name: enabled, type: boolean, default: true, description: d}
- {name: upstreams, type: list, item: ip, default: [], description: d}
- {name: hosts, type: map, item: ip, default: {}, description: d}
- {name: mode, type: string, enum: [a, b], default: a, description: d}
"#,
        )
        .unwrap()
    }

    fn resolve_sets(sets: &[&str]) -> Result<Values, AddonError> {
        let overrides = Overrides {
            maps: vec![],
            sets: sets.iter().map(|s| s.to_string()).collect(),
        };
        resolve("x", &specs(), &overrides)
    }

    #[test]
    fn defaults_fill_every_key() {
        let values = resolve_sets(&[]).unwrap();
        assert_eq!(values.len(), 6);
        assert_eq!(values["replicas"], json!(2));
    }

    #[test]
    fn sets_are_parsed_by_type() {
        let values = resolve_sets(&[
            "replicas=3",
            "port=8080",
            "enabled=false",
            "upstreams=1.1.1.1, 9.9.9.9",
            "hosts.db.local=10.0.0.5",
            "mode=b",
        ])
        .unwrap();
        assert_eq!(values["replicas"], json!(3));
        assert_eq!(values["enabled"], json!(false));
        assert_eq!(values["upstreams"], json!(["1.1.1.1", "9.9.9.9"]));
        assert_eq!(values["hosts"], json!({"db.local": "10.0.0.5"}));
        assert_eq!(
            resolve_sets(&["upstreams="]).unwrap()["upstreams"],
            json!([])
        );
        assert_eq!(
            resolve_sets(&["upstreams=[8.8.8.8]"]).unwrap()["upstreams"],
            json!(["8.8.8.8"])
        );
    }

    #[test]
    fn unknown_keys_list_the_valid_ones() {
        let err = resolve_sets(&["replica=3"]).unwrap_err();
        assert!(err.is_usage());
        assert!(err.to_string().contains("\"replica\""), "{err}");
        let hint = err.hint().unwrap();
        assert!(
            hint.contains("replicas (integer)") && hint.contains("hosts (map)"),
            "{hint}"
        );
    }

    #[test]
    fn wrong_types_and_ranges_are_refused() {
        for bad in [
            "replicas=two",
            "replicas=9",
            "port=0",
            "port=70000",
            "enabled=yes",
            "upstreams=1.1.1.1,dns.google",
            "hosts.db=not-an-ip",
            "hosts.Bad_Name=1.2.3.4",
            "mode=c",
            "hosts=1.2.3.4",
            "replicas",
            "port.x=1",
        ] {
            let err = resolve_sets(&[bad]).unwrap_err();
            assert!(
                matches!(err, AddonError::InvalidValue { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn files_are_typed_too_and_sets_win() {
        let file = parse_file("replicas: 4\nhosts:\n  a.b: 1.2.3.4\n", "v.yaml").unwrap();
        let overrides = Overrides {
            maps: vec![file],
            sets: vec!["replicas=5".into()],
        };
        let values = resolve("x", &specs(), &overrides).unwrap();
        assert_eq!(values["replicas"], json!(5));
        assert_eq!(values["hosts"], json!({"a.b": "1.2.3.4"}));

        let file = parse_file("replicas: \"4\"\n", "v.yaml").unwrap();
        let err = resolve(
            "x",
            &specs(),
            &Overrides {
                maps: vec![file],
                sets: vec![],
            },
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("expected an integer, got the string \"4\""),
            "{err}"
        );
        assert!(parse_file("- a\n", "v.yaml").is_err());
        assert!(parse_file("", "v.yaml").unwrap().is_empty());
    }

    #[test]
    fn formats() {
        assert!(check_format(Format::IpRange, "10.0.0.0/28").is_ok());
        assert!(check_format(Format::IpRange, "10.0.0.10-10.0.0.20").is_ok());
        assert!(check_format(Format::IpRange, "10.0.0.20-10.0.0.10").is_err());
        assert!(check_format(Format::IpRange, "10.0.0.1-fd00::1").is_err());
        assert!(check_format(Format::DnsName, "host.skiff.internal").is_ok());
        assert!(check_format(Format::DnsName, "-x").is_err());
        assert!(check_format(Format::AbsolutePath, "/var/x").is_ok());
        assert!(check_format(Format::AbsolutePath, "/var/../etc").is_err());
        assert!(check_format(Format::AbsolutePath, "var").is_err());
    }
}
