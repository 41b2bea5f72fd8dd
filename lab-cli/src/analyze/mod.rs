//! `lth analyze`: the follow-up questions of the LTH literature, one sub-command each.
//! `overlap`: do different runs (seeds, rounds, methods) keep the same connections?
//! `compare`: IMP runs that differ in one setting (weight decay, rewinding, …) on one chart.
//! `lmc`: linear mode connectivity — is training stable from θk? (Frankle et al. 2020)
//! `early-bird`: does the ticket's mask emerge early in dense training? (You et al. 2020)
//! `histogram`: how pruning and retraining reshape each layer's weights.
//! `transfer`: do tickets found on one data set win on another? (Morcos et al. 2019)

mod early_bird;
mod histogram;
mod lmc;
mod transfer;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lab_core::analyses::overlap::overlap_matrix;
use lab_core::base::ticket::Ticket;

use lab_core::methods::imp::ImpReport;
use lab_core::report::charts;

use crate::output::{write_chart, write_file, write_json};

#[derive(Args)]
pub struct AnalyzeArgs {
    #[command(subcommand)]
    analysis: Analysis,
}

#[derive(Subcommand)]
enum Analysis {
    /// Jaccard overlap of the weights kept by tickets (`ticket.safetensors` of IMP rounds or
    /// PaI runs), overall and per layer, against the overlap of random masks with the same
    /// per-layer counts: overlap.json, table.md, overlap.svg.
    Overlap(OverlapArgs),
    /// The tickets of several IMP runs (`lth imp` report.json files that differ in one
    /// setting, e.g. --weight-decay) on one chart: accuracy and early-stop iteration against
    /// the weights remaining, and a table, one line per run (controls included).
    Compare(CompareArgs),
    /// Linear mode connectivity: from θk two copies train with different data orders; the
    /// test error on the line between them and its barrier (instability) against k, for the
    /// dense net (--ticket-round 0) and IMP tickets rewound to k: report.json, table.md,
    /// charts instability, path-*, tickets.
    Lmc(lmc::LmcArgs),
    /// Early-bird tickets: magnitude masks with IMP round R's counts drawn during dense
    /// training, their Hamming distances, the first draw within ε of the --window − 1 before it
    /// trained from θ0 or continued, against IMP's ticket, with the cost of each:
    /// report.json, table.md, distance chart.
    EarlyBird(early_bird::EarlyBirdArgs),
    /// Weight histograms of an `lth imp` run's round, per layer: trained before pruning,
    /// kept by pruning, after retraining, rewound: histogram.json, table.md, charts.
    Histogram(histogram::HistogramArgs),
    /// Ticket transfer: IMP tickets of --source trained on --target, against the target's own
    /// tickets, the reinit and random-prune controls: report.json, table.md, charts.
    Transfer(transfer::TransferArgs),
}

#[derive(Args)]
struct CompareArgs {
    /// `lth imp` report.json files (at least two).
    #[arg(required = true, num_args = 2..)]
    reports: Vec<PathBuf>,
    /// A label per report, in order (default: the run's name).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    #[arg(long, default_value = "runs/compare")]
    out: PathBuf,
}

#[derive(Args)]
struct OverlapArgs {
    /// Tickets to compare (at least two), of the same model.
    #[arg(required = true, num_args = 2..)]
    tickets: Vec<PathBuf>,
    /// A label per ticket, in order (default: the run's name and round, from the ticket).
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    #[arg(long, default_value = "runs/overlap")]
    out: PathBuf,
}

pub fn run(args: &AnalyzeArgs) -> Result<()> {
    match &args.analysis {
        Analysis::Overlap(args) => overlap(args),
        Analysis::Compare(args) => compare(args),
        Analysis::Lmc(args) => lmc::run(args),
        Analysis::EarlyBird(args) => early_bird::run(args),
        Analysis::Histogram(args) => histogram::run(args),
        Analysis::Transfer(args) => transfer::run(args),
    }
}

fn compare(args: &CompareArgs) -> Result<()> {
    if !args.labels.is_empty() && args.labels.len() != args.reports.len() {
        bail!(
            "{} labels for {} reports",
            args.labels.len(),
            args.reports.len()
        );
    }
    let mut groups = Vec::new();
    let mut table = String::from(
        "| run | round | % remaining | test acc % (early stop) | early stop | final test acc % |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    for (i, path) in args.reports.iter().enumerate() {
        let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
        let report: ImpReport = serde_json::from_str(&text)
            .with_context(|| format!("{} is not an `lth imp` report", path.display()))?;
        let label = args
            .labels
            .get(i)
            .cloned()
            .unwrap_or_else(|| report.run.clone());
        for (branch, runs) in report.groups() {
            let name = if branch == "ticket" {
                label.clone()
            } else {
                format!("{label} {branch}")
            };
            for r in runs.iter().flatten() {
                table.push_str(&format!(
                    "| {name} | {} | {:.1} | {:.2} | {} | {:.2} |\n",
                    r.round,
                    100.0 * r.weights_remaining,
                    100.0 * r.test_accuracy,
                    r.early_stop_iteration,
                    100.0 * r.final_test_accuracy
                ));
            }
            groups.push((name, runs));
        }
    }
    write_file(&args.out.join("table.md"), &table)?;
    write_chart(
        &args.out,
        "accuracy",
        &charts::accuracy_vs_remaining(&groups),
    )?;
    write_chart(
        &args.out,
        "early_stop",
        &charts::early_stop_vs_remaining(&groups),
    )?;
    print!("{table}");
    eprintln!(
        "{} runs compared: {} (table.md, accuracy and early_stop charts)",
        args.reports.len(),
        args.out.display()
    );
    Ok(())
}

fn read_ticket(path: &Path) -> Result<Ticket> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    Ticket::from_safetensors(&bytes).with_context(|| format!("{}", path.display()))
}

fn overlap(args: &OverlapArgs) -> Result<()> {
    if !args.labels.is_empty() && args.labels.len() != args.tickets.len() {
        bail!(
            "{} labels for {} tickets",
            args.labels.len(),
            args.tickets.len()
        );
    }
    let mut masks = Vec::new();
    for (i, path) in args.tickets.iter().enumerate() {
        let ticket = read_ticket(path)?;
        let label = args.labels.get(i).cloned().unwrap_or_else(|| {
            let p = &ticket.provenance;
            if p.run.starts_with("imp-") {
                format!("{} r{:02}", p.run, p.round)
            } else {
                p.run.clone()
            }
        });
        masks.push((label, ticket.mask));
    }
    let matrix = overlap_matrix(&masks).context("the tickets are of different models")?;
    write_json(&args.out.join("overlap.json"), &matrix)?;
    write_file(&args.out.join("table.md"), matrix.to_markdown())?;
    write_file(&args.out.join("overlap.svg"), matrix.to_svg())?;
    print!("{}", matrix.to_markdown());
    eprintln!(
        "overlap of {} tickets: {} (overlap.json, table.md, overlap.svg)",
        masks.len(),
        args.out.display()
    );
    Ok(())
}
