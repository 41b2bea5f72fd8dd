//! `lth reproduce`: a paper's protocol, over seeds, with its controls and figures.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use lab_core::model::Net;
use lab_core::plot;
use lab_core::record::RoundResult;
use lab_core::reproduce::{
    densities, group_order, lth_lenet300, markdown_table, reproduce, rounds_for_levels,
};
use lab_core::store::DirStore;
use lab_core::train::Prepared;

use crate::args::BackendArg;
use crate::data::load_data;
use crate::output::{write_chart, write_file, write_json};
use crate::progress::Progress;

#[derive(Args)]
pub struct ReproduceArgs {
    /// The protocol: lth-lenet300.
    protocol: String,
    /// Training iterations per run (the paper: 50000).
    #[arg(long, default_value_t = 2000)]
    budget: usize,
    /// Number of seeds (0, 1, …).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// IMP rounds including the dense one (19 reaches 1.9% remaining).
    #[arg(long, default_value_t = 19)]
    rounds: usize,
    /// % of weights remaining at which the controls run (nearest round).
    #[arg(long, value_delimiter = ',', default_values_t = lab_core::reproduce::LTH_LEVELS)]
    levels: Vec<f64>,
    /// flex (CPU, default), ndarray (CPU) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    backend: BackendArg,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    download: bool,
    /// Output: reproduction.json, table.md, accuracy/early_stop charts, records/.
    #[arg(long, default_value = "runs/reproduce-lth-lenet300")]
    out: PathBuf,
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    if args.protocol != "lth-lenet300" {
        bail!(
            "unknown protocol {}: available: lth-lenet300",
            args.protocol
        );
    }
    let config = lth_lenet300(args.budget, args.rounds).with_checkpoint_every(1000);
    // The error is a String, not a std::error::Error.
    config.validate()?;
    let backend = args.backend.0;
    let device = args.backend.device()?;
    let data = load_data(config.dataset, args.data.clone(), args.download, args.quiet)?;
    let prepared = Prepared::new(&data, &device);
    let control_rounds = rounds_for_levels(&densities::<Net>(&config, &device), &args.levels);
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let mut store = DirStore::new(args.out.join("records"));
    let mut progress = Progress::new(args.quiet);
    progress.line(format!(
        "lth-lenet300: budget {} iterations, seeds {seeds:?}, {} rounds, controls at rounds {control_rounds:?}",
        args.budget, args.rounds
    ));
    let started = Instant::now();
    let result = lab_core::block_on(reproduce::<Net>(
        "lth-lenet300",
        &config,
        backend.name(),
        &seeds,
        &control_rounds,
        &prepared,
        &device,
        &mut store,
        &mut progress,
    ))?;
    progress.finish();
    write_json(&args.out.join("reproduction.json"), &result)?;
    let table = markdown_table(&result);
    write_file(&args.out.join("table.md"), &table)?;
    let groups: Vec<(String, Vec<Vec<RoundResult>>)> = group_order(&result)
        .into_iter()
        .map(|k| (k.clone(), result.groups[k].clone()))
        .collect();
    write_chart(&args.out, "accuracy", &plot::accuracy_vs_remaining(&groups))?;
    write_chart(
        &args.out,
        "early_stop",
        &plot::early_stop_vs_remaining(&groups),
    )?;
    println!("{table}");
    println!(
        "this invocation: {:.0}s wall; recorded training time {:.0}s (data {:.0}s, training {:.0}s, evaluation {:.0}s)",
        started.elapsed().as_secs_f64(),
        result.time.total(),
        result.time.data,
        result.time.training,
        result.time.evaluation
    );
    Ok(())
}
