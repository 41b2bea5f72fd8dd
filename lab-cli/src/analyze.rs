//! `lth analyze`: the follow-up questions of the LTH literature, one sub-command each.
//! `overlap`: do different runs (seeds, rounds, methods) keep the same connections?

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use lab_core::overlap::overlap_matrix;
use lab_core::ticket::Ticket;

use crate::output::{write_file, write_json};

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
    }
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
