//! What a sweep has done (`status`) and what it found (`collect`): finished entries' reports
//! gathered into one report, table and charts per command.

use std::path::Path;

use anyhow::{Context, Result, bail};
use lab_core::methods::dst::DstResult;
use lab_core::methods::imp::ImpReport;
use lab_core::methods::pai::PaiResult;
use lab_core::report::reproduce::{Reproduction, SeedRun, group_order, markdown_table};
use serde::Serialize;

use super::dir::SweepDir;
use super::lock;
use super::plan::{Entry, Plan};
use super::worker::{DONE, Done, FAILED, LOCK};
use crate::output::{write_chart, write_file, write_json};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    Done,
    /// A live worker holds it.
    Running,
    /// Its worker died (a killed job, a lost node): the next worker resumes it.
    Interrupted,
    Failed,
    Pending,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryStatus {
    pub index: usize,
    pub name: String,
    pub state: State,
    /// Who runs it, why it failed, or how long it took.
    pub detail: String,
}

pub fn entry_status(dir: &SweepDir, entry: &Entry) -> EntryStatus {
    let path = dir.entry(entry);
    let (state, detail) = if let Some(done) = std::fs::read(path.join(DONE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Done>(&b).ok())
    {
        (
            State::Done,
            format!("{:.1}s on {}", done.wall_seconds, done.host),
        )
    } else if let Some(holder) = lock::holder(&path.join(LOCK)) {
        if holder.is_stale() {
            (
                State::Interrupted,
                format!("{} pid {} stopped", holder.host, holder.pid),
            )
        } else {
            (
                State::Running,
                format!("{} pid {}", holder.host, holder.pid),
            )
        }
    } else if let Ok(why) = std::fs::read_to_string(path.join(FAILED)) {
        (
            State::Failed,
            why.lines().next().unwrap_or_default().to_string(),
        )
    } else {
        (State::Pending, String::new())
    };
    EntryStatus {
        index: entry.index,
        name: entry.name.clone(),
        state,
        detail,
    }
}

pub fn status(dir: &SweepDir, plan: &Plan) -> Vec<EntryStatus> {
    plan.entries.iter().map(|e| entry_status(dir, e)).collect()
}

/// Counts per state, e.g. `3 done, 1 running, 8 pending`.
pub fn summary(statuses: &[EntryStatus]) -> String {
    let states = [
        (State::Done, "done"),
        (State::Running, "running"),
        (State::Interrupted, "interrupted"),
        (State::Failed, "failed"),
        (State::Pending, "pending"),
    ];
    states
        .iter()
        .map(|(state, name)| {
            let n = statuses.iter().filter(|s| s.state == *state).count();
            format!("{n} {name}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `collect` gathered.
#[derive(Debug, Serialize)]
pub struct Collected {
    pub sweep: String,
    pub entries: usize,
    pub collected: usize,
    pub missing: Vec<String>,
}

fn read_report<T: serde::de::DeserializeOwned>(dir: &Path) -> Result<T> {
    let path = dir.join("report.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}", path.display()))
}

/// Gathers the finished entries into `to`: for IMP entries `reproduction.json`, `table.md`
/// and the accuracy and early-stop charts (mean and range over seeds, one line per setting
/// and branch); for PaI and DST entries their command's report, table and charts under
/// `pai/` and `dst/`. With `require_all`, unfinished entries are an error.
pub fn collect(dir: &SweepDir, plan: &Plan, to: &Path, require_all: bool) -> Result<Collected> {
    let mut imp_runs = Vec::new();
    let mut pai_results: Vec<PaiResult> = Vec::new();
    let mut dst_results: Vec<DstResult> = Vec::new();
    let mut missing = Vec::new();
    for entry in &plan.entries {
        let path = dir.entry(entry);
        if !path.join(DONE).exists() {
            missing.push(format!("{} ({})", entry.index, entry.name));
            continue;
        }
        match entry.command.as_str() {
            "imp" | "train" => {
                let report: ImpReport = read_report(&path)?;
                let seed = report.config["seed"].as_u64().unwrap_or(0);
                imp_runs.push(SeedRun {
                    label: entry.label(),
                    seed,
                    report,
                });
            }
            "pai" => pai_results.extend(read_report::<Vec<PaiResult>>(&path)?),
            "dst" => dst_results.extend(read_report::<Vec<DstResult>>(&path)?),
            other => bail!("entry {}: cannot collect `{other}`", entry.index),
        }
    }
    if require_all && !missing.is_empty() {
        bail!(
            "{} of {} entries are not finished: {}",
            missing.len(),
            plan.entries.len(),
            missing.join(", ")
        );
    }
    if !imp_runs.is_empty() {
        let result = Reproduction::from_runs(&plan.name, &imp_runs);
        write_json(&to.join("reproduction.json"), &result)?;
        write_file(&to.join("table.md"), markdown_table(&result))?;
        let groups: Vec<_> = group_order(&result)
            .into_iter()
            .map(|k| (k.clone(), result.groups[k].clone()))
            .collect();
        write_chart(
            to,
            "accuracy",
            &lab_core::report::charts::accuracy_vs_remaining(&groups),
        )?;
        write_chart(
            to,
            "early_stop",
            &lab_core::report::charts::early_stop_vs_remaining(&groups),
        )?;
    }
    if !pai_results.is_empty() {
        let to = to.join("pai");
        write_json(&to.join("report.json"), &pai_results)?;
        write_file(
            &to.join("table.md"),
            lab_core::methods::pai::sweep_table(&pai_results),
        )?;
        write_chart(
            &to,
            "accuracy",
            &lab_core::methods::pai::sweep_chart(&pai_results),
        )?;
    }
    if !dst_results.is_empty() {
        crate::dst::write_outputs(&to.join("dst"), &dst_results, &[])?;
    }
    let collected = Collected {
        sweep: plan.name.clone(),
        entries: plan.entries.len(),
        collected: plan.entries.len() - missing.len(),
        missing,
    };
    write_json(&to.join("collect.json"), &collected)?;
    Ok(collected)
}
