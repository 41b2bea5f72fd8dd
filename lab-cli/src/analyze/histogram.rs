//! `lth analyze histogram`: how pruning and retraining reshape each layer's weights.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use lab_core::analyses::histogram::{imp_round_histograms, layer_chart, table};
use lab_core::base::store::DirStore;

use crate::output::{write_chart, write_file, write_json};

#[derive(Args)]
pub struct HistogramArgs {
    /// An `lth imp` output directory (or its records/ directory).
    run_dir: PathBuf,
    /// The IMP round: its trained weights before and after pruning, and round + 1's after
    /// retraining.
    #[arg(long, default_value_t = 1)]
    round: usize,
    /// Which run, when the records hold several (imp-<hash>).
    #[arg(long)]
    run: Option<String>,
    #[arg(long, default_value_t = 60)]
    bins: usize,
    /// Output: histogram.json, table.md, one chart per layer.
    #[arg(long, default_value = "runs/histogram")]
    out: PathBuf,
}

/// The records directory and the IMP run in it.
fn find_run(dir: &Path, wanted: Option<&str>) -> Result<(PathBuf, String)> {
    let records = if dir.join("records").is_dir() {
        dir.join("records")
    } else {
        dir.to_path_buf()
    };
    let mut runs: Vec<String> = std::fs::read_dir(&records)
        .with_context(|| format!("reading {}", records.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|name| name.starts_with("imp-"))
        .collect();
    runs.sort();
    match (wanted, runs.as_slice()) {
        (Some(run), _) if runs.iter().any(|r| r == run) => Ok((records, run.to_string())),
        (Some(run), _) => bail!("no run {run} in {} (found: {runs:?})", records.display()),
        (None, [one]) => Ok((records, one.clone())),
        (None, []) => bail!("no IMP run (imp-<hash>/) in {}", records.display()),
        (None, many) => bail!(
            "{} holds several runs: pick one with --run ({many:?})",
            records.display()
        ),
    }
}

pub fn run(args: &HistogramArgs) -> Result<()> {
    let (records, run) = find_run(&args.run_dir, args.run.as_deref())?;
    let store = DirStore::new(records);
    let histograms = imp_round_histograms(&store, &run, args.round, args.bins)?;
    write_json(&args.out.join("histogram.json"), &histograms)?;
    let text = table(&histograms);
    write_file(&args.out.join("table.md"), &text)?;
    for layer in &histograms.layers {
        let name: String = layer
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        write_chart(
            &args.out,
            &format!("histogram-{name}"),
            &layer_chart(layer, args.round),
        )?;
    }
    print!("{text}");
    eprintln!(
        "{run} round {}: {} (histogram.json, table.md, histogram-<layer> charts)",
        args.round,
        args.out.display()
    );
    Ok(())
}
