//! `lth sweep`: a grid of runs from a sweep file, planned to numbered entries with their
//! content hashes, run here (one entry, or all with a worker pool) or on a cluster (a Slurm
//! job array, a Kubernetes Indexed Job), watched (`status`) and gathered (`collect`). Runs
//! keep the skip-if-done records of the commands they are, so a resubmission continues.

mod collect;
mod dir;
mod lock;
mod plan;
mod submit;
mod worker;

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use dir::SweepDir;
use plan::{Plan, SweepFile};
use submit::SlurmOptions;
use worker::Outcome;

#[derive(Args)]
pub struct SweepArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// List the entries: index, record name, state and command line.
    Plan(Where),
    /// Run entry --index N here (or SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX), or every
    /// unfinished entry with a pool of --workers processes.
    Run(RunArgs),
    /// Done / running / interrupted / failed / pending, per entry.
    Status(StatusArgs),
    /// Gather finished entries into one report, table and charts.
    Collect(CollectArgs),
    /// Submit the unfinished entries as a Slurm job array (--slurm), or print a Kubernetes
    /// Indexed Job (--k8s).
    Submit(SubmitArgs),
}

#[derive(Args)]
struct Where {
    /// The sweep file (TOML, or JSON by its extension).
    file: PathBuf,
    /// Output directory: plan.json, runs/<entry>/ (each run's report and records), logs/.
    /// Default: runs/<sweep name>.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    place: Where,
    /// Run only this entry (default: SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX if set).
    #[arg(long)]
    index: Option<usize>,
    /// Processes running entries at once (without an index).
    #[arg(long, default_value_t = available_threads())]
    workers: usize,
    /// Threads of each worker (default: the cores shared among the workers).
    #[arg(long)]
    threads: Option<usize>,
    /// Data directory handed to every entry that names none.
    #[arg(long)]
    data: Option<PathBuf>,
    /// If another live worker holds the entry, skip it instead of waiting for it.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Args)]
struct StatusArgs {
    #[command(flatten)]
    place: Where,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct CollectArgs {
    #[command(flatten)]
    place: Where,
    /// Where to write (default: OUT).
    #[arg(long)]
    to: Option<PathBuf>,
    /// Fail unless every entry is finished.
    #[arg(long)]
    require_all: bool,
}

#[derive(Args)]
struct SubmitArgs {
    #[command(flatten)]
    place: Where,
    /// A Slurm job array, submitted with sbatch.
    #[arg(long, conflicts_with = "k8s", required_unless_present = "k8s")]
    slurm: bool,
    /// A Kubernetes Indexed Job manifest, printed (apply it with kubectl).
    #[arg(long)]
    k8s: bool,
    /// Print the Slurm script instead of submitting it.
    #[arg(long)]
    dry_run: bool,
    /// Submit finished entries too (they exit at once).
    #[arg(long)]
    all: bool,
    /// Data directory handed to every entry that names none.
    #[arg(long)]
    data: Option<PathBuf>,
    #[command(flatten)]
    options: SlurmOptions,
}

/// The pool's default size, from `docs/measurements.md`'s sweep table: on the 2-core machine
/// two 1-thread workers beat one 2-thread worker for the lab's small networks.
fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Where {
    fn open(&self) -> Result<(SweepDir, Plan)> {
        let root = match &self.out {
            Some(out) => out.clone(),
            None => Path::new("runs").join(SweepFile::read(&self.file)?.name),
        };
        let dir = SweepDir { root };
        let plan = dir.freeze(&self.file)?;
        Ok((dir, plan))
    }
}

/// Runs every unfinished entry of `file` with the local pool, then collects into `out`,
/// requiring every entry (what `lth reproduce` does with its predefined sweep).
pub fn run_and_collect(
    file: &Path,
    out: &Path,
    workers: Option<usize>,
    threads: Option<usize>,
    data: Option<&Path>,
    quiet: bool,
) -> Result<collect::Collected> {
    let dir = SweepDir {
        root: out.to_path_buf(),
    };
    let plan = dir.freeze(file)?;
    let workers = workers.unwrap_or_else(available_threads).max(1);
    let threads = threads.unwrap_or_else(|| (available_threads() / workers).max(1));
    worker::run_pool(&dir, &plan, file, workers, threads, data, quiet)?;
    collect::collect(&dir, &plan, out, true)
}

pub fn run(args: &SweepArgs) -> Result<()> {
    match &args.action {
        Action::Plan(place) => {
            let (dir, plan) = place.open()?;
            println!("sweep {}: {} entries", plan.name, plan.entries.len());
            for entry in &plan.entries {
                let status = collect::entry_status(&dir, entry);
                println!(
                    "{:>4}  {:<16} {:<11} lth {} {}",
                    entry.index,
                    entry.name,
                    serde_json::to_value(&status.state)?
                        .as_str()
                        .unwrap_or_default(),
                    entry.command,
                    entry.arguments.join(" ")
                );
            }
            Ok(())
        }
        Action::Run(run) => {
            let (dir, plan) = run.place.open()?;
            let index = match run.index {
                Some(index) => Some(index),
                None => worker::scheduled_index()?,
            };
            match index {
                Some(index) => {
                    match worker::run_entry(&dir, &plan, index, run.data.as_deref(), !run.no_wait)?
                    {
                        Outcome::Ran(seconds) => {
                            eprintln!("entry {index} done in {seconds:.1}s")
                        }
                        Outcome::AlreadyDone => eprintln!("entry {index} is already done"),
                        Outcome::HeldElsewhere(holder) => {
                            eprintln!("entry {index} is running on {holder}: skipped")
                        }
                    }
                    Ok(())
                }
                None => {
                    let workers = run.workers.max(1);
                    let threads = run
                        .threads
                        .unwrap_or_else(|| (available_threads() / workers).max(1));
                    worker::run_pool(
                        &dir,
                        &plan,
                        &run.place.file,
                        workers,
                        threads,
                        run.data.as_deref(),
                        false,
                    )
                }
            }
        }
        Action::Status(status) => {
            let (dir, plan) = status.place.open()?;
            let statuses = collect::status(&dir, &plan);
            if status.json {
                println!("{}", serde_json::to_string_pretty(&statuses)?);
            } else {
                for s in &statuses {
                    println!(
                        "{:>4}  {:<16} {:<11} {}",
                        s.index,
                        s.name,
                        serde_json::to_value(&s.state)?.as_str().unwrap_or_default(),
                        s.detail
                    );
                }
                println!("sweep {}: {}", plan.name, collect::summary(&statuses));
            }
            Ok(())
        }
        Action::Collect(args) => {
            let (dir, plan) = args.place.open()?;
            let to = args.to.clone().unwrap_or_else(|| dir.root.clone());
            let collected = collect::collect(&dir, &plan, &to, args.require_all)?;
            if let Ok(table) = std::fs::read_to_string(to.join("table.md")) {
                println!("{table}");
            }
            eprintln!(
                "collected {} of {} entries into {}{}",
                collected.collected,
                collected.entries,
                to.display(),
                if collected.missing.is_empty() {
                    String::new()
                } else {
                    format!("; not finished: {}", collected.missing.join(", "))
                }
            );
            Ok(())
        }
        Action::Submit(args) => {
            let (dir, plan) = args.place.open()?;
            if args.k8s {
                print!(
                    "{}",
                    submit::k8s_manifest(
                        &plan,
                        &args.place.file,
                        &dir.root,
                        args.data.as_deref(),
                        &args.options
                    )
                );
                return Ok(());
            }
            let indices: Vec<usize> = if args.all {
                (0..plan.entries.len()).collect()
            } else {
                worker::unfinished(&dir, &plan)
            };
            if indices.is_empty() {
                eprintln!(
                    "sweep {}: every entry is done; nothing to submit",
                    plan.name
                );
                return Ok(());
            }
            let script = submit::slurm_script(
                &dir,
                &plan,
                &args.place.file,
                &indices,
                args.data.as_deref(),
                &args.options,
            )?;
            if args.dry_run {
                print!("{script}");
            } else {
                println!("{}", submit::submit_slurm(&dir, &script)?);
            }
            Ok(())
        }
    }
}
