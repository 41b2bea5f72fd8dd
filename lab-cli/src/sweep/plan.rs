//! A sweep file and its plan: the grid it names, expanded to numbered entries, each one
//! `lth <command>` run with the content-hashed names of the records it makes.
//!
//! ```toml
//! name = "lr-by-seed"
//! [[part]]
//! command = "imp"                       # imp, train, pai or dst
//! args = { rounds = 5, iterations = 2000, control = ["reinit"] }   # every entry
//! axes = { seed = [0, 1, 2], lr = [1.2e-3, 3e-4] }                 # one entry per combination
//! ```
//!
//! A key is a long flag of the command (`batch-size`, or `batch_size`); `true` is a bare flag,
//! a list in `args` repeats the flag. Entries follow the parts in order; within a part the
//! axes vary in the order of their names, the last fastest. The plan is frozen in
//! `OUT/plan.json` on first use, so an entry's index means the same run to every worker.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Flags a sweep sets itself, per entry.
const RESERVED: [&str; 2] = ["out", "help"];

/// Commands a sweep entry may be.
const COMMANDS: [&str; 4] = ["imp", "train", "pai", "dst"];

/// The sweep file, TOML or JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub name: String,
    #[serde(default, rename = "part")]
    pub parts: Vec<Part>,
}

/// One grid: a command, its fixed arguments and its axes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub command: String,
    #[serde(default)]
    pub args: BTreeMap<String, Value>,
    #[serde(default)]
    pub axes: BTreeMap<String, Vec<Value>>,
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub index: usize,
    /// Its directory under `OUT/runs/`: the run's record name (`imp-1a2b3c4d`), or
    /// `<command>-set-<hash>` when the entry itself is a list of runs.
    pub name: String,
    pub command: String,
    /// The command line after `lth <command>`, without `--out`.
    pub arguments: Vec<String>,
    /// The content-hashed record names the entry makes.
    pub runs: Vec<String>,
    /// This entry's value on each axis.
    pub axes: BTreeMap<String, Value>,
    /// What sets its part apart from the sweep's other parts of the same command: their
    /// arguments that differ, as `key=value, …` (empty with one part).
    #[serde(default)]
    pub part: String,
}

impl Entry {
    /// What runs averaged over seeds share: the part's distinguishing arguments and the
    /// axis values other than the seed, as `key=value, …`.
    pub fn label(&self) -> String {
        let axes = self
            .axes
            .iter()
            .filter(|(key, _)| key.as_str() != "seed")
            .map(|(key, value)| format!("{key}={}", plain(value)));
        (!self.part.is_empty())
            .then(|| self.part.clone())
            .into_iter()
            .chain(axes)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The full `lth` command line of the entry writing to `dir`. Not quiet: a worker's log
    /// gets the run's round lines (progress bars only reach a terminal).
    pub fn command_line(&self, dir: &Path) -> Vec<String> {
        let mut line = vec![self.command.clone()];
        line.extend(self.arguments.iter().cloned());
        line.extend(["--out".into(), dir.display().to_string()]);
        line
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub name: String,
    pub entries: Vec<Entry>,
}

/// A JSON value as a command-line word: strings without quotes.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `--key value` words for one setting.
fn flag_words(key: &str, value: &Value, out: &mut Vec<String>) -> Result<()> {
    let flag = format!("--{}", key.replace('_', "-"));
    match value {
        Value::Bool(true) => out.push(flag),
        Value::Bool(false) => {}
        Value::Number(_) | Value::String(_) => {
            out.push(flag);
            out.push(plain(value));
        }
        Value::Array(items) => {
            for item in items {
                if item.is_array() || item.is_object() {
                    bail!("{key}: a list holds plain values");
                }
                flag_words(key, item, out)?;
            }
        }
        Value::Null | Value::Object(_) => bail!("{key}: a value is a number, text, true or a list"),
    }
    Ok(())
}

impl SweepFile {
    pub fn read(path: &Path) -> Result<SweepFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file: SweepFile = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?
        } else {
            toml::from_str(&text).with_context(|| format!("{}", path.display()))?
        };
        if file.parts.is_empty() {
            bail!("{}: no [[part]]: nothing to run", path.display());
        }
        Ok(file)
    }

