//! Iterative magnitude pruning: rounds of train → prune → rewind, with late rewinding,
//! fine-tuning, and the random-reinitialisation and random-pruning controls.
//!
//! Records (open_lth's layout, in a [`RunStore`]): `imp-<hash>/` holds `config.json`,
//! `rewind.safetensors` (θk, for late rewinding), and per round `round-NN/mask.json` (the
//! mask trained in that round), `ticket.safetensors`, and last `result.json`. A round whose
//! `result.json` exists is finished and is skipped by a rerun; a killed run resumes at the
//! first unfinished round. Controls live in `imp-<hash>/control-<name>/round-NN/`.

use burn::config::Config;
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use web_time::Instant;

use crate::base::data::{DatasetKind, Mnist};
use crate::base::error::{ConfigError, DeviceError};
use crate::base::keys::RunKeys;
use crate::base::mask::Mask;
use crate::base::mask::masked_weights;
use crate::base::model::{Architecture, ModelKind, Net, init_model, init_model_stream};
use crate::base::naming::run_name;
use crate::base::params::{Weights, load_weights, read_weights};
use crate::base::store::{RunStore, StoreError, read_json, write_json};
use crate::base::ticket::read_ticket;
use crate::base::ticket::{Provenance, Ticket};
use crate::pruning::granularity::Granularity;
use crate::pruning::prune;
use crate::pruning::prune::{PruneConfig, PruneScope};
use crate::training::checkpoint::Checkpointing;
use crate::training::curve::EvalPoint;
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::observer::RunObserver;
use crate::training::result::RoundResult;
use crate::training::train::{Prepared, Schedule, TrainConfig, TrainError, train_scheduled};

/// What surviving weights are reset to after each pruning round.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Rewind {
    /// θ0, the original initialisation (Frankle & Carbin 2019).
    #[default]
    Init,
    /// θk after k training iterations ("late rewinding", Frankle et al. 2020).
    Iteration(usize),
    /// θk with k a fraction of the training iterations.
    Fraction(f64),
    /// No rewinding: keep training the pruned, trained weights (the fine-tuning baseline).
    FineTune,
}

impl Rewind {
    /// The rewind iteration for a training budget, or `None` for fine-tuning.
    pub fn iteration(self, iterations: usize) -> Option<usize> {
        match self {
            Rewind::Init => Some(0),
            Rewind::Iteration(k) => Some(k),
            Rewind::Fraction(f) => Some((f * iterations as f64).round() as usize),
            Rewind::FineTune => None,
        }
    }

    pub fn label(self, iterations: usize) -> String {
        match self.iteration(iterations) {
            Some(0) => "init".into(),
            Some(k) => format!("iteration-{k}"),
            None => "fine-tune".into(),
        }
    }
}

/// The controls of the LTH paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Control {
    /// Same mask, fresh weights from another seed.
    Reinit,
    /// A random mask with the ticket's per-layer counts, on the ticket's rewind weights.
    RandomPrune,
}

impl Control {
    pub const ALL: [Control; 2] = [Control::Reinit, Control::RandomPrune];

    pub fn name(self) -> &'static str {
        match self {
            Control::Reinit => "reinit",
            Control::RandomPrune => "random-prune",
        }
    }

    /// The random stream of the control's own draw (fresh weights or random mask) in a
    /// round, under the replicate's seed: hashed from (seed, purpose, round), so streams of
    /// different seeds, rounds and controls never coincide.
    pub fn stream(self, round: usize) -> String {
        format!("control/{}/round-{round:02}", self.name())
    }
}

/// An IMP experiment. Defaults: the LTH paper's LeNet-300-100 protocol.
#[derive(Config, Debug, PartialEq)]
pub struct ImpConfig {
    #[config(default = "ModelKind::Lenet300")]
    pub model: ModelKind,
    #[config(default = "DatasetKind::Mnist")]
    pub dataset: DatasetKind,
    #[config(default = "TrainConfig::new()")]
    pub train: TrainConfig,
    #[config(default = "PruneConfig::default()")]
    pub prune: PruneConfig,
    /// Training runs, the first dense (round 0 = 100% of weights).
    #[config(default = 20)]
    pub rounds: usize,
    #[config(default = "Rewind::Init")]
    pub rewind: Rewind,
    /// Seed of θ0.
    #[config(default = 0)]
    pub seed: u64,
    /// Use only the first N training examples (None = all 55,000).
    #[config(default = "None")]
    pub train_subset: Option<usize>,
    /// Evaluate on a fixed class-stratified random N of the validation and of the test
    /// examples (None = all).
    #[config(default = "None")]
    pub eval_subset: Option<usize>,
    /// Checkpoint each training every this many iterations (0 = never), so a killed run
    /// resumes inside its round. Not part of the run's identity.
    #[config(default = 0)]
    pub checkpoint_every: usize,
}

