//! Dynamic sparse training and In-Time Over-Parameterization: static sparse, SET, RigL and
//! GMP as mask policies of the one training loop, with ITOP's rate Rs (the share of weights
//! ever active) tracked over training.
//!
//! Records (in a [`RunStore`]): `dst-<hash>/` holds `config.json`, `initial-mask.json`,
//! `checkpoint.bin` while training, then `mask.json` (the final mask), `explored.json` (every
//! weight ever active), `trained.safetensors`, and last `result.json`, whose presence marks
//! the run finished (a rerun reads it back).

pub mod density;
pub mod policy;

use burn::config::Config;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::base::chart::{Chart, Series};
use crate::base::data::DatasetKind;
use crate::base::error::{ConfigError, DeviceError};
use crate::base::keys::DstKeys;
use crate::base::mask::Mask;
use crate::base::mask::masked_weights;
use crate::base::model::{Architecture, ModelKind, Net, init_model};
use crate::base::naming::run_name;
use crate::base::params::read_weights;
use crate::base::store::{StoreError, read_json, write_json};
use crate::base::ticket::{Provenance, Ticket};
use crate::training::checkpoint::Checkpointing;
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::policy::{MaskPolicy, MaskUpdate};
use crate::training::result::RoundResult;
use crate::training::train::{Prepared, Schedule, TrainConfig, TrainError, train_scheduled};

pub use density::{Distribution, layer_densities, random_mask};
pub use policy::{DstConfig, DstPolicy, GrowInit, Method};

/// A sparse-training run: a model, its data, training and sparse method.
#[derive(Config, Debug, PartialEq)]
pub struct DstExperiment {
    #[config(default = "ModelKind::Lenet300")]
    pub model: ModelKind,
    #[config(default = "DatasetKind::Mnist")]
    pub dataset: DatasetKind,
    #[config(default = "TrainConfig::new()")]
    pub train: TrainConfig,
    #[config(default = "DstConfig::new()")]
    pub sparse: DstConfig,
    /// Seed of θ0, of the initial random mask, of SET's growth and (unless the training
    /// config names one) of the data order.
    #[config(default = 0)]
    pub seed: u64,
    /// The md5 of a given initial mask (from an IMP or PaI ticket) instead of a random one
    /// from the density distribution. Static, SET and RigL only.
    #[config(default = "None")]
    pub initial_mask: Option<String>,
    #[config(default = "None")]
    pub train_subset: Option<usize>,
    #[config(default = "None")]
    pub eval_subset: Option<usize>,
    /// Checkpoint every this many iterations (0 = never). Not part of the run's identity.
    #[config(default = 0)]
    pub checkpoint_every: usize,
}

