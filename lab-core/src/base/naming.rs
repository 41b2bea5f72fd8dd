//! Experiment records: per-round results, the report, and hash-named run directories.

use serde::Serialize;
use serde_json::Value;

use crate::base::data::md5_hex;

/// A config from partial JSON: `overrides` deep-merged over `default`, so a caller (a web
/// page, a notebook) names only what it changes. Unknown keys are errors, not ignored.
pub fn with_defaults<T: Serialize + serde::de::DeserializeOwned>(
    default: &T,
    overrides: Value,
) -> Result<T, crate::base::error::ConfigError> {
    use crate::base::error::ConfigError;
    fn merge(base: &mut Value, overrides: Value, path: &str) -> Result<(), ConfigError> {
        match (base, overrides) {
            // A one-key object is an enum variant with data: another variant replaces it.
            (slot @ Value::Object(_), Value::Object(overrides))
                if slot.as_object().is_some_and(|b| b.len() == 1)
                    && overrides.len() == 1
                    && !overrides.keys().all(|k| slot.get(k).is_some()) =>
            {
                *slot = Value::Object(overrides);
                Ok(())
            }
            (Value::Object(base), Value::Object(overrides)) => {
                for (key, value) in overrides {
                    let here = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match base.get_mut(&key) {
                        Some(slot) => merge(slot, value, &here)?,
                        None => return Err(ConfigError(format!("unknown setting `{here}`"))),
                    }
                }
                Ok(())
            }
            (slot, value) => {
                *slot = value;
                Ok(())
            }
        }
    }
    let mut merged = serde_json::to_value(default).map_err(|e| ConfigError(e.to_string()))?;
    merge(&mut merged, overrides, "")?;
    serde_json::from_value(merged).map_err(|e| ConfigError(e.to_string()))
}

/// Flattens a JSON value into `path=value` pairs, sorted.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&path, child, out);
            }
        }
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The canonical description of a config: its non-default hyper-parameters, one
/// `path=value` per line, sorted (open_lth's idea). Defaults added later do not change the
/// names of existing runs.
pub fn canonical_description<T: Serialize>(config: &T, default: &T) -> String {
    let mut ours = Vec::new();
    let mut defaults = Vec::new();
    flatten(
        "",
        &serde_json::to_value(config).expect("config serialises"),
        &mut ours,
    );
    flatten(
        "",
        &serde_json::to_value(default).expect("config serialises"),
        &mut defaults,
    );
    let defaults: std::collections::BTreeMap<_, _> = defaults.into_iter().collect();
    let mut lines: Vec<String> = ours
        .into_iter()
        .filter(|(path, value)| defaults.get(path) != Some(value))
        .map(|(path, value)| format!("{path}={value}"))
        .collect();
    lines.sort();
    lines.join("\n")
}

/// The version of what a run's records mean. Raised when the science behind unchanged
/// settings changes (v2: exact GraSP Hg and T = 200, data order from the replicate seed,
/// hashed control streams, stratified evaluation subsets, per-data-set standardisation), so
/// records of an older lab are never read back as if they were new ones.
pub const RECORDS_VERSION: u32 = 2;

/// `<kind>-<first 8 hex of md5(description)>`, the description led by the records version.
pub fn run_name<T: Serialize>(kind: &str, config: &T, default: &T) -> String {
    let description = format!(
        "records_version={RECORDS_VERSION}\n{}",
        canonical_description(config, default)
    );
    format!("{kind}-{}", &md5_hex(description.as_bytes())[..8])
}
