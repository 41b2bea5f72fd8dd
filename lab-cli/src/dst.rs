//! `lth dst`: sparse training from the start (static, SET, RigL) or dense-to-sparse (GMP),
//! swept over methods, densities, ΔT, batch sizes and seeds.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use lab_core::base::data::TRAIN_SIZE;
use lab_core::base::mask::Mask;
use lab_core::base::ticket::Ticket;
use lab_core::methods::dst::{
    Comparison, DstConfig, DstExperiment, DstResult, DstRun, mask_digest,
};
use lab_core::pruning::prune::LayerRate;
use lab_core::training::train::TrainConfig;

use crate::args::{
    DatasetArg, DistributionArg, DropScheduleArg, GrowInitArg, MethodArg, ModelArg, OptimizerArg,
    RunArgs,
};
use crate::output::{print_done, write_chart, write_file, write_json};
use crate::runner::Runner;

#[derive(Args)]
pub struct DstArgs {
    /// Methods, comma-separated: static, set, rigl, gmp.
    #[arg(long, value_delimiter = ',', default_values_t = [MethodArg(DstConfig::new().method)])]
    method: Vec<MethodArg>,
    /// Fractions of the prunable weights active, comma-separated (GMP: at the end).
    #[arg(long, value_delimiter = ',', default_values_t = [DstConfig::new().density])]
    density: Vec<f64>,
    /// How the density is shared among layers: erk or uniform.
    #[arg(long, default_value_t = DistributionArg(DstConfig::new().distribution))]
    distribution: DistributionArg,
    /// ΔT: iterations between mask updates, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [DstConfig::new().update_every])]
    update_every: Vec<usize>,
    /// α: fraction of active weights dropped and regrown per update.
    #[arg(long, default_value_t = DstConfig::new().drop_fraction)]
    drop_fraction: f64,
    /// How α decays: cosine (to 0 at --end-fraction) or constant.
    #[arg(long, default_value_t = DropScheduleArg(DstConfig::new().drop_schedule))]
    drop_schedule: DropScheduleArg,
    /// Fraction of training after which masks stop changing (GMP: reaches its target).
    #[arg(long, default_value_t = DstConfig::new().end_fraction)]
    end_fraction: f64,
    /// Fraction of training at which GMP starts pruning.
    #[arg(long, default_value_t = DstConfig::new().gmp_start_fraction)]
    gmp_start: f64,
    /// A density for the layers whose parameter path matches a glob, as PATTERN=DENSITY,
    /// e.g. `layers.0.*=1` (repeatable, first match wins); the other layers share the rest.
    #[arg(long = "layer-density", value_name = "PATTERN=DENSITY")]
    layer_densities: Vec<LayerRate>,
    /// What grown connections start from: zero (RigL, ITOP) or initial (their θ0 value).
    #[arg(long, default_value_t = GrowInitArg(DstConfig::new().grow_init))]
    grow_init: GrowInitArg,
    /// ITOP's exploration: grow never-active weights before others.
    #[arg(long)]
    explore_first: bool,
    /// Start from the mask of a ticket (an IMP or PaI ticket.safetensors) instead of a random
    /// one (static, set, rigl); the density is then the mask's (--density is ignored).
    #[arg(long)]
    mask_from: Option<PathBuf>,
    #[arg(long, default_value_t = ModelArg(DstExperiment::new().model))]
    model: ModelArg,
    #[arg(long, default_value_t = DatasetArg(DstExperiment::new().dataset))]
    dataset: DatasetArg,
    /// Training iterations of each run.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Train for this many epochs (of the training set) instead of --iterations: each batch
    /// size then gets its own number of iterations (ITOP's batch-size comparison).
    #[arg(long)]
    epochs: Option<f64>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [TrainConfig::new().batch_size])]
    batch_size: Vec<usize>,
    #[arg(long, default_value_t = OptimizerArg(TrainConfig::new().optimizer))]
    optimizer: OptimizerArg,
    #[arg(long, default_value_t = TrainConfig::new().learning_rate)]
    lr: f64,
    /// L2 penalty λ (coupled weight decay; 0 = none).
    #[arg(long, default_value_t = TrainConfig::new().weight_decay)]
    weight_decay: f64,
    #[arg(long, default_value_t = TrainConfig::new().eval_every)]
    eval_every: usize,
    /// Seeds (θ0, initial mask, SET's growth, data order), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    seed: Vec<u64>,
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long)]
    eval_subset: Option<usize>,
    /// Checkpoint every N iterations (0 = never): a killed run resumes where it was.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: usize,
    /// Add another method's points to the accuracy and cost charts: an `lth imp` report.json
    /// (the ticket at each round) or an `lth pai` report.json (one line per score). Repeatable.
    #[arg(long)]
    compare: Vec<PathBuf>,
    /// Output: report.json, table.md, charts (accuracy, cost, rs, curves), records/.
    #[arg(long, default_value = "runs/dst")]
    out: PathBuf,
    #[command(flatten)]
    run: RunArgs,
}

/// The mask of `--mask-from`, if given.
fn given_mask(args: &DstArgs) -> Result<Option<Mask>> {
    Ok(match &args.mask_from {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            let ticket = Ticket::from_safetensors(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            Some(ticket.mask)
        }
        None => None,
    })
}