impl DstExperiment {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train.validate()?;
        self.sparse.validate()?;
        ConfigError::check_subsets(self.train_subset, self.eval_subset)?;
        if self.initial_mask.is_some() && self.sparse.method == Method::Gmp {
            return Err(ConfigError::new(
                "GMP starts dense: it takes no initial mask",
            ));
        }
        Ok(())
    }

    pub fn run_name(&self) -> String {
        let mut identity = self.clone();
        identity.checkpoint_every = 0;
        run_name("dst", &identity, &DstExperiment::new())
    }

    /// A short label: method and target density, e.g. `rigl 5%`.
    pub fn label(&self) -> String {
        format!(
            "{} {}%",
            self.sparse.method.name(),
            percent(100.0 * self.sparse.density)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DstError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("training: {0}")]
    Train(#[from] TrainError),
    #[error("records: {0}")]
    Store(#[from] StoreError),
}

/// What one sparse-training run reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DstResult {
    pub run: String,
    pub method: String,
    /// The target density.
    pub density: f64,
    pub distribution: String,
    pub update_every: usize,
    pub drop_fraction: f64,
    pub batch_size: usize,
    /// The experiment's seed (θ0, initial mask, growth, data order).
    #[serde(default)]
    pub seed: u64,
    pub backend: String,
    /// Density of the mask training started from (1 for GMP).
    pub initial_density: f64,
    /// The ITOP rate Rs at the end: the share of the prunable weights ever active.
    pub explored: f64,
    /// Mask changes, each with Rs after it.
    pub updates: Vec<MaskUpdate>,
    /// Theoretical training FLOPs relative to dense training of the same steps, counting
    /// prunable weights (exact for MLPs; conv weights differ in cost): 3 weight-passes per
    /// step at the current density, and at RigL's updates a dense weight gradient instead of
    /// one sparse pass. RigL's paper has (3 f_S ΔT + 2 f_S + f_D)/(ΔT + 1) because its update
    /// iteration does not train; here it does, so a cycle costs 3 f_S ΔT − f_S + f_D.
    pub relative_training_flops: f64,
    /// The run's training at its final mask (curve, early stop, per-layer density).
    pub training: RoundResult,
}

/// The md5 that names a given initial mask in a [`DstExperiment`].
pub fn mask_digest(mask: &Mask) -> String {
    crate::base::data::md5_hex(mask.to_json().as_bytes())
}

/// Training FLOPs relative to dense (see [`DstResult::relative_training_flops`]).
pub fn relative_training_flops(
    initial: &Mask,
    updates: &[MaskUpdate],
    start: usize,
    iterations: usize,
    dense_gradient_at_updates: bool,
) -> f64 {
    let steps = iterations.saturating_sub(start);
    if steps == 0 {
        return 0.0;
    }
    let mut density = initial.density();
    let mut cost = 0.0;
    let mut at = start;
    for update in updates {
        // Steps up to and including the update's own train at the old density.
        let n = update.iteration.saturating_sub(at);
        cost += 3.0 * density * n as f64;
        if dense_gradient_at_updates {
            cost += 1.0 - density;
        }
        density = update.density;
        at = update.iteration;
    }
    cost += 3.0 * density * iterations.saturating_sub(at) as f64;
    cost / (3.0 * steps as f64)
}

/// The first iteration from which the mask has its final density: 0 when the density never
/// changes (static, SET, RigL), GMP's last pruning otherwise.
pub fn settled_iteration(initial_density: f64, updates: &[MaskUpdate]) -> usize {
    let Some(last) = updates.last() else {
        return 0;
    };
    if last.density == initial_density && updates.iter().all(|u| u.density == initial_density) {
        return 0;
    }
    updates
        .iter()
        .rev()
        .take_while(|u| u.density == last.density)
        .last()
        .map_or(0, |u| u.iteration)
}

/// Runs (or reads back from `store`) one sparse-training run. `given_mask` is the initial
/// mask the experiment's `initial_mask` digest names.
pub async fn run_dst<M: Architecture>(
    experiment: &DstExperiment,
    given_mask: Option<&Mask>,
    data: &Prepared,
    session: &mut Session<'_>,
) -> Result<DstResult, DstError> {
    let backend = session.backend.as_str();
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    experiment.validate()?;
    let keys = DstKeys {
        run: experiment.run_name(),
    };
    crate::base::store::claim_backend(store, &keys.run, backend)?;
    if let Some(done) = read_json::<DstResult>(store, &keys.result()) {
        // The run's name is its config's hash: the seed of a record without one is this.
        return Ok(DstResult {
            seed: experiment.seed,
            ..done?
        });
    }
    write_json(store, &keys.config(), experiment)?;
    let device = device.clone().autodiff();
    let model: M = init_model(experiment.model, experiment.seed, &device);
    let dense = Mask::dense_for(&model);
    let sparse = &experiment.sparse;
    let densities = sparse.densities(&dense)?;
    let initial = match (&experiment.initial_mask, given_mask) {
        (Some(digest), Some(mask)) => {
            if mask_digest(mask) != *digest {
                return Err(
                    ConfigError::new("the given mask is not the one the config names").into(),
                );
            }
            if mask.layers.len() != dense.layers.len()
                || mask
                    .layers
                    .iter()
                    .zip(&dense.layers)
                    .any(|(a, b)| a.name != b.name || a.shape != b.shape)
            {
                return Err(ConfigError(format!(
                    "the given mask does not fit {}",
                    experiment.model.name()
                ))
                .into());
            }
            mask.clone()
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(ConfigError::new(
                "a given initial mask needs its digest in the config (DstExperiment::initial_mask)",
            )
            .into());
        }
        (None, None) if sparse.method == Method::Gmp => dense.clone(),
        (None, None) => random_mask(&dense, &densities, experiment.seed),
    };
    store.write(&keys.initial_mask(), initial.to_json().as_bytes())?;
    let policy = DstPolicy {
        config: sparse.clone(),
        densities,
        seed: experiment.seed,
        initial_weights: match sparse.grow_init {
            policy::GrowInit::Zero => None,
            policy::GrowInit::Initial => Some(read_weights(&model).await?),
        },
    };
    let started = Instant::now();
    let train = experiment.train.for_replicate(experiment.seed);
    observer.on_round_start(0, initial.density(), &experiment.label());
    let schedule = Schedule {
        start: 0,
        snapshot_at: None,
        checkpoint: Some(Checkpointing {
            store: &mut *store,
            key: keys.checkpoint(),
            every: experiment.checkpoint_every,
        }),
        policy: Some(&policy),
    };
    let mut outcome =
        train_scheduled(model, Some(&initial), data, &train, schedule, observer).await?;
    // Early stop picks among the networks at the final density: GMP's minimum validation
    // loss may fall while it is still denser than its target.
    let settled = settled_iteration(initial.density(), &outcome.mask_updates);
    if let Some(best) = outcome
        .curve
        .iter()
        .filter(|p| p.iteration >= settled)
        .reduce(|best, p| {
            if p.validation_loss < best.validation_loss {
                p
            } else {
                best
            }
        })
    {
        outcome.early_stop = *best;
    }
    let final_mask = outcome.final_mask.clone().unwrap_or(initial.clone());
    let explored = outcome.explored.clone().unwrap_or(initial.clone());
    let trained = read_weights(&outcome.model).await?;
    observer.on_trained(0, &final_mask, &trained);
    store.write(&keys.mask(), final_mask.to_json().as_bytes())?;
    store.write(&keys.explored(), explored.to_json().as_bytes())?;
    let ticket = Ticket {
        mask: final_mask.clone(),
        weights: masked_weights(&trained, &final_mask),
        provenance: Provenance {
            model: experiment.model.name().into(),
            dataset: experiment.dataset.name().into(),
            round: 0,
            rewind: "trained".into(),
            seed: experiment.seed,
            run: keys.run.clone(),
            weights_remaining: final_mask.density(),
            stream: experiment.sparse.method.name().into(),
        },
    };
    store.write(&keys.trained(), &ticket.to_safetensors())?;
    let wall = started.elapsed().as_secs_f64() + outcome.resumed_wall_seconds;
    let result = DstResult {
        run: keys.run.clone(),
        method: sparse.method.name().into(),
        density: sparse.density,
        distribution: sparse.distribution.name().into(),
        update_every: sparse.update_every,
        drop_fraction: sparse.drop_fraction,
        batch_size: experiment.train.batch_size,
        seed: experiment.seed,
        backend: backend.into(),
        initial_density: initial.density(),
        explored: explored.density(),
        relative_training_flops: relative_training_flops(
            &initial,
            &outcome.mask_updates,
            0,
            experiment.train.iterations,
            policy.needs_gradient(),
        ),
        updates: outcome.mask_updates.clone(),
        training: RoundResult::from_training(0, &final_mask, &outcome, wall),
    };
    write_json(store, &keys.result(), &result)?;
    store.remove(&keys.checkpoint())?;
    observer.on_round(&result.training, &experiment.label());
    Ok(result)
}

/// A sparse-training run as every face runs it: the experiment, and the initial mask its
/// `initial_mask` digest names (from an IMP or PaI ticket), if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DstRun {
    pub experiment: DstExperiment,
    #[serde(default)]
    pub given_mask: Option<Mask>,
}