impl ImpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train.validate()?;
        self.prune.validate()?;
        if self.rounds == 0 {
            return Err(ConfigError::new("rounds must be at least 1"));
        }
        ConfigError::check_subsets(self.train_subset, self.eval_subset)?;
        if matches!(
            self.prune.granularity,
            crate::pruning::granularity::Granularity::NOfM { .. }
        ) && self.rounds > 2
        {
            return Err(ConfigError::new(
                "N:M sparsity reaches its pattern in one pruning: use 2 rounds (dense, then N:M)",
            ));
        }
        match self.rewind {
            Rewind::Fraction(f) if !(0.0..=1.0).contains(&f) => {
                return Err(ConfigError(format!(
                    "rewind fraction must be in [0, 1], got {f}"
                )));
            }
            Rewind::Iteration(k) if k > self.train.iterations => {
                return Err(ConfigError(format!(
                    "rewind iteration {k} is past the training budget of {} iterations",
                    self.train.iterations
                )));
            }
            _ => {}
        }
        Ok(())
    }

    /// The pruning rules a round applies: the configured ones, then (per-layer pruning,
    /// `model_rates` on) the model's suggested rates ([`crate::base::model::ModelSpec::prune_rates`]).
    pub fn prune_rules(&self) -> PruneConfig {
        if self.prune.model_rates && self.prune.scope == PruneScope::PerLayer {
            self.prune
                .with_fallback_rules(self.model.spec().prune_rates)
        } else {
            self.prune.clone()
        }
    }

    /// The run's directory name: a hash of the non-default hyper-parameters. The number of
    /// rounds is left out, so asking for more rounds later extends the same run.
    pub fn run_name(&self) -> String {
        let mut identity = self.clone();
        identity.rounds = ImpConfig::new().rounds;
        identity.checkpoint_every = ImpConfig::new().checkpoint_every;
        // The rules actually applied, the model's included: a change of a model's suggested
        // rates is a different run.
        identity.prune = self.prune_rules();
        run_name("imp", &identity, &ImpConfig::new())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImpError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("round {round}: {source}")]
    Train {
        round: usize,
        #[source]
        source: TrainError,
    },
    #[error("records: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Structured(#[from] crate::pruning::units::StructuredError),
    #[error("control needs the main run's round {0}: run `imp` first")]
    MissingMainRound(usize),
}

/// A round's wall time: this process's, plus what earlier processes spent before the
/// checkpoint the training resumed from.
fn wall_seconds<M>(started: Instant, outcome: &crate::training::train::TrainOutcome<M>) -> f64 {
    started.elapsed().as_secs_f64() + outcome.resumed_wall_seconds
}

fn corrupt(key: &str, reason: impl ToString) -> StoreError {
    StoreError::Corrupt {
        key: key.into(),
        reason: reason.to_string(),
    }
}

fn missing(key: String) -> ImpError {
    ImpError::Store(StoreError::Missing { key })
}

fn weights_blob(weights: &Weights, mask: &Mask, provenance: Provenance) -> Vec<u8> {
    Ticket {
        mask: mask.clone(),
        weights: weights.clone(),
        provenance,
    }
    .to_safetensors()
}

fn load_mask(store: &dyn RunStore, key: &str) -> Result<Option<Mask>, ImpError> {
    store
        .read(key)
        .map(|bytes| {
            let text = String::from_utf8(bytes).map_err(|e| corrupt(key, e))?;
            Ok(Mask::from_json(&text).map_err(|e| corrupt(key, e))?)
        })
        .transpose()
}

/// Where a record's weights come from: this run, a round, its rewinding point.
fn provenance(config: &ImpConfig, run: &str, round: usize, mask: &Mask) -> Provenance {
    Provenance {
        model: config.model.name().into(),
        dataset: config.dataset.name().into(),
        round,
        rewind: config.rewind.label(config.train.iterations),
        seed: config.seed,
        run: run.into(),
        weights_remaining: mask.density(),
        stream: String::new(),
    }
}