    /// The arguments of `part` that its command's other parts do not all share.
    fn part_label(&self, part: &Part) -> String {
        let siblings: Vec<&Part> = self
            .parts
            .iter()
            .filter(|p| p.command == part.command)
            .collect();
        if siblings.len() < 2 {
            return String::new();
        }
        part.args
            .iter()
            .filter(|(key, value)| siblings.iter().any(|p| p.args.get(*key) != Some(value)))
            .map(|(key, value)| format!("{key}={}", plain(value)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every entry, with its arguments checked by the command's own parser and its run names.
    pub fn plan(&self) -> Result<Plan> {
        let mut entries: Vec<Entry> = Vec::new();
        for (number, part) in self.parts.iter().enumerate() {
            let part_label = self.part_label(part);
            let context = || format!("part {} ({})", number + 1, part.command);
            if !COMMANDS.contains(&part.command.as_str()) {
                bail!("{}: a sweep runs {}", context(), COMMANDS.join(", "));
            }
            for key in part.args.keys().chain(part.axes.keys()) {
                if RESERVED.contains(&key.as_str()) {
                    bail!("{}: --{key} is set by the sweep, per entry", context());
                }
                if part.args.contains_key(key) && part.axes.contains_key(key) {
                    bail!("{}: {key} is both an argument and an axis", context());
                }
            }
            if let Some((key, _)) = part.axes.iter().find(|(_, values)| values.is_empty()) {
                bail!("{}: the axis {key} has no values", context());
            }
            let axes: Vec<(&String, &Vec<Value>)> = part.axes.iter().collect();
            let combinations: usize = axes.iter().map(|(_, v)| v.len()).product();
            for combination in 0..combinations {
                // Mixed radix, the last axis fastest.
                let mut rest = combination;
                let mut chosen = BTreeMap::new();
                for (key, values) in axes.iter().rev() {
                    chosen.insert((*key).clone(), values[rest % values.len()].clone());
                    rest /= values.len();
                }
                let mut arguments = Vec::new();
                for (key, value) in part.args.iter().chain(chosen.iter()) {
                    flag_words(key, value, &mut arguments).with_context(context)?;
                }
                let mut line = vec![part.command.clone()];
                line.extend(arguments.iter().cloned());
                let command = crate::parse_command(&line)
                    .with_context(|| format!("{}: lth {}", context(), line.join(" ")))?;
                let runs = crate::run_names(&command).with_context(context)?;
                let name = match runs.as_slice() {
                    [one] => one.clone(),
                    many => format!(
                        "{}-set-{}",
                        part.command,
                        &lab_core::base::data::md5_hex(many.join("\n").as_bytes())[..8]
                    ),
                };
                if let Some(same) = entries.iter().find(|e| e.name == name) {
                    bail!(
                        "entries {} ({}) and {} ({}) are the same run {name}: records are \
                         keyed by the settings that change results (not --rounds or \
                         --control), so give them distinct settings or merge them",
                        same.index,
                        same.arguments.join(" "),
                        entries.len(),
                        arguments.join(" ")
                    );
                }
                entries.push(Entry {
                    index: entries.len(),
                    name,
                    command: part.command.clone(),
                    arguments,
                    runs,
                    axes: chosen,
                    part: part_label.clone(),
                });
            }
        }
        Ok(Plan {
            name: self.name.clone(),
            entries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(command: &str, args: &[(&str, Value)]) -> Part {
        Part {
            command: command.into(),
            args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            axes: BTreeMap::new(),
        }
    }

    #[test]
    fn parts_of_one_command_are_told_apart_by_the_arguments_that_differ() {
        let file = SweepFile {
            name: "t".into(),
            parts: vec![
                part("imp", &[("rounds", 11.into()), ("iterations", 3000.into())]),
                part(
                    "imp",
                    &[
                        ("rounds", 2.into()),
                        ("iterations", 3000.into()),
                        ("prune-rate", 0.488.into()),
                    ],
                ),
                part("dst", &[("iterations", 3000.into())]),
            ],
        };
        assert_eq!(file.part_label(&file.parts[0]), "rounds=11");
        assert_eq!(
            file.part_label(&file.parts[1]),
            "prune-rate=0.488, rounds=2"
        );
        // The only part of its command needs no label.
        assert_eq!(file.part_label(&file.parts[2]), "");
    }
}
