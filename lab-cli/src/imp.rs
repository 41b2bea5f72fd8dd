//! `lth imp` and `lth train`: iterative magnitude pruning with its controls, a dense run (an
//! IMP run of one round), or the retraining of a saved ticket.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use lab_core::base::model::Net;
use lab_core::methods::imp::ImpReport;
use lab_core::methods::imp::{ImpConfig, ImpExperiment, Rewind};
use lab_core::pruning::granularity::Granularity;
use lab_core::pruning::prune::{LayerRate, PruneConfig, PruneScope};
use lab_core::report::reproduce::{densities, rounds_for_levels};
use lab_core::training::train::TrainConfig;

use crate::args::{
    ControlArg, DatasetArg, KernelArg, ModelArg, OptimizerArg, RunArgs, parse_rewind,
};
use crate::output::{write_json, write_report_charts};
use crate::runner::Runner;

/// A flag given twice takes its last value (scripts/imp.sh passes defaults, users override).
#[derive(Args, Clone)]
#[command(args_override_self = true)]
pub struct ImpArgs {
    /// The network.
    #[arg(long, default_value_t = ModelArg(ImpConfig::new().model))]
    model: ModelArg,
    /// The data set.
    #[arg(long, default_value_t = DatasetArg(ImpConfig::new().dataset))]
    dataset: DatasetArg,
    /// Training runs including the dense one (imp only).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Training iterations per round (the paper: 50000).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Rewind point: init, fine-tune, an iteration K, or a percentage of training like 2%.
    #[arg(long, default_value = "init", value_parser = parse_rewind)]
    rewind: Rewind,
    /// Also run a control on the ticket masks (repeatable).
    #[arg(long)]
    control: Vec<ControlArg>,
    /// Run the controls only at the rounds nearest these % of weights remaining,
    /// comma-separated (the paper's: 100,51.3,21.1,13.5,3.6,1.9); default: every round.
    #[arg(long, value_delimiter = ',')]
    control_at: Vec<f64>,
    /// Replicate seed: θ0 and (unless --data-seed) the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the training data order (default: --seed); the same in every round.
    #[arg(long)]
    data_seed: Option<u64>,
    /// Output directory: report.json, charts, and records/ of finished rounds.
    #[arg(long, default_value = "runs/latest")]
    pub out: PathBuf,
    #[arg(long, default_value_t = OptimizerArg(TrainConfig::new().optimizer))]
    optimizer: OptimizerArg,
    /// How steps compute: dense (masked, on the backend), sparse (the host, kept weights
    /// only; LeNet-300-100) or auto (sparse below the break-even density). Part of the run's
    /// identity, as the backend.
    #[arg(long, default_value_t = KernelArg(TrainConfig::new().kernel))]
    kernel: KernelArg,
    // Hyper-parameter defaults are lab-core's (TrainConfig, PruneConfig): one place.
    #[arg(long, default_value_t = TrainConfig::new().learning_rate)]
    lr: f64,
    #[arg(long, default_value_t = TrainConfig::new().batch_size)]
    batch_size: usize,
    #[arg(long, default_value_t = TrainConfig::new().warmup_iterations)]
    warmup: usize,
    /// L2 penalty λ (coupled weight decay: λ·θ added to the gradient; 0 = none).
    #[arg(long, default_value_t = TrainConfig::new().weight_decay)]
    weight_decay: f64,
    #[arg(long, default_value_t = TrainConfig::new().eval_every)]
    eval_every: usize,
    /// Fraction of surviving fully connected weights pruned per round.
    #[arg(long, default_value_t = PruneConfig::default().rate)]
    prune_rate: f64,
    /// Fraction of the output layer (the last prunable parameter) pruned per round.
    #[arg(long, default_value_t = PruneConfig::default().output_rate)]
    output_rate: f64,
    /// Fraction of convolution weights pruned per round.
    #[arg(long, default_value_t = PruneConfig::default().conv_rate)]
    conv_rate: f64,
    /// A rate for the layers whose parameter path matches a glob, as PATTERN=RATE, e.g.
    /// `layers.0.*=0.1` (repeatable; the first match wins, before the rates above and the
    /// model's own suggestions, e.g. the ViT's per layer type).
    #[arg(long = "layer-rate", value_name = "PATTERN=RATE")]
    layer_rates: Vec<LayerRate>,
    /// Ignore the model's own per-layer rates (the ViT's per layer type), so --prune-rate,
    /// --output-rate and --conv-rate reach every layer no --layer-rate names.
    #[arg(long)]
    no_model_rates: bool,
    /// Global instead of per-layer magnitude pruning.
    #[arg(long)]
    global: bool,
    /// What a round removes: `weights` (the LTH paper), whole units (hidden neurons, conv
    /// filters) by the norm of their weights, `units-l1` or `units-l2`, or `N:M` such as
    /// `2:4` (the N largest of every M consecutive inputs of a unit; one pruned round).
    #[arg(long, default_value = "weights", value_parser = parse_granularity)]
    granularity: Granularity,
    /// Train on the first N training examples only.
    #[arg(long)]
    train_subset: Option<usize>,
    /// Evaluate on the first N validation and test examples only.
    #[arg(long)]
    eval_subset: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
    /// (train) Retrain a saved ticket (a round's ticket.safetensors) instead of a dense net.
    #[arg(long)]
    pub ticket: Option<PathBuf>,
    /// Checkpoint every N iterations (0 = never): a killed run resumes inside its round.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: usize,
}

