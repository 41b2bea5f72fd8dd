//! `lth`: the LTH Lab command line.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lab_core::backend::BackendKind;
use lab_core::burn::tensor::Device;
use lab_core::data::native::{DataSource, load};
use lab_core::data::{DatasetKind, Mnist};
use lab_core::imp::{Control, ImpConfig, ImpObserver, Rewind};
use lab_core::model::{Architecture, ConvNet, Mlp, ModelKind};
use lab_core::plot::{self, Chart};
use lab_core::prune::{PruneConfig, PruneScope};
use lab_core::record::{ImpReport, RoundResult};
use lab_core::store::DirStore;
use lab_core::train::{EvalPoint, Observer, OptimizerKind, Prepared, TrainConfig};

#[derive(Parser)]
#[command(
    name = "lth",
    version,
    about = "Lottery Ticket Hypothesis experiments on burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Iterative magnitude pruning: train, prune, rewind, repeat; optional controls.
    Imp(ImpArgs),
    /// Train one network (dense) and report its curve: an IMP run of one round.
    Train(ImpArgs),
    /// Print training throughput (samples/s) of LeNet-300-100 per backend.
    Bench(BenchArgs),
    /// Pruning at initialisation: score (snip, grasp, synflow, mag, rand), prune to density
    /// 10^-C, check layer collapse, train. Lists sweep: --score snip,synflow --compression 0:3:0.25
    Pai(PaiArgs),
    /// Reproduce a paper's result; `lth-lenet300`: Frankle & Carbin's LeNet-300-100 figures.
    Reproduce(ReproduceArgs),
}

#[derive(Args)]
struct PaiArgs {
    /// Scores, comma-separated: snip, grasp, synflow, prospr, mag, rand.
    #[arg(long, value_delimiter = ',', default_value = "synflow")]
    score: Vec<String>,
    /// Compression C (density 10^-C): one value, a list, or a range FROM:TO:STEP.
    #[arg(long, default_value = "1")]
    compression: String,
    #[arg(long, default_value = "lenet300")]
    model: String,
    /// Training iterations of each pruned network.
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Scoring iterations (default: 100 for synflow, 1 for the others).
    #[arg(long)]
    scoring_iterations: Option<usize>,
    /// Per-layer instead of global selection.
    #[arg(long)]
    per_layer: bool,
    /// SNIP/GraSP batch: images per class.
    #[arg(long, default_value_t = 10)]
    samples_per_class: usize,
    /// GraSP's temperature: logits are divided by T when scoring (the reference code: 200).
    #[arg(long, default_value_t = lab_core::pai::GRASP_TEMPERATURE)]
    temperature: f64,
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Seed of θ0, of the scores' data sample and (unless --data-seed) of the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the training data order (default: --seed).
    #[arg(long)]
    data_seed: Option<u64>,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    download: bool,
    #[arg(long)]
    train_subset: Option<usize>,
    #[arg(long)]
    eval_subset: Option<usize>,
    /// Output: report.json, table.md, accuracy chart, records/.
    #[arg(long, default_value = "runs/pai")]
    out: PathBuf,
    #[arg(long)]
    quiet: bool,
}

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

