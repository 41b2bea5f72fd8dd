//! `lth pai`: pruning at initialisation, swept over scores and compressions.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use lab_core::base::data::DatasetKind;
use lab_core::methods::pai::{PaiConfig, PaiExperiment, Score};
use lab_core::pruning::prune::PruneScope;
use lab_core::training::train::TrainConfig;

use crate::args::{ModelArg, RunArgs, ScoreArg};
use crate::output::{print_done, write_chart, write_file, write_json};
use crate::runner::Runner;

#[derive(Args)]
pub struct PaiArgs {
    /// Scores, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "synflow")]
    score: Vec<ScoreArg>,
    /// Compression C (density 10^-C): one value, a list, or a range FROM:TO:STEP.
    #[arg(long, default_value = "1")]
    compression: String,
    #[arg(long, default_value_t = ModelArg(PaiExperiment::default().model))]
    model: ModelArg,
    /// Training iterations of each pruned network.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    #[arg(long, default_value_t = TrainConfig::new().eval_every)]
    eval_every: usize,
    /// Scoring iterations (default: 100 for synflow, 1 for the others).
    #[arg(long)]
    scoring_iterations: Option<usize>,
    /// Per-layer instead of global selection.
    #[arg(long)]
    per_layer: bool,
    /// SNIP/GraSP batch: images per class.
    #[arg(long, default_value_t = PaiConfig::new(Score::Snip, 0.0).samples_per_class)]
    samples_per_class: usize,
    /// GraSP's temperature: logits are divided by T when scoring (the reference code: 200).
    #[arg(long, default_value_t = lab_core::methods::pai::GRASP_TEMPERATURE)]
    temperature: f64,
    /// Seed of θ0, of the scores' data sample and (unless --data-seed) of the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the training data order (default: --seed).
    #[arg(long)]
    data_seed: Option<u64>,
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long)]
    eval_subset: Option<usize>,
    /// Output: report.json, table.md, accuracy chart, records/.
    #[arg(long, default_value = "runs/pai")]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// `--compression`: `C`, `C1,C2,…`, or `FROM:TO:STEP` (both ends included).
fn parse_compressions(text: &str) -> Result<Vec<f64>> {
    let parts: Vec<&str> = text.split(':').collect();
    if let [from, to, step] = parts.as_slice() {
        let (from, to, step): (f64, f64, f64) = (from.parse()?, to.parse()?, step.parse()?);
        if step <= 0.0 || to < from {
            bail!("--compression FROM:TO:STEP needs FROM <= TO and STEP > 0");
        }
        let n = ((to - from) / step + 1e-9).floor() as usize;
        return Ok((0..=n).map(|k| from + k as f64 * step).collect());
    }
    text.split(',')
        .map(|c| {
            c.trim()
                .parse::<f64>()
                .with_context(|| format!("--compression {c}"))
        })
        .collect()
}

/// The experiments the arguments ask for: every score at every compression.
fn experiments(args: &PaiArgs) -> Result<Vec<PaiExperiment>> {
    let model = args.model.0;
    let compressions = parse_compressions(&args.compression)?;
    let train = TrainConfig::new()
        .with_iterations(args.iterations)
        .with_eval_every(args.eval_every)
        .with_data_seed(args.data_seed);
    // The error is a String, not a std::error::Error.
    train.validate()?;
    let mut experiments = Vec::new();
    for score in args.score.iter().map(|s| s.0) {
        for &compression in &compressions {
            let mut pai = PaiConfig::new(score, compression);
            pai.scope = if args.per_layer {
                PruneScope::PerLayer
            } else {
                PruneScope::Global
            };
            pai.samples_per_class = args.samples_per_class;
            pai.temperature = args.temperature;
            pai.seed = args.seed;
            if let Some(n) = args.scoring_iterations {
                pai.iterations = n;
            }
            pai.validate()?;
            experiments.push(PaiExperiment {
                model,
                dataset: DatasetKind::Mnist,
                pai,
                train: train.clone(),
                seed: args.seed,
                train_subset: args.train_subset,
                eval_subset: args.eval_subset,
            });
        }
    }
    Ok(experiments)
}

/// The runs `lth pai` would make, without running them (for sweep plans).
pub fn run_names(args: &PaiArgs) -> Result<Vec<String>> {
    Ok(experiments(args)?
        .iter()
        .map(PaiExperiment::run_name)
        .collect())
}

pub fn run(args: &PaiArgs) -> Result<()> {
    let experiments = experiments(args)?;
    let mut runner = Runner::new(&args.run, &args.out)?;
    let started = Instant::now();
    let mut results = Vec::new();
    for experiment in &experiments {
        runner.progress.set_prefix(format!(
            "{} C={}",
            experiment.pai.score.name(),
            experiment.pai.compression
        ));
        let result = runner.run(experiment, |_| Ok(()))?;
        runner.progress.line(format!(
            "{:>8} C={:<5} {:>8.3}% left  {}",
            result.score,
            result.compression,
            100.0 * result.weights_remaining,
            match &result.training {
                Some(t) => format!(
                    "test acc {:.2}% (early stop {})",
                    100.0 * t.test_accuracy,
                    t.early_stop_iteration
                ),
                None => format!(
                    "COLLAPSED (empty layers {:?}, connected {})",
                    result.collapse.empty_layers, result.collapse.connected
                ),
            }
        ));
        results.push(result);
        // Keep what is finished even if a later experiment fails.
        write_json(&args.out.join("report.json"), &results)?;
    }
    runner.progress.finish();
    let table = lab_core::methods::pai::sweep_table(&results);
    write_file(&args.out.join("table.md"), &table)?;
    write_chart(
        &args.out,
        "accuracy",
        &lab_core::methods::pai::sweep_chart(&results),
    )?;
    println!("{table}");
    print_done(started, &args.out);
    Ok(())
}