/// `lth imp` (`rounds` from --rounds) or `lth train` (one round; `--ticket` is `retrain`).
pub fn run(args: &ImpArgs, rounds: usize) -> Result<()> {
    if args.ticket.is_some() {
        bail!("--ticket retrains a saved ticket: use `lth train --ticket`");
    }
    let config = imp_config(args, rounds)?;
    let report = run_experiment(config, args)?;
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>10}",
        "round", "remaining", "early-stop", "test acc", "final acc"
    );
    for r in &report.rounds {
        println!(
            "{:>6} {:>9.2}% {:>10} {:>9.2}% {:>9.2}%",
            r.round,
            100.0 * r.weights_remaining,
            r.early_stop_iteration,
            100.0 * r.test_accuracy,
            100.0 * r.final_test_accuracy
        );
    }
    Ok(())
}

/// The run `lth imp` (or `lth train`) would make, without running it (for sweep plans).
pub fn run_names(args: &ImpArgs, rounds: usize) -> Result<Vec<String>> {
    if args.ticket.is_some() {
        bail!("retraining a --ticket is not a sweep entry: its run is the ticket's");
    }
    Ok(vec![imp_config(args, rounds)?.run_name()])
}

pub(crate) fn imp_config(args: &ImpArgs, rounds: usize) -> Result<ImpConfig> {
    let train = TrainConfig::new()
        .with_optimizer(args.optimizer.0)
        .with_learning_rate(args.lr)
        .with_batch_size(args.batch_size)
        .with_iterations(args.iterations)
        .with_warmup_iterations(args.warmup)
        .with_weight_decay(args.weight_decay)
        .with_eval_every(args.eval_every)
        .with_data_seed(args.data_seed)
        .with_kernel(args.kernel.0);
    let prune = PruneConfig {
        scope: if args.global {
            PruneScope::Global
        } else {
            PruneScope::PerLayer
        },
        rate: args.prune_rate,
        conv_rate: args.conv_rate,
        output_rate: args.output_rate,
        layers: args.layer_rates.clone(),
        model_rates: !args.no_model_rates,
        granularity: args.granularity,
    };
    let config = ImpConfig::new()
        .with_model(args.model.0)
        .with_dataset(args.dataset.0)
        .with_train(train)
        .with_prune(prune)
        .with_rounds(rounds)
        .with_rewind(args.rewind)
        .with_seed(args.seed)
        .with_train_subset(args.train_subset)
        .with_eval_subset(args.eval_subset)
        .with_checkpoint_every(args.checkpoint_every);
    // The error is a String, not a std::error::Error.
    config.validate()?;
    Ok(config)
}

/// Runs (or resumes) the experiment, rewriting OUT's report after every finished branch.
fn run_experiment(config: ImpConfig, args: &ImpArgs) -> Result<ImpReport> {
    let mut runner = Runner::new(&args.run, &args.out)?;
    let control_rounds = (!args.control_at.is_empty())
        .then(|| rounds_for_levels(&densities::<Net>(&config, &runner.device), &args.control_at));
    let run = config.run_name();
    runner.progress.line(format!(
        "run {run} ({} on {}), records in {}",
        config.model.name(),
        args.run.backend.0.name(),
        runner.store.path(&run).display()
    ));
    let experiment = ImpExperiment {
        config,
        controls: args.control.iter().map(|c| c.0).collect(),
        control_rounds,
    };
    let started = Instant::now();
    let out = args.out.clone();
    let report = runner.run(&experiment, move |part| {
        // The JSON as it is (a diverged loss is null), then the charts from what parses.
        write_json(&out.join("report.json"), part)?;
        match serde_json::from_value(part.clone()) {
            Ok(report) => write_report_charts(&out, &report),
            Err(_) => Ok(()),
        }
    })?;
    runner.progress.finish();
    eprintln!(
        "done in {:.1}s: {} (report.json, accuracy/early_stop/curves .svg/.png)",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(report)
}

fn parse_granularity(text: &str) -> Result<Granularity, String> {
    Granularity::parse(text)
        .ok_or_else(|| format!("`{text}` is not weights, units-l1, units-l2 or N:M (e.g. 2:4)"))
}