impl Default for DstRun {
    fn default() -> Self {
        Self {
            experiment: DstExperiment::new(),
            given_mask: None,
        }
    }
}

impl DstRun {
    /// A run from the random initial mask of its density distribution.
    pub fn new(experiment: DstExperiment) -> Self {
        Self {
            experiment,
            given_mask: None,
        }
    }
}

impl Experiment for DstRun {
    const KIND: &'static str = "dst";
    type Report = DstResult;
    type Error = DstError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.experiment.validate()
    }

    fn run_name(&self) -> String {
        self.experiment.run_name()
    }

    fn datasets(&self) -> Vec<DatasetKind> {
        vec![self.experiment.dataset]
    }

    async fn run(&self, data: &Data<'_>, session: &mut Session<'_>) -> Result<DstResult, DstError> {
        let experiment = &self.experiment;
        let subsets = (experiment.train_subset, experiment.eval_subset);
        let prepared = data.prepared(experiment.dataset, subsets, &session.device)?;
        run_dst::<Net>(experiment, self.given_mask.as_ref(), &prepared, session).await
    }
}

/// Rs over training, one line per setting (the first seed of each; seeds differ little in
/// Rs), at most about 50 points a line.
pub fn explored_chart(results: &[DstResult]) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    for r in results {
        let label = dst_label(r);
        if series.iter().any(|s| s.label == label) {
            continue;
        }
        let end = r.training.curve.last().map_or(0, |p| p.iteration);
        let mut chart = progress_chart(&r.training.curve, r.initial_density, &r.updates);
        let mut points = chart.series.remove(1).points;
        let stride = points.len().div_ceil(50).max(1);
        let last = *points.last().expect("a start point");
        points = points.into_iter().step_by(stride).collect();
        if points.last() != Some(&last) {
            points.push(last);
        }
        debug_assert!(points.last().is_some_and(|p| p.0 == end as f64 || end == 0));
        series.push(Series { label, points });
    }
    Chart {
        title: "ITOP rate Rs (share of weights ever active)".into(),
        x_label: "iteration".into(),
        y_label: "Rs (%)".into(),
        log_x: false,
        log_y: false,
        legend_top: false,
        series,
    }
}