fn pai_command(args: &PaiArgs) -> Result<()> {
    use lab_core::pai::{PaiConfig, PaiExperiment, Score};
    let model =
        ModelKind::parse(&args.model).with_context(|| format!("unknown model {}", args.model))?;
    let scores = args
        .score
        .iter()
        .map(|s| {
            Score::parse(s).with_context(|| {
                format!("unknown score {s}: snip, grasp, synflow, prospr, mag, rand")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let compressions = parse_compressions(&args.compression)?;
    let train = TrainConfig::new()
        .with_iterations(args.iterations)
        .with_eval_every(args.eval_every)
        .with_data_seed(args.data_seed);
    let mut experiments = Vec::new();
    for &score in &scores {
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
    train.validate().map_err(anyhow::Error::msg)?;
    let backend = BackendKind::parse(&args.backend)
        .with_context(|| format!("unknown backend {}", args.backend))?;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let data = load_data(
        DatasetKind::Mnist,
        args.data.clone(),
        args.download,
        args.quiet,
    )?;
    let data = data.limited(args.train_subset, args.eval_subset);
    let prepared = Prepared::new(&data, &device);
    let mut store = DirStore::new(args.out.join("records"));
    let mut progress = Progress::new(args.quiet);
    let started = Instant::now();
    let mut results = Vec::new();
    for experiment in &experiments {
        progress.step.set_prefix(format!(
            "{} C={}",
            experiment.pai.score.name(),
            experiment.pai.compression
        ));
        let result = if model.is_mlp() {
            lab_core::block_on(lab_core::pai::run_pai::<Mlp>(
                experiment,
                &prepared,
                &device,
                backend.name(),
                &mut store,
                &mut progress,
            ))
        } else {
            lab_core::block_on(lab_core::pai::run_pai::<ConvNet>(
                experiment,
                &prepared,
                &device,
                backend.name(),
                &mut store,
                &mut progress,
            ))
        }?;
        progress.line(format!(
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
        write_file(
            &args.out.join("report.json"),
            serde_json::to_string_pretty(&results)?,
        )?;
    }
    progress.step.finish_and_clear();
    let table = lab_core::pai::sweep_table(&results);
    write_file(&args.out.join("table.md"), &table)?;
    write_chart(&args.out, "accuracy", &lab_core::pai::sweep_chart(&results))?;
    println!("{table}");
    eprintln!(
        "done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
struct ReproduceArgs {
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
    #[arg(long, default_value = "ndarray")]
    backend: String,
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

/// A flag given twice takes its last value (scripts/imp.sh passes defaults, users override).
#[derive(Args, Clone)]
#[command(args_override_self = true)]
struct ImpArgs {
    /// lenet300, lenet5, conv2, conv4 or conv6.
    #[arg(long, default_value = "lenet300")]
    model: String,
    /// mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Training runs including the dense one (imp only).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Training iterations per round (the paper: 50000).
    #[arg(long, default_value_t = 2000)]
    iterations: usize,
    /// Rewind point: init, fine-tune, an iteration K, or a percentage of training like 2%.
    #[arg(long, default_value = "init")]
    rewind: String,
    /// Also run a control on the ticket masks: reinit or random-prune (repeatable).
    #[arg(long)]
    control: Vec<String>,
    /// ndarray (CPU, default), flex (CPU, faster) or wgpu.
    #[arg(long, default_value = "ndarray")]
    backend: String,
    /// Replicate seed: θ0 and (unless --data-seed) the data order.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Seed of the training data order (default: --seed); the same in every round.
    #[arg(long)]
    data_seed: Option<u64>,
    /// Directory with the four IDX files (.gz or raw). Default: LTH_DATA, data/, ../shared/, cache.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Download the data set into the cache if no local copy is found.
    #[arg(long)]
    download: bool,
    /// Output directory: report.json, charts, and records/ of finished rounds.
    #[arg(long, default_value = "runs/latest")]
    out: PathBuf,
    #[arg(long, default_value = "adam")]
    optimizer: String,
    #[arg(long, default_value_t = 1.2e-3)]
    lr: f64,
    #[arg(long, default_value_t = 60)]
    batch_size: usize,
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    #[arg(long, default_value_t = 100)]
    eval_every: usize,
    /// Fraction of surviving fully connected weights pruned per round.
    #[arg(long, default_value_t = 0.2)]
    prune_rate: f64,
    #[arg(long, default_value_t = 0.1)]
    output_rate: f64,
    #[arg(long, default_value_t = 0.1)]
    conv_rate: f64,
    /// Global instead of per-layer magnitude pruning.
    #[arg(long)]
    global: bool,
    /// Train on the first N training examples only.
    #[arg(long)]
    train_subset: Option<usize>,
    /// Evaluate on the first N validation and test examples only.
    #[arg(long)]
    eval_subset: Option<usize>,
    /// Print nothing but errors and the final summary.
    #[arg(long)]
    quiet: bool,
    /// (train) Retrain a saved ticket (a round's ticket.safetensors) instead of a dense net.
    #[arg(long)]
    ticket: Option<PathBuf>,
    /// Checkpoint every N iterations (0 = never): a killed run resumes inside its round.
    #[arg(long, default_value_t = 1000)]
    checkpoint_every: usize,
}

#[derive(Args)]
struct BenchArgs {
    /// Backends to measure (default: all compiled in).
    #[arg(long)]
    backend: Vec<String>,
    /// Timed training steps per backend (after warm-up).
    #[arg(long, default_value_t = 300)]
    steps: usize,
    #[arg(long)]
    data: Option<PathBuf>,
}

fn parse_rewind(text: &str) -> Result<Rewind> {
    Ok(match text {
        "init" => Rewind::Init,
        "fine-tune" | "finetune" | "none" => Rewind::FineTune,
        _ if text.ends_with('%') => Rewind::Fraction(
            text.trim_end_matches('%')
                .parse::<f64>()
                .context("rewind %")?
                / 100.0,
        ),
        _ => Rewind::Iteration(
            text.parse()
                .with_context(|| format!("--rewind {text}: use init, fine-tune, K or P%"))?,
        ),
    })
}

fn imp_config(args: &ImpArgs, rounds: usize) -> Result<ImpConfig> {
    let model =
        ModelKind::parse(&args.model).with_context(|| format!("unknown model {}", args.model))?;
    let dataset = match args.dataset.as_str() {
        "mnist" => DatasetKind::Mnist,
        "fashion-mnist" | "fashion" => DatasetKind::FashionMnist,
        other => bail!("unknown dataset {other}"),
    };
    let optimizer = match args.optimizer.as_str() {
        "adam" => OptimizerKind::Adam,
        "sgd" => OptimizerKind::Sgd,
        other => bail!("unknown optimizer {other}"),
    };
    let train = TrainConfig::new()
        .with_optimizer(optimizer)
        .with_learning_rate(args.lr)
        .with_batch_size(args.batch_size)
        .with_iterations(args.iterations)
        .with_warmup_iterations(args.warmup)
        .with_eval_every(args.eval_every)
        .with_data_seed(args.data_seed);
    let prune = PruneConfig {
        scope: if args.global {
            PruneScope::Global
        } else {
            PruneScope::PerLayer
        },
        rate: args.prune_rate,
        conv_rate: args.conv_rate,
        output_rate: args.output_rate,
    };
    let config = ImpConfig::new()
        .with_model(model)
        .with_dataset(dataset)
        .with_train(train)
        .with_prune(prune)
        .with_rounds(rounds)
        .with_rewind(parse_rewind(&args.rewind)?)
        .with_seed(args.seed)
        .with_train_subset(args.train_subset)
        .with_eval_subset(args.eval_subset)
        .with_checkpoint_every(args.checkpoint_every);
    config.validate().map_err(anyhow::Error::msg)?;
    Ok(config)
}

fn load_data(
    kind: DatasetKind,
    dir: Option<PathBuf>,
    download: bool,
    quiet: bool,
) -> Result<Mnist> {
    let source = DataSource {
        explicit_dir: dir,
        allow_download: download,
    };
    let bar = ProgressBar::hidden();
    let mut progress = |file: &str, done: u64, total: Option<u64>| {
        if bar.is_hidden() && !quiet {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {wide_bar}")
                    .expect("template"),
            );
        }
        bar.set_message(format!("downloading {file}"));
        bar.set_length(total.unwrap_or(done));
        bar.set_position(done);
    };
    let (data, dir) = load(kind, &source, &mut progress)?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "data: {} from {} ({} train / {} validation / {} test, checksums verified)",
            kind.name(),
            dir.display(),
            data.train.len(),
            data.validation.len(),
            data.test.len()
        );
    }
    Ok(data)
}

struct Progress {
    bars: MultiProgress,
    step: ProgressBar,
    quiet: bool,
}

impl Progress {
    fn new(quiet: bool) -> Self {
        let bars = MultiProgress::new();
        if quiet || !console_is_interactive() {
            bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        let step = bars.add(ProgressBar::new(0));
        step.set_style(
            ProgressStyle::with_template(
                "{prefix} {wide_bar} {pos}/{len} it {per_sec} eta {eta} {msg}",
            )
            .expect("template"),
        );
        Self { bars, step, quiet }
    }

    fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        if self.bars.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.bars.println(text);
        }
    }
}

fn console_is_interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

impl Observer for Progress {
    fn on_step(&mut self, iteration: usize, total: usize) {
        if iteration == 1 {
            self.step.set_length(total as u64);
            self.step.reset();
        }
        if iteration.is_multiple_of(20) || iteration == total {
            self.step.set_position(iteration as u64);
        }
    }

    fn on_resume(&mut self, iteration: usize) {
        self.line(format!(
            "resumed at iteration {iteration} from its checkpoint"
        ));
    }

    fn on_eval(&mut self, point: &EvalPoint) {
        self.step.set_message(format!(
            "val loss {:.4} test acc {:.2}%",
            point.validation_loss,
            100.0 * point.test_accuracy
        ));
    }
}

impl ImpObserver for Progress {
    fn on_round_start(&mut self, round: usize, remaining: f64, label: &str) {
        self.step.set_prefix(format!(
            "{label} round {round} ({:.1}% left)",
            100.0 * remaining
        ));
    }

    fn on_round(&mut self, r: &RoundResult, label: &str) {
        self.line(format!(
            "{label:>12} round {:>2}: {:>6.2}% weights left, early stop at {:>6}, test acc {:.2}% (final {:.2}%), {:.1}s",
            r.round,
            100.0 * r.weights_remaining,
            r.early_stop_iteration,
            100.0 * r.test_accuracy,
            100.0 * r.final_test_accuracy,
            r.wall_seconds
        ));
    }
}

/// Writes a file atomically (a temporary file synced and renamed into place), creating its
/// directory: a killed run leaves the old file or the new one, never half of one.
fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    lab_core::store::write_atomically(path, contents.as_ref())
        .with_context(|| format!("writing {}", path.display()))
}

fn write_chart(out: &Path, name: &str, chart: &Chart) -> Result<()> {
    write_file(&out.join(format!("{name}.svg")), plot::to_svg(chart))?;
    // The PNG encoder picks its format from the extension: render beside, then rename.
    let temporary = out.join(format!("{name}.partial.png"));
    match plot::save_png(chart, &temporary) {
        Ok(()) => std::fs::rename(&temporary, out.join(format!("{name}.png")))?,
        Err(e) => eprintln!("warning: {name}.png not written ({e}); the SVG is"),
    }
    Ok(())
}

fn write_report(out: &Path, report: &ImpReport) -> Result<()> {
    write_file(
        &out.join("report.json"),
        serde_json::to_string_pretty(report)?,
    )?;
    let groups = report.groups();
    write_chart(out, "accuracy", &plot::accuracy_vs_remaining(&groups))?;
    write_chart(out, "early_stop", &plot::early_stop_vs_remaining(&groups))?;
    write_chart(out, "curves", &plot::training_curves(&report.curves()))?;
    Ok(())
}

/// The first `train` training and `eval` validation/test examples (None = all).
fn run_experiment(
    config: &ImpConfig,
    controls: &[Control],
    data: &Mnist,
    backend: BackendKind,
    args: &ImpArgs,
) -> Result<ImpReport> {
    let device: Device = backend.device().map_err(anyhow::Error::msg)?;
    let mut store = DirStore::new(args.out.join("records"));
    let mut progress = Progress::new(args.quiet);
    progress.line(format!(
        "run {} ({} on {}), records in {}",
        config.run_name(),
        config.model.name(),
        backend.name(),
        store.path(&config.run_name()).display()
    ));
    let started = Instant::now();
    // Keep what is finished even if a later branch fails.
    let mut saved = Ok(());
    let report = lab_core::block_on(lab_core::imp::run_experiment(
        config,
        controls,
        data,
        &device,
        backend.name(),
        &mut store,
        &mut progress,
        &mut |report| {
            if saved.is_ok() {
                saved = write_report(&args.out, report);
            }
        },
    ))?;
    saved?;
    progress.step.finish_and_clear();
    eprintln!(
        "done in {:.1}s: {} (report.json, accuracy/early_stop/curves .svg/.png)",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(report)
}

fn train_ticket<M: Architecture>(
    ticket: &lab_core::ticket::Ticket,
    kind: ModelKind,
    config: &TrainConfig,
    data: &Mnist,
    backend: BackendKind,
    args: &ImpArgs,
) -> Result<()> {
    let device = backend.device().map_err(anyhow::Error::msg)?.autodiff();
    let (model, mask) = ticket.instantiate::<M>(kind, &device)?;
    let prepared = Prepared::new(data, &device);
    let mut progress = Progress::new(args.quiet);
    let started = Instant::now();
    // A θk ticket resumes the schedule at iteration k, as its IMP round did.
    let outcome = lab_core::block_on(lab_core::train::train_from(
        model,
        Some(&mask),
        &prepared,
        config,
        ticket.rewind_iteration(),
        None,
        &mut progress,
    ))?;
    progress.step.finish_and_clear();
    let round = RoundResult::from_training(
        ticket.provenance.round,
        &mask,
        &outcome,
        started.elapsed().as_secs_f64(),
    );
    println!(
        "ticket ({:.2}% of weights, {} rewind, round {} of {}): early stop {}, test acc {:.2}%",
        100.0 * round.weights_remaining,
        ticket.provenance.rewind,
        ticket.provenance.round,
        ticket.provenance.run,
        round.early_stop_iteration,
        100.0 * round.test_accuracy
    );
    let report = ImpReport {
        run: format!("ticket:{}", ticket.provenance.run),
        config: serde_json::json!({ "ticket": ticket.provenance, "train": config }),
        backend: backend.name().into(),
        data_seed: config.data_order_seed(ticket.provenance.seed),
        rounds: vec![round],
        controls: Default::default(),
    };
    write_report(&args.out, &report)
}

fn imp_command(args: &ImpArgs, rounds: usize) -> Result<()> {
    if let Some(path) = &args.ticket {
        let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
        let ticket = lab_core::ticket::Ticket::from_safetensors(&bytes)
            .with_context(|| format!("{}", path.display()))?;
        let kind = ModelKind::parse(&ticket.provenance.model)
            .with_context(|| format!("unknown model {} in the ticket", ticket.provenance.model))?;
        let config = imp_config(args, 1)?;
        let backend = BackendKind::parse(&args.backend)
            .with_context(|| format!("unknown backend {}", args.backend))?;
        // The ticket's own data set; a different --dataset is refused, not silently used.
        let dataset = match ticket.provenance.dataset.as_str() {
            "mnist" => DatasetKind::Mnist,
            "fashion-mnist" => DatasetKind::FashionMnist,
            other => bail!("unknown dataset {other} in the ticket"),
        };
        if args.dataset != "mnist" && config.dataset != dataset {
            bail!(
                "the ticket was found on {}, not {}",
                dataset.name(),
                args.dataset
            );
        }
        let data = load_data(dataset, args.data.clone(), args.download, args.quiet)?;
        let data = data.limited(config.train_subset, config.eval_subset);
        // The ticket's replicate seed orders the data, as in the run that found it.
        let config = config.train.for_replicate(ticket.provenance.seed);
        return if kind.is_mlp() {
            train_ticket::<Mlp>(&ticket, kind, &config, &data, backend, args)
        } else {
            train_ticket::<ConvNet>(&ticket, kind, &config, &data, backend, args)
        };
    }
    let config = imp_config(args, rounds)?;
    let controls = args
        .control
        .iter()
        .map(|c| match c.as_str() {
            "reinit" => Ok(Control::Reinit),
            "random-prune" | "random" => Ok(Control::RandomPrune),
            other => bail!("unknown control {other}: use reinit or random-prune"),
        })
        .collect::<Result<Vec<_>>>()?;
    let backend = BackendKind::parse(&args.backend)
        .with_context(|| format!("unknown backend {}", args.backend))?;
    let data = load_data(config.dataset, args.data.clone(), args.download, args.quiet)?;
    let report = run_experiment(&config, &controls, &data, backend, args)?;
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

fn bench_command(args: &BenchArgs) -> Result<()> {
    let data = load_data(DatasetKind::Mnist, args.data.clone(), false, true)?;
    let backends = if args.backend.is_empty() {
        BackendKind::available()
    } else {
        args.backend
            .iter()
            .map(|b| BackendKind::parse(b).with_context(|| format!("unknown backend {b}")))
            .collect::<Result<Vec<_>>>()?
    };
    println!(
        "LeNet-300-100, Adam, batch 60, masked (IMP round 1 mask), {} timed steps",
        args.steps
    );
    println!(
        "{:<10} {:>12} {:>14} {:>14}",
        "backend", "ms/step", "samples/s", "first step ms"
    );
    for backend in backends {
        match backend.device() {
            Ok(device) => {
                let b = lab_core::bench::training_throughput(&data, &device, args.steps);
                println!(
                    "{:<10} {:>12.3} {:>14.0} {:>14.1}",
                    backend.name(),
                    b.ms_per_step,
                    b.samples_per_second,
                    b.first_step_ms
                );
            }
            Err(e) => println!("{:<10} unavailable: {e}", backend.name()),
        }
    }
    Ok(())
}

fn reproduce_command(args: &ReproduceArgs) -> Result<()> {
    use lab_core::reproduce::{
        densities, lth_lenet300, markdown_table, reproduce, rounds_for_levels,
    };
    if args.protocol != "lth-lenet300" {
        bail!(
            "unknown protocol {}: available: lth-lenet300",
            args.protocol
        );
    }
    let config = lth_lenet300(args.budget, args.rounds).with_checkpoint_every(1000);
    config.validate().map_err(anyhow::Error::msg)?;
    let backend = BackendKind::parse(&args.backend)
        .with_context(|| format!("unknown backend {}", args.backend))?;
    let device = backend.device().map_err(anyhow::Error::msg)?;
    let data = load_data(config.dataset, args.data.clone(), args.download, args.quiet)?;
    let prepared = Prepared::new(&data, &device);
    let control_rounds = rounds_for_levels(&densities::<Mlp>(&config, &device), &args.levels);
    let seeds: Vec<u64> = (0..args.seeds).collect();
    let mut store = DirStore::new(args.out.join("records"));
    let mut progress = Progress::new(args.quiet);
    progress.line(format!(
        "lth-lenet300: budget {} iterations, seeds {seeds:?}, {} rounds, controls at rounds {control_rounds:?}",
        args.budget, args.rounds
    ));
    let started = Instant::now();
    let result = lab_core::block_on(reproduce::<Mlp>(
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
    progress.step.finish_and_clear();
    write_file(
        &args.out.join("reproduction.json"),
        serde_json::to_string_pretty(&result)?,
    )?;
    let table = markdown_table(&result);
    write_file(&args.out.join("table.md"), &table)?;
    let groups: Vec<(String, Vec<Vec<RoundResult>>)> = lab_core::reproduce::group_order(&result)
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Imp(args) => imp_command(args, args.rounds),
        Command::Train(args) => imp_command(args, 1),
        Command::Bench(args) => bench_command(args),
        Command::Reproduce(args) => reproduce_command(args),
        Command::Pai(args) => pai_command(args),
    }
}