/// The experiments the arguments ask for; `train_examples` turns --epochs into iterations.
fn experiments(
    args: &DstArgs,
    given: Option<&Mask>,
    train_examples: usize,
) -> Result<Vec<DstExperiment>> {
    let densities = match given {
        Some(mask) => vec![mask.density()],
        None => args.density.clone(),
    };
    let mut experiments = Vec::new();
    for &seed in &args.seed {
        for &batch_size in &args.batch_size {
            for method in args.method.iter().map(|m| m.0) {
                for &density in &densities {
                    for &update_every in &args.update_every {
                        let sparse = DstConfig::new()
                            .with_method(method)
                            .with_density(density)
                            .with_distribution(args.distribution.0)
                            .with_update_every(update_every)
                            .with_drop_fraction(args.drop_fraction)
                            .with_drop_schedule(args.drop_schedule.0)
                            .with_end_fraction(args.end_fraction)
                            .with_gmp_start_fraction(args.gmp_start)
                            .with_explore_first(args.explore_first)
                            .with_layer_densities(args.layer_densities.clone())
                            .with_grow_init(args.grow_init.0);
                        let iterations = match args.epochs {
                            Some(epochs) => (epochs * train_examples as f64 / batch_size as f64)
                                .round() as usize,
                            None => args.iterations,
                        };
                        let train = TrainConfig::new()
                            .with_iterations(iterations)
                            .with_batch_size(batch_size)
                            .with_optimizer(args.optimizer.0)
                            .with_learning_rate(args.lr)
                            .with_weight_decay(args.weight_decay)
                            .with_eval_every(args.eval_every);
                        let experiment = DstExperiment::new()
                            .with_model(args.model.0)
                            .with_dataset(args.dataset.0)
                            .with_train(train)
                            .with_sparse(sparse)
                            .with_seed(seed)
                            .with_initial_mask(given.map(mask_digest))
                            .with_train_subset(args.train_subset)
                            .with_eval_subset(args.eval_subset)
                            .with_checkpoint_every(args.checkpoint_every);
                        experiment.validate()?;
                        experiments.push(experiment);
                    }
                }
            }
        }
    }
    Ok(experiments)
}

/// The runs `lth dst` would make, without running them (for sweep plans).
pub fn run_names(args: &DstArgs) -> Result<Vec<String>> {
    let train_examples = args.train_subset.unwrap_or(usize::MAX).min(TRAIN_SIZE);
    let given = given_mask(args)?;
    Ok(experiments(args, given.as_ref(), train_examples)?
        .iter()
        .map(DstExperiment::run_name)
        .collect())
}

pub fn run(args: &DstArgs) -> Result<()> {
    let given = given_mask(args)?;
    let mut runner = Runner::new(&args.run, &args.out)?;
    // What an epoch is: the training set after the validation hold-out and --train-subset.
    let examples = runner.dataset(args.dataset.0)?.train.len();
    let examples = args.train_subset.map_or(examples, |n| n.min(examples));
    let experiments = experiments(args, given.as_ref(), examples)?;
    let started = Instant::now();
    let mut results: Vec<DstResult> = Vec::new();
    for experiment in experiments {
        runner.progress.set_prefix(format!(
            "{} ΔT={} b={} seed {}",
            experiment.label(),
            experiment.sparse.update_every,
            experiment.train.batch_size,
            experiment.seed
        ));
        let run = DstRun {
            experiment,
            given_mask: given.clone(),
        };
        let result = runner.run(&run, |_| Ok(()))?;
        runner.progress.line(format!(
            "{:>6} {:>6.2}% ΔT={:<5} b={:<4} Rs {:>6.2}%  test acc {:.2}% (early stop {})  FLOPs {:.3}× dense",
            result.method,
            100.0 * result.training.weights_remaining,
            result.update_every,
            result.batch_size,
            100.0 * result.explored,
            100.0 * result.training.test_accuracy,
            result.training.early_stop_iteration,
            result.relative_training_flops,
        ));
        results.push(result);
        // Keep what is finished even if a later run fails.
        write_json(&args.out.join("report.json"), &results)?;
    }
    runner.progress.finish();
    let mut comparisons = Vec::new();
    for path in &args.compare {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if let Ok(report) = serde_json::from_str::<lab_core::methods::imp::ImpReport>(&text) {
            comparisons.push(Comparison::from_imp(&report));
        } else {
            let results: Vec<lab_core::methods::pai::PaiResult> = serde_json::from_str(&text)
                .with_context(|| {
                    format!(
                        "{} is neither an `lth imp` nor an `lth pai` report",
                        path.display()
                    )
                })?;
            comparisons.extend(Comparison::from_pai(&results));
        }
    }
    let table = write_outputs(&args.out, &results, &comparisons)?;
    println!("{table}");
    print_done(started, &args.out);
    Ok(())
}

/// `report.json`, `table.md` and the charts of DST results; returns the table.
pub fn write_outputs(
    out: &std::path::Path,
    results: &[DstResult],
    comparisons: &[Comparison],
) -> Result<String> {
    write_json(&out.join("report.json"), &results)?;
    let table = lab_core::methods::dst::table(results);
    write_file(&out.join("table.md"), &table)?;
    write_chart(
        out,
        "accuracy",
        &lab_core::methods::dst::accuracy_chart(results, comparisons),
    )?;
    write_chart(
        out,
        "cost",
        &lab_core::methods::dst::cost_chart(results, comparisons),
    )?;
    write_chart(out, "rs", &lab_core::methods::dst::explored_chart(results))?;
    write_chart(
        out,
        "accuracy_vs_rs",
        &lab_core::methods::dst::accuracy_vs_explored_chart(results),
    )?;
    let curves: Vec<_> = results
        .iter()
        .map(|r| {
            (
                lab_core::methods::dst::dst_label(r),
                r.training.curve.clone(),
            )
        })
        .collect();
    write_chart(
        out,
        "curves",
        &lab_core::report::charts::training_curves(&curves),
    )?;
    Ok(table)
}