/// A percentage without trailing zeros: 10, 5, 2.5, 0.25.
fn percent(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One run as it trains: test accuracy and Rs (both in %) against the iteration, from its
/// curve and mask updates so far (the page draws it live).
pub fn progress_chart(
    curve: &[crate::training::curve::EvalPoint],
    initial_density: f64,
    updates: &[MaskUpdate],
) -> Chart {
    let accuracy = curve
        .iter()
        .map(|p| {
            let y = 100.0 * p.test_accuracy;
            (p.iteration as f64, y, y, y)
        })
        .collect();
    let first = 100.0 * initial_density;
    let mut explored = vec![(0.0, first, first, first)];
    explored.extend(updates.iter().map(|u| {
        let y = 100.0 * u.explored;
        (u.iteration as f64, y, y, y)
    }));
    if let (Some(last), Some(point)) = (explored.last().copied(), curve.last()) {
        explored.push((point.iteration as f64, last.1, last.1, last.1));
    }
    Chart {
        title: "Test accuracy and ITOP rate Rs".into(),
        x_label: "iteration".into(),
        y_label: "%".into(),
        log_x: false,
        log_y: false,
        legend_top: false,
        series: vec![
            Series {
                label: "test accuracy".into(),
                points: accuracy,
            },
            Series {
                label: "Rs (weights ever active)".into(),
                points: explored,
            },
        ],
    }
}

/// A run's label in charts and tables.
pub fn dst_label(result: &DstResult) -> String {
    format!(
        "{} {}% ΔT={} b={}",
        result.method,
        percent(100.0 * result.density),
        result.update_every,
        result.batch_size
    )
}

/// Another way to a sparse network, for the comparison charts: points of (density, test
/// accuracy at early stop, training FLOPs relative to one dense training of the same steps).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub label: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// Test accuracy at early stop vs density, one line per method (mean, min and max over
/// seeds) and per comparison.
pub fn accuracy_chart(results: &[DstResult], comparisons: &[Comparison]) -> Chart {
    by_method(
        results,
        comparisons,
        "Test accuracy at early stop",
        "test accuracy (%)",
        |r| 100.0 * r.training.test_accuracy,
        |p| 100.0 * p.1,
    )
}

/// Relative training FLOPs vs density, one line per method and per comparison.
pub fn cost_chart(results: &[DstResult], comparisons: &[Comparison]) -> Chart {
    let mut chart = by_method(
        results,
        comparisons,
        "Training FLOPs relative to dense",
        "training FLOPs (× one dense training, log)",
        |r| r.relative_training_flops,
        |p| p.2,
    );
    chart.log_y = true;
    chart
}

fn by_method(
    results: &[DstResult],
    comparisons: &[Comparison],
    title: &str,
    y_label: &str,
    y: impl Fn(&DstResult) -> f64,
    comparison_y: impl Fn(&(f64, f64, f64)) -> f64,
) -> Chart {
    // In the order they first appear (static, set, rigl, gmp for a default sweep).
    let mut methods: Vec<&str> = Vec::new();
    for r in results {
        if !methods.contains(&r.method.as_str()) {
            methods.push(&r.method);
        }
    }
    Chart {
        title: title.into(),
        x_label: "% of weights active (log)".into(),
        y_label: y_label.into(),
        log_x: true,
        log_y: false,
        legend_top: false,
        series: methods
            .iter()
            .map(|&method| {
                // Mean, min and max over the runs (seeds) of each density.
                let mut densities: Vec<f64> = results
                    .iter()
                    .filter(|r| r.method == method)
                    .map(|r| r.density)
                    .collect();
                densities.sort_by(f64::total_cmp);
                densities.dedup();
                let points = densities
                    .iter()
                    .map(|&density| {
                        let values: Vec<f64> = results
                            .iter()
                            .filter(|r| r.method == method && r.density == density)
                            .map(&y)
                            .collect();
                        let mean = values.iter().sum::<f64>() / values.len() as f64;
                        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
                        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        (100.0 * density, mean, min, max)
                    })
                    .collect();
                Series {
                    label: method.into(),
                    points,
                }
            })
            .chain(comparisons.iter().map(|c| {
                let mut points: Vec<(f64, f64, f64, f64)> = c
                    .points
                    .iter()
                    .map(|p| {
                        let value = comparison_y(p);
                        (100.0 * p.0, value, value, value)
                    })
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    label: c.label.clone(),
                    points,
                }
            }))
            .collect(),
    }
}