/// Runs (or resumes) the main IMP lineage; returns one result per round.
pub async fn run_imp<M: Architecture>(
    config: &ImpConfig,
    data: &Prepared,
    device: &Device,
    store: &mut dyn RunStore,
    observer: &mut dyn RunObserver,
) -> Result<Vec<RoundResult>, ImpError> {
    config.validate()?;
    let keys = RunKeys {
        run: config.run_name(),
    };
    write_json(store, &keys.config(), config)?;
    let device = device.clone().autodiff();
    let theta0: M = init_model(config.model, config.seed, &device);
    let init_weights = read_weights(&theta0).await?;
    let dense = Mask::dense_for(&theta0);
    config.prune_rules().check_rules(&dense)?;
    let stages = theta0.stages();
    if matches!(config.prune.granularity, Granularity::Units(_)) && stages.is_none() {
        return Err(crate::pruning::units::StructuredError::NotSequential.into());
    }
    let iterations = config.train.iterations;
    let rewind_at = config.rewind.iteration(iterations);
    let provenance = |round: usize, mask: &Mask| provenance(config, &keys.run, round, mask);
    let train = config.train.for_replicate(config.seed);

    let mut rewind_weights: Option<Weights> = match rewind_at {
        Some(0) => Some(init_weights.clone()),
        Some(_) => read_ticket(store, &keys.rewind())?.map(|t| t.weights),
        None => None,
    };
    let mut results = Vec::with_capacity(config.rounds);
    for round in 0..config.rounds {
        if let Some(done) = read_json::<RoundResult>(store, &keys.result(None, round)) {
            let done = done?;
            observer.on_round(&done, "ticket");
            results.push(done);
            continue;
        }
        let mask = if round == 0 {
            dense.clone()
        } else {
            load_mask(store, &keys.mask(round))?.ok_or_else(|| missing(keys.mask(round)))?
        };
        let start = if round == 0 {
            init_weights.clone()
        } else if let Some(rewind) = &rewind_weights {
            rewind.clone()
        } else {
            read_ticket(store, &keys.trained(round - 1))?
                .ok_or_else(|| missing(keys.trained(round - 1)))?
                .weights
        };
        observer.on_round_start(round, mask.density(), "ticket");
        let started = Instant::now();
        let model = load_weights(theta0.clone(), &start);
        // Round 0 trains from θ0 (snapshotting θk); rewound rounds resume the schedule at k;
        // fine-tuning rounds train the full budget again from the trained weights.
        let (first_iteration, snapshot_at) = match (round, rewind_at) {
            (0, k) => (0, k.filter(|&k| k > 0)),
            (_, Some(k)) => (k, None),
            (_, None) => (0, None),
        };
        let schedule = Schedule {
            start: first_iteration,
            snapshot_at,
            checkpoint: Some(Checkpointing {
                store: &mut *store,
                key: keys.checkpoint(None, round),
                every: config.checkpoint_every,
            }),
            policy: None,
        };
        let outcome = train_scheduled(model, Some(&mask), data, &train, schedule, observer)
            .await
            .map_err(|source| ImpError::Train { round, source })?;
        if let Some(snapshot) = &outcome.snapshot {
            let weights = read_weights(snapshot).await?;
            store.write(
                &keys.rewind(),
                &weights_blob(&weights, &dense, provenance(0, &dense)),
            )?;
            rewind_weights = Some(weights);
        }
        let trained = read_weights(&outcome.model).await?;
        observer.on_trained(round, &mask, &trained);
        if let Some(rewind) = &rewind_weights {
            let ticket = weights_blob(
                &masked_weights(rewind, &mask),
                &mask,
                provenance(round, &mask),
            );
            store.write(&keys.ticket(round), &ticket)?;
        }
        // Kept for every round (fine-tuning continues from it; weight histograms read it).
        let blob = weights_blob(&trained, &mask, provenance(round, &mask));
        store.write(&keys.trained(round), &blob)?;
        // Always written, so a later run with more rounds continues from here.
        let next = crate::pruning::round::magnitude_round(
            &mask,
            &trained,
            &config.prune_rules(),
            stages.as_deref(),
        )?;
        debug_assert!(next.is_subset_of(&mask));
        store.write(&keys.mask(round + 1), next.to_json().as_bytes())?;
        let result =
            RoundResult::from_training(round, &mask, &outcome, wall_seconds(started, &outcome));
        // Written last: its presence marks the round finished.
        write_json(store, &keys.result(None, round), &result)?;
        store.remove(&keys.checkpoint(None, round))?;
        observer.on_round(&result, "ticket");
        results.push(result);
    }
    Ok(results)
}

