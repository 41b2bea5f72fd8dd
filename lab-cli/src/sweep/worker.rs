//! Running entries: one in this process (`--index`, a Slurm array task, a Kubernetes index),
//! or all that are not finished with a pool of child processes on this machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::dir::SweepDir;
use super::lock::{self, try_claim};
use super::plan::{Entry, Plan};

/// What a finished entry leaves beside its report: `done.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Done {
    pub index: usize,
    pub name: String,
    pub runs: Vec<String>,
    pub host: String,
    pub threads: Option<String>,
    pub wall_seconds: f64,
    pub finished_unix: u64,
}

pub const DONE: &str = "done.json";
pub const FAILED: &str = "failed.txt";
pub const LOCK: &str = "lock";

/// What became of one entry.
pub enum Outcome {
    Ran(f64),
    AlreadyDone,
    /// A live worker elsewhere holds it and `wait` was off.
    HeldElsewhere(String),
}

/// Runs entry `index` here, unless it is done. While another live worker holds it, waits for
/// that worker to finish (then skips) or die (then takes over), unless `wait` is false.
pub fn run_entry(
    dir: &SweepDir,
    plan: &Plan,
    index: usize,
    data: Option<&Path>,
    wait: bool,
) -> Result<Outcome> {
    let Some(entry) = plan.entries.get(index) else {
        bail!(
            "entry {index} does not exist: the sweep {} has {} entries (0–{})",
            plan.name,
            plan.entries.len(),
            plan.entries.len().saturating_sub(1)
        );
    };
    let entry_dir = dir.entry(entry);
    std::fs::create_dir_all(&entry_dir)
        .with_context(|| format!("creating {}", entry_dir.display()))?;
    let claim = loop {
        if entry_dir.join(DONE).exists() {
            return Ok(Outcome::AlreadyDone);
        }
        if let Some(claim) = try_claim(&entry_dir.join(LOCK))? {
            break claim;
        }
        let holder = lock::holder(&entry_dir.join(LOCK)).map_or_else(
            || "another worker".into(),
            |h| format!("{} pid {}", h.host, h.pid),
        );
        if !wait {
            return Ok(Outcome::HeldElsewhere(holder));
        }
        eprintln!(
            "entry {index} ({}) is running on {holder}: waiting",
            entry.name
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    // Finished by another worker between our check and our claim.
    if entry_dir.join(DONE).exists() {
        drop(claim);
        return Ok(Outcome::AlreadyDone);
    }
    let _ = std::fs::remove_file(entry_dir.join(FAILED));
    let started = Instant::now();
    let result = execute(entry, &entry_dir, data);
    let outcome = match result {
        Ok(()) => {
            let done = Done {
                index,
                name: entry.name.clone(),
                runs: entry.runs.clone(),
                host: lock::host_name(),
                threads: std::env::var("RAYON_NUM_THREADS").ok(),
                wall_seconds: started.elapsed().as_secs_f64(),
                finished_unix: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            };
            crate::output::write_json(&entry_dir.join(DONE), &done)?;
            Ok(Outcome::Ran(done.wall_seconds))
        }
        Err(error) => {
            let why = format!("{error:#}\n");
            crate::output::write_file(&entry_dir.join(FAILED), why)?;
            Err(error.context(format!("entry {index} ({}) failed", entry.name)))
        }
    };
    drop(claim);
    outcome
}

/// Runs the entry's command in this process, as `lth` would from its command line.
fn execute(entry: &Entry, entry_dir: &Path, data: Option<&Path>) -> Result<()> {
    let mut line = entry.command_line(entry_dir);
    if let Some(data) = data
        && !entry.arguments.iter().any(|a| a == "--data")
    {
        line.extend(["--data".into(), data.display().to_string()]);
    }
    let command = crate::parse_command(&line)?;
    crate::dispatch(&command)
}

/// The entries not yet done, in order.
pub fn unfinished(dir: &SweepDir, plan: &Plan) -> Vec<usize> {
    plan.entries
        .iter()
        .filter(|e| !dir.entry(e).join(DONE).exists())
        .map(|e| e.index)
        .collect()
}

/// Runs every unfinished entry with `workers` child processes of `threads` threads each,
/// `lth sweep run FILE --out OUT --index N`; each child's output goes to `OUT/logs/`.
pub fn run_pool(
    dir: &SweepDir,
    plan: &Plan,
    file: &Path,
    workers: usize,
    threads: usize,
    data: Option<&Path>,
    quiet: bool,
) -> Result<()> {
    let say = |line: String| {
        if !quiet {
            eprintln!("{line}")
        }
    };
    let pending = unfinished(dir, plan);
    let total = plan.entries.len();
    say(format!(
        "sweep {}: {} of {total} entries to run, {workers} workers × {threads} threads",
        plan.name,
        pending.len()
    ));
    let logs = dir.root.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let exe = std::env::current_exe().context("finding the lth binary")?;
    let started = Instant::now();
    let mut queue = pending.into_iter();
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let mut failed: Vec<(usize, PathBuf)> = Vec::new();
    let mut finished = 0;
    loop {
        while running.len() < workers {
            let Some(index) = queue.next() else { break };
            let entry = &plan.entries[index];
            let log = logs.join(format!("{index:04}-{}.log", entry.name));
            let out = std::fs::File::create(&log)
                .with_context(|| format!("creating {}", log.display()))?;
            let mut command = Command::new(&exe);
            command
                .args(["sweep", "run"])
                .arg(file)
                .arg("--out")
                .arg(&dir.root)
                .args(["--index", &index.to_string()])
                .env("RAYON_NUM_THREADS", threads.to_string())
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            if let Some(data) = data {
                command.arg("--data").arg(data);
            }
            let child = command
                .spawn()
                .with_context(|| format!("starting {}", exe.display()))?;
            running.push((index, child, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        let mut still = Vec::new();
        for (index, mut child, since) in running {
            match child.try_wait()? {
                None => still.push((index, child, since)),
                Some(status) => {
                    finished += 1;
                    let entry = &plan.entries[index];
                    let log = logs.join(format!("{index:04}-{}.log", entry.name));
                    if status.success() {
                        say(format!(
                            "[{finished}] entry {index} {} done in {:.1}s",
                            entry.name,
                            since.elapsed().as_secs_f64()
                        ));
                    } else {
                        eprintln!(
                            "[{finished}] entry {index} {} FAILED ({status}): {}",
                            entry.name,
                            log.display()
                        );
                        failed.push((index, log));
                    }
                }
            }
        }
        running = still;
    }
    say(format!(
        "sweep {}: {finished} entries in {:.1}s wall",
        plan.name,
        started.elapsed().as_secs_f64()
    ));
    if !failed.is_empty() {
        let list: Vec<String> = failed
            .iter()
            .map(|(i, log)| format!("{i} ({})", log.display()))
            .collect();
        bail!(
            "{} entries failed: {}; finished ones are kept, rerun to retry",
            failed.len(),
            list.join(", ")
        );
    }
    Ok(())
}

/// The entry a scheduler gave this task, if any.
pub fn scheduled_index() -> Result<Option<usize>> {
    for variable in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(value) = std::env::var(variable) {
            return match value.trim().parse() {
                Ok(index) => Ok(Some(index)),
                Err(_) => bail!("{variable}={value} is not an entry index"),
            };
        }
    }
    Ok(None)
}