/// Test accuracy at early stop vs the final Rs, one line per method and density (ITOP's
/// figure): each point is one setting of a sweep (ΔT, batch size), at the mean over its
/// seeds, with the seeds' min and max accuracy as the bar.
pub fn accuracy_vs_explored_chart(results: &[DstResult]) -> Chart {
    /// A line's label, a setting (ΔT, batch size), and (Rs, accuracy) of each seed.
    type Setting = (String, (usize, usize), Vec<(f64, f64)>);
    let mut settings: Vec<Setting> = Vec::new();
    for r in results {
        let label = format!("{} {}%", r.method, percent(100.0 * r.density));
        let setting = (r.update_every, r.batch_size);
        let point = (100.0 * r.explored, 100.0 * r.training.test_accuracy);
        match settings
            .iter_mut()
            .find(|(l, s, _)| *l == label && *s == setting)
        {
            Some((_, _, points)) => points.push(point),
            None => settings.push((label, setting, vec![point])),
        }
    }
    let mut lines: Vec<Series> = Vec::new();
    for (label, _, points) in settings {
        let n = points.len() as f64;
        let rs = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean = points.iter().map(|p| p.1).sum::<f64>() / n;
        let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        Series::add_to(&mut lines, label, (rs, mean, min, max));
    }
    Series::sort_by_x(&mut lines);
    Chart {
        title: "Test accuracy vs ITOP rate Rs".into(),
        x_label: "Rs at the end (%)".into(),
        y_label: "test accuracy (%)".into(),
        log_x: false,
        log_y: false,
        legend_top: false,
        series: lines,
    }
}

/// A markdown table of runs.
pub fn table(results: &[DstResult]) -> String {
    let mut out = String::from(
        "| method | density | ΔT | α | batch | seed | Rs | test acc (early stop) | early stop | final test acc | train FLOPs × dense | wall s |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {:.1}% | {} | {} | {} | {} | {:.1}% | {:.2}% | {} | {:.2}% | {:.3} | {:.0} |\n",
            r.method,
            100.0 * r.density,
            r.update_every,
            r.drop_fraction,
            r.batch_size,
            r.seed,
            100.0 * r.explored,
            100.0 * r.training.test_accuracy,
            r.training.early_stop_iteration,
            100.0 * r.training.final_test_accuracy,
            r.relative_training_flops,
            r.training.wall_seconds,
        ));
    }
    out
}