/// Runs (or resumes) a control branch on the masks of a finished main run.
///
/// `only_rounds` restricts the control to some rounds (e.g. chosen sparsity levels).
pub async fn run_control<M: Architecture>(
    config: &ImpConfig,
    control: Control,
    only_rounds: Option<&[usize]>,
    data: &Prepared,
    device: &Device,
    store: &mut dyn RunStore,
    observer: &mut dyn RunObserver,
) -> Result<Vec<RoundResult>, ImpError> {
    config.validate()?;
    let keys = RunKeys {
        run: config.run_name(),
    };
    let device = device.clone().autodiff();
    let theta0: M = init_model(config.model, config.seed, &device);
    let dense = Mask::dense_for(&theta0);
    let train = config.train.for_replicate(config.seed);
    let branch = Some(control.name());
    let mut results = Vec::with_capacity(config.rounds);
    for round in 0..config.rounds {
        if only_rounds.is_some_and(|rounds| !rounds.contains(&round)) {
            continue;
        }
        if let Some(done) = read_json::<RoundResult>(store, &keys.result(branch, round)) {
            let done = done?;
            observer.on_round(&done, control.name());
            results.push(done);
            continue;
        }
        if !store.exists(&keys.result(None, round)) {
            return Err(ImpError::MissingMainRound(round));
        }
        if control == Control::RandomPrune && round == 0 {
            // A random mask at 100% density is the dense mask: the run is the ticket's round 0.
            let mut main = read_json::<RoundResult>(store, &keys.result(None, 0))
                .ok_or(ImpError::MissingMainRound(0))??;
            // Copied, not trained: no time was spent on it.
            main.time = Default::default();
            main.wall_seconds = 0.0;
            write_json(store, &keys.result(branch, round), &main)?;
            observer.on_round(&main, control.name());
            results.push(main);
            continue;
        }
        let ticket_mask = if round == 0 {
            dense.clone()
        } else {
            load_mask(store, &keys.mask(round))?.ok_or(ImpError::MissingMainRound(round))?
        };
        // Both controls train the ticket's schedule: from the rewind iteration k to the end
        // (open_lth's branches, start_at_step_zero = false). Reinit starts from fresh weights,
        // random pruning from the ticket's rewind weights (θ0, or the recorded θk).
        let stream = control.stream(round);
        let rewind_at = config.rewind.iteration(config.train.iterations);
        let first = rewind_at.unwrap_or(0);
        let (mask, start, first_iteration) = match control {
            Control::Reinit => {
                let fresh: M = init_model_stream(config.model, config.seed, &stream, &device);
                (ticket_mask, read_weights(&fresh).await?, first)
            }
            Control::RandomPrune => {
                let rewind = match (rewind_at, read_ticket(store, &keys.rewind())?) {
                    (Some(k), Some(t)) if k > 0 => t.weights,
                    // θk is written by round 0; without it the control cannot be what it says.
                    (Some(k), None) if k > 0 => return Err(missing(keys.rewind())),
                    _ => read_weights(&theta0).await?,
                };
                // Random units for a structured ticket, random weights otherwise.
                let random = match (config.prune.granularity, theta0.stages()) {
                    (Granularity::NOfM { n, m }, _) => {
                        prune::random_n_of_m(&ticket_mask, config.seed, &stream, n, m)
                    }
                    (Granularity::Units(_), Some(stages)) => {
                        crate::pruning::units::random_units_like(
                            &stages,
                            &ticket_mask,
                            config.seed,
                            &stream,
                        )?
                    }
                    _ => prune::random_like(&ticket_mask, config.seed, &stream),
                };
                (random, rewind, first)
            }
        };
        let start = masked_weights(&start, &mask);
        let mut provenance = provenance(config, &keys.run, round, &mask);
        provenance.stream = stream;
        store.write(
            &keys.control_start(control.name(), round),
            &weights_blob(&start, &mask, provenance),
        )?;
        observer.on_round_start(round, mask.density(), control.name());
        let started = Instant::now();
        let model = load_weights(theta0.clone(), &start);
        let schedule = Schedule {
            start: first_iteration,
            snapshot_at: None,
            checkpoint: Some(Checkpointing {
                store: &mut *store,
                key: keys.checkpoint(branch, round),
                every: config.checkpoint_every,
            }),
            policy: None,
        };
        let outcome = train_scheduled(model, Some(&mask), data, &train, schedule, observer)
            .await
            .map_err(|source| ImpError::Train { round, source })?;
        let result =
            RoundResult::from_training(round, &mask, &outcome, wall_seconds(started, &outcome));
        write_json(store, &keys.result(branch, round), &result)?;
        store.remove(&keys.checkpoint(branch, round))?;
        observer.on_round(&result, control.name());
        results.push(result);
    }
    Ok(results)
}

/// Runs (or resumes) IMP and then each control on the model `config` names, on the
/// experiment's data subset; the controls at `control_rounds` only, or at every round.
/// The observer sees the report after every finished branch (`on_report`), so a caller can
/// save what is finished before a later branch fails or is cancelled.
#[allow(clippy::too_many_arguments)]
pub async fn run_experiment(
    config: &ImpConfig,
    controls: &[Control],
    control_rounds: Option<&[usize]>,
    data: &Mnist,
    session: &mut Session<'_>,
) -> Result<ImpReport, ImpError> {
    let backend = session.backend.as_str();
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    config.validate()?;
    crate::base::store::claim_backend(store, &config.run_name(), backend)?;
    let data = data.limited(config.train_subset, config.eval_subset);
    let prepared = Prepared::new(&data, device);
    let mut report = ImpReport {
        run: config.run_name(),
        data_seed: config.train.data_order_seed(config.seed),
        config: serde_json::to_value(config).map_err(|source| StoreError::Json {
            key: "report.json".into(),
            source,
        })?,
        backend: backend.into(),
        rounds: Vec::new(),
        controls: Default::default(),
    };
    report.rounds = run_imp::<Net>(config, &prepared, device, store, observer).await?;
    observer.on_report(&report_json(&report)?);
    for &control in controls {
        let results = run_control::<Net>(
            config,
            control,
            control_rounds,
            &prepared,
            device,
            store,
            observer,
        )
        .await?;
        report.controls.insert(control.name().into(), results);
        observer.on_report(&report_json(&report)?);
    }
    Ok(report)
}

fn report_json(report: &ImpReport) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(report).map_err(|source| StoreError::Json {
        key: "report.json".into(),
        source,
    })
}

/// What `lth imp` writes to `report.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpReport {
    pub run: String,
    pub config: Value,
    pub backend: String,
    /// The seed of the data order every training of this run used.
    #[serde(default)]
    pub data_seed: u64,
    /// The ticket lineage, round by round.
    pub rounds: Vec<RoundResult>,
    /// Control branches by name (`reinit`, `random-prune`), same fields as `rounds`.
    #[serde(default)]
    pub controls: std::collections::BTreeMap<String, Vec<RoundResult>>,
}

impl ImpReport {
    /// The ticket and each control as chart groups (one seed each).
    pub fn groups(&self) -> Vec<(String, Vec<Vec<RoundResult>>)> {
        let mut groups = vec![("ticket".to_string(), vec![self.rounds.clone()])];
        for (name, rounds) in &self.controls {
            groups.push((name.clone(), vec![rounds.clone()]));
        }
        groups
    }

    /// Test accuracy during training, one line per round of the ticket.
    pub fn curves(&self) -> Vec<(String, Vec<EvalPoint>)> {
        self.rounds
            .iter()
            .map(|r| {
                (
                    format!("{:.1}%", 100.0 * r.weights_remaining),
                    r.curve.clone(),
                )
            })
            .collect()
    }
}

/// IMP with its controls, as every face runs it: the lineage `config` names, then each
/// control at `control_rounds` (every round when `None`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpExperiment {
    pub config: ImpConfig,
    #[serde(default)]
    pub controls: Vec<Control>,
    #[serde(default)]
    pub control_rounds: Option<Vec<usize>>,
}

impl Default for ImpExperiment {
    fn default() -> Self {
        Self {
            config: ImpConfig::new(),
            controls: Vec::new(),
            control_rounds: None,
        }
    }
}

impl ImpExperiment {
    /// The lineage alone; add controls with [`ImpExperiment::with_controls`].
    pub fn new(config: ImpConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Each control at every round.
    pub fn with_controls(mut self, controls: &[Control]) -> Self {
        self.controls = controls.to_vec();
        self
    }
}

impl Experiment for ImpExperiment {
    const KIND: &'static str = "imp";
    type Report = ImpReport;
    type Error = ImpError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.config.validate()
    }

    fn run_name(&self) -> String {
        self.config.run_name()
    }

    fn datasets(&self) -> Vec<DatasetKind> {
        vec![self.config.dataset]
    }

    async fn run(&self, data: &Data<'_>, session: &mut Session<'_>) -> Result<ImpReport, ImpError> {
        run_experiment(
            &self.config,
            &self.controls,
            self.control_rounds.as_deref(),
            data.get(self.config.dataset)?,
            session,
        )
        .await
    }
}
