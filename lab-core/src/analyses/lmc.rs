//! Linear mode connectivity and instability (Frankle, Dziugaite, Roy & Carbin, ICML 2020).
//!
//! From θk (θ0 trained k iterations with the replicate's data order) two copies train to the
//! end with two other data orders; the networks on the straight line between them,
//! θ(α) = (1 − α)·θA + α·θB, are evaluated at evenly spaced α, ends included. The error
//! barrier (the paper's instability) is the largest test error on the line minus the mean of
//! the two ends' errors. A network is *stable* at k when the barrier is about 0. For a
//! sparse network the same is done with the ticket of IMP round R found with rewinding to the
//! same k (θk ⊙ m): the paper's finding is that IMP finds matching tickets exactly from the k
//! where that ticket is stable, while the random-pruning and random-reinitialisation controls
//! of the same sparsity are neither stable nor matching (`branch`). The paper calls a network
//! stable when its barrier is under 2 points ([`STABLE_BELOW`]).
//!
//! As in open_lth, each copy starts a fresh optimiser at k (with Adam its first steps after k
//! differ from an uninterrupted run) and continues the schedule and its own data order from
//! iteration k. The copies' data orders are derived from the replicate seed, so replicates
//! differ after the split too.
//!
//! Records (in a [`RunStore`]): `lmc-<hash>/k-<k>/result.json` per split point. The hash
//! does not cover k, so asking for more split points extends a run; the sparse case's IMP
//! runs keep their own `imp-<hash>/` records in the same store.

use burn::config::Config;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::base::chart::{Chart, Series};
use crate::base::data::DatasetKind;
use crate::base::error::ConfigError;
use crate::base::keys::AnalysisKeys;
use crate::base::keys::RunKeys;
use crate::base::mask::Mask;
use crate::base::model::Net;
use crate::base::model::{Architecture, ModelKind, init_model};
use crate::base::naming::run_name;
use crate::base::params::{HostTensor, Weights, load_weights, read_weights};
use crate::base::store::{StoreError, read_json, write_json};
use crate::base::ticket::read_ticket;
use crate::methods::imp::{Control, ImpConfig, Rewind, run_control, run_imp};
use crate::pruning::prune::PruneConfig;
use crate::training::curve::EvalPoint;
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::result::RoundResult;
use crate::training::train::{Prepared, TrainConfig, evaluate, train_from};

/// An instability experiment: a network (dense, or the ticket of one IMP round), its
/// training, and the two copies' data orders. The split points k are given per call.
#[derive(Config, Debug, PartialEq)]
pub struct LmcExperiment {
    #[config(default = "ModelKind::Lenet300")]
    pub model: ModelKind,
    #[config(default = "DatasetKind::Mnist")]
    pub dataset: DatasetKind,
    #[config(default = "TrainConfig::new()")]
    pub train: TrainConfig,
    /// Replicate seed: θ0, and the data order before the split (and of IMP's trainings).
    #[config(default = 0)]
    pub seed: u64,
    /// The data-order seeds of the two copies after the split (default: 2·seed + 1 and
    /// 2·seed + 2). Equal seeds make equal copies: a barrier of exactly 0, a test only.
    #[config(default = "None")]
    pub copy_seeds: Option<[u64; 2]>,
    /// Networks evaluated on the line, both ends included.
    #[config(default = 11)]
    pub points: usize,
    /// 0: the dense network. R > 0: the ticket of IMP round R (found with rewinding to k).
    #[config(default = 0)]
    pub ticket_round: usize,
    /// With a ticket round: instead of the ticket, that round's control network (the same
    /// mask with fresh weights, or a random mask of the same per-layer counts on θk).
    #[config(default = "None")]
    pub branch: Option<Control>,
    /// IMP's pruning rule, for tickets.
    #[config(default = "PruneConfig::default()")]
    pub prune: PruneConfig,
    #[config(default = "None")]
    pub train_subset: Option<usize>,
    #[config(default = "None")]
    pub eval_subset: Option<usize>,
}

impl LmcExperiment {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train.validate()?;
        self.prune.validate()?;
        if self.points < 2 {
            return Err(ConfigError::new(
                "the line needs at least its two ends (points >= 2)",
            ));
        }
        ConfigError::check_subsets(self.train_subset, self.eval_subset)?;
        if self.branch.is_some() && self.ticket_round == 0 {
            return Err(ConfigError::new(
                "a control network needs a ticket round (its mask's sparsity)",
            ));
        }
        Ok(())
    }

    pub fn run_name(&self) -> String {
        run_name("lmc", self, &LmcExperiment::new())
    }

    /// The two copies' data-order seeds.
    pub fn copy_seeds(&self) -> [u64; 2] {
        self.copy_seeds
            .unwrap_or([2 * self.seed + 1, 2 * self.seed + 2])
    }

    /// The IMP run whose round `ticket_round` is the ticket rewound to `k`.
    pub fn imp_config(&self, k: usize) -> ImpConfig {
        ImpConfig::new()
            .with_model(self.model)
            .with_dataset(self.dataset)
            .with_train(self.train.clone())
            .with_prune(self.prune.clone())
            .with_rounds(self.ticket_round + 1)
            .with_rewind(if k == 0 {
                Rewind::Init
            } else {
                Rewind::Iteration(k)
            })
            .with_seed(self.seed)
            .with_train_subset(self.train_subset)
            .with_eval_subset(self.eval_subset)
    }

    /// `dense`, `ticket round R` or `reinit round R` / `random-prune round R`.
    pub fn label(&self) -> String {
        match (self.ticket_round, self.branch) {
            (0, _) => "dense".into(),
            (round, None) => format!("ticket round {round}"),
            (round, Some(control)) => format!("{} round {round}", control.name()),
        }
    }
}

/// Why the analysis failed (shared by the analyses).
pub type LmcError = crate::analyses::error::AnalysisError;

/// One network on the line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPoint {
    pub alpha: f64,
    pub point: EvalPoint,
}

/// The instability of one network split at iteration k.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmcResult {
    pub run: String,
    pub label: String,
    /// The split iteration.
    pub k: usize,
    pub weights_remaining: f64,
    /// The two trained copies' last evaluation, from their training runs.
    pub copies: [EvalPoint; 2],
    /// The line from copy A (α = 0) to copy B (α = 1).
    pub path: Vec<PathPoint>,
    /// max over the line of the test error, minus the mean of the ends' test errors.
    pub error_barrier: f64,
    /// The same for the test loss.
    pub loss_barrier: f64,
    /// For a ticket (or a control): its IMP round's result (rewound to k), to read
    /// "matching" against.
    pub ticket: Option<RoundResult>,
    pub wall_seconds: f64,
}

impl LmcResult {
    /// The largest test error on the line above the straight chord between the ends' errors:
    /// a hump in the middle, without the half of the ends' difference that the paper's barrier
    /// also counts when the two copies end at different errors.
    pub fn chord_barrier(&self) -> f64 {
        let error = |p: &PathPoint| 1.0 - p.point.test_accuracy;
        let (Some(first), Some(last)) = (self.path.first(), self.path.last()) else {
            return 0.0;
        };
        let (e0, e1) = (error(first), error(last));
        self.path
            .iter()
            .map(|p| error(p) - ((1.0 - p.alpha) * e0 + p.alpha * e1))
            .fold(0.0, f64::max)
    }
}

/// The paper's threshold: a network is stable when its error barrier is below 2 points.
pub const STABLE_BELOW: f64 = 0.02;

/// max_α f(α) − (f(0) + f(1)) / 2 over a path's values, ends first and last.
pub fn barrier(values: &[f64]) -> f64 {
    match (values.first(), values.last()) {
        (Some(&first), Some(&last)) => {
            let top = values.iter().copied().fold(f64::MIN, f64::max);
            top - (first + last) / 2.0
        }
        _ => 0.0,
    }
}

/// `points` evenly spaced α from 0 to 1, both ends exact.
pub fn alphas(points: usize) -> Vec<f64> {
    let last = points.saturating_sub(1).max(1);
    (0..points).map(|i| i as f64 / last as f64).collect()
}

/// (1 − α)·a + α·b, parameter by parameter: exactly a at α = 0 and exactly b at α = 1.
pub fn interpolate(a: &Weights, b: &Weights, alpha: f64) -> Weights {
    let (wa, wb) = ((1.0 - alpha) as f32, alpha as f32);
    a.iter()
        .map(|(path, ta)| {
            let tb = &b[path];
            let values = ta
                .values
                .iter()
                .zip(&tb.values)
                .map(|(&x, &y)| wa * x + wb * y)
                .collect();
            (
                path.clone(),
                HostTensor {
                    shape: ta.shape.clone(),
                    values,
                },
            )
        })
        .collect()
}

/// Evaluates the networks on the line from `a` to `b` (weights of `template`'s shape).
pub async fn evaluate_path<M: Architecture>(
    template: &M,
    a: &Weights,
    b: &Weights,
    points: usize,
    iteration: usize,
    data: &Prepared,
) -> Result<Vec<PathPoint>, LmcError> {
    if a.keys().ne(b.keys()) {
        return Err(ConfigError::new("the two networks have different parameters").into());
    }
    let mut path = Vec::with_capacity(points);
    for alpha in alphas(points) {
        let model = load_weights(template.clone(), &interpolate(a, b, alpha));
        let point = evaluate(&model, data, iteration).await?;
        path.push(PathPoint { alpha, point });
    }
    Ok(path)
}

/// The instability at split iteration `k` (or its record): θk, the two copies, the line.
pub async fn run_lmc<M: Architecture>(
    experiment: &LmcExperiment,
    k: usize,
    data: &Prepared,
    session: &mut Session<'_>,
) -> Result<LmcResult, LmcError> {
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    experiment.validate()?;
    let iterations = experiment.train.iterations;
    if k > iterations {
        return Err(ConfigError(format!(
            "the split point k = {k} is past the end of training ({iterations} iterations)"
        ))
        .into());
    }
    let run = experiment.run_name();
    let keys = AnalysisKeys { run: run.clone() };
    let key = keys.split(k);
    if let Some(done) = read_json::<LmcResult>(store, &key) {
        return Ok(done?);
    }
    write_json(store, &keys.config(), experiment)?;
    let started = Instant::now();
    let device = device.clone().autodiff();
    let theta0: M = init_model(experiment.model, experiment.seed, &device);
    let (start, mask, ticket): (Weights, Option<Mask>, Option<RoundResult>) =
        if experiment.ticket_round == 0 {
            let weights = if k == 0 {
                read_weights(&theta0).await?
            } else {
                // The first k iterations of the replicate's run (the schedule depends on the
                // iteration only, so a k-iteration run is the start of the full one).
                let before = experiment
                    .train
                    .for_replicate(experiment.seed)
                    .with_iterations(k)
                    .with_eval_every(k);
                observer.on_round_start(0, 1.0, &format!("θk (k = {k})"));
                let outcome =
                    train_from(theta0.clone(), None, data, &before, 0, None, observer).await?;
                read_weights(&outcome.model).await?
            };
            (weights, None, None)
        } else {
            let imp = experiment.imp_config(k);
            let results = run_imp::<M>(&imp, data, &device, store, observer).await?;
            let round = experiment.ticket_round;
            let keys = RunKeys {
                run: imp.run_name(),
            };
            let (key, result) = match experiment.branch {
                None => (keys.ticket(round), results.get(round).cloned()),
                Some(control) => {
                    let done = run_control::<M>(
                        &imp,
                        control,
                        Some(&[round]),
                        data,
                        &device,
                        store,
                        observer,
                    )
                    .await?;
                    (
                        keys.control_start(control.name(), round),
                        done.into_iter().next(),
                    )
                }
            };
            let blob = read_ticket(store, &key)?.ok_or(StoreError::Missing { key })?;
            (blob.weights, Some(blob.mask), result)
        };
    let mut trained = Vec::with_capacity(2);
    let mut copies = Vec::with_capacity(2);
    for (copy, seed) in ["A", "B"].iter().zip(experiment.copy_seeds()) {
        let config = experiment.train.clone().with_data_seed(Some(seed));
        observer.on_round_start(
            experiment.ticket_round,
            mask.as_ref().map_or(1.0, Mask::density),
            &format!("copy {copy} (k = {k})"),
        );
        let model = load_weights(theta0.clone(), &start);
        let outcome = train_from(model, mask.as_ref(), data, &config, k, None, observer).await?;
        trained.push(read_weights(&outcome.model).await?);
        copies.push(outcome.last);
    }
    let path = evaluate_path(
        &theta0,
        &trained[0],
        &trained[1],
        experiment.points,
        iterations,
        data,
    )
    .await?;
    let errors: Vec<f64> = path.iter().map(|p| 1.0 - p.point.test_accuracy).collect();
    let losses: Vec<f64> = path.iter().map(|p| p.point.test_loss).collect();
    let result = LmcResult {
        run,
        label: experiment.label(),
        k,
        weights_remaining: mask.as_ref().map_or(1.0, Mask::density),
        copies: [copies[0], copies[1]],
        error_barrier: barrier(&errors),
        loss_barrier: barrier(&losses),
        path,
        ticket,
        wall_seconds: started.elapsed().as_secs_f64(),
    };
    write_json(store, &key, &result)?;
    Ok(result)
}

/// Error barrier (%) against k, one line per network (dense, each ticket round).
pub fn instability_chart(results: &[LmcResult]) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    for r in results {
        let label = format!("{} ({:.1}%)", r.label, 100.0 * r.weights_remaining);
        let point = (
            r.k as f64,
            100.0 * r.error_barrier,
            100.0 * r.error_barrier,
            100.0 * r.error_barrier,
        );
        Series::add_to(&mut series, label, point);
    }
    Series::sort_by_x(&mut series);
    Chart {
        title: "Instability: the error barrier between two copies trained from θk".into(),
        x_label: "k (iteration the copies split at)".into(),
        y_label: "error barrier (test error, % points)".into(),
        log_x: false,
        log_y: false,
        series,
        legend_top: true,
    }
}

/// Test error (%) along the line, one line per split point, for the results of one network.
pub fn path_chart(results: &[LmcResult]) -> Chart {
    let series = results
        .iter()
        .map(|r| Series {
            label: format!("{} k = {}", r.label, r.k),
            points: r
                .path
                .iter()
                .map(|p| {
                    let error = 100.0 * (1.0 - p.point.test_accuracy);
                    (p.alpha, error, error, error)
                })
                .collect(),
        })
        .collect();
    Chart {
        title: "Test error on the line between the two copies".into(),
        x_label: "α (0: copy A, 1: copy B)".into(),
        y_label: "test error %".into(),
        log_x: false,
        log_y: false,
        series,
        legend_top: true,
    }
}

/// Tickets' test accuracy at the end of training (%) against k beside the dense network's
/// (as the paper reads "matching", without early stopping): where IMP finds matching
/// tickets, read against where the tickets are stable.
pub fn ticket_accuracy_chart(results: &[LmcResult], dense_accuracy: Option<f64>) -> Chart {
    let mut series: Vec<Series> = Vec::new();
    for r in results {
        let Some(ticket) = &r.ticket else { continue };
        let label = format!("{} ({:.1}%)", r.label, 100.0 * r.weights_remaining);
        let accuracy = 100.0 * ticket.final_test_accuracy;
        let point = (r.k as f64, accuracy, accuracy, accuracy);
        Series::add_to(&mut series, label, point);
    }
    Series::sort_by_x(&mut series);
    if let Some(dense) = dense_accuracy {
        let ks: Vec<f64> = results.iter().map(|r| r.k as f64).collect();
        let (lo, hi) = (
            ks.iter().copied().fold(f64::MAX, f64::min),
            ks.iter().copied().fold(f64::MIN, f64::max),
        );
        if lo <= hi {
            let a = 100.0 * dense;
            series.push(Series {
                label: "dense network".into(),
                points: vec![(lo, a, a, a), (hi, a, a, a)],
            });
        }
    }
    Chart {
        title: "IMP tickets rewound to k: test accuracy at the end of training".into(),
        x_label: "k (rewinding iteration)".into(),
        y_label: "test accuracy %".into(),
        log_x: false,
        log_y: false,
        series,
        legend_top: false,
    }
}

/// A Markdown table: network, k, copies' accuracy, barriers, the ticket's accuracy.
pub fn table(results: &[LmcResult]) -> String {
    let mut out = String::from(
        "| network | % remaining | k | copy A test acc % | copy B test acc % | error barrier (points) | stable (< 2 points) | above the chord (points) | loss barrier | its IMP round's final test acc % (rewound to k) |\n\
         |---|---:|---:|---:|---:|---:|---|---:|---:|---:|\n",
    );
    for r in results {
        out += &format!(
            "| {} | {:.1} | {} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.4} | {} |\n",
            r.label,
            100.0 * r.weights_remaining,
            r.k,
            100.0 * r.copies[0].test_accuracy,
            100.0 * r.copies[1].test_accuracy,
            100.0 * r.error_barrier,
            if r.error_barrier < STABLE_BELOW {
                "yes"
            } else {
                "no"
            },
            100.0 * r.chord_barrier(),
            r.loss_barrier,
            r.ticket.as_ref().map_or("".into(), |t| format!(
                "{:.2}",
                100.0 * t.final_test_accuracy
            ))
        );
    }
    out
}

/// The instability of one network at several split points, as every face runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmcRun {
    pub experiment: LmcExperiment,
    /// Split iterations k (each a record of its own under the experiment's run).
    pub ks: Vec<usize>,
}

impl Default for LmcRun {
    fn default() -> Self {
        Self {
            experiment: LmcExperiment::new(),
            ks: vec![0],
        }
    }
}

impl Experiment for LmcRun {
    const KIND: &'static str = "lmc";
    type Report = Vec<LmcResult>;
    type Error = LmcError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.experiment.validate()?;
        if self.ks.is_empty() {
            return Err(ConfigError::new("give at least one split point k"));
        }
        Ok(())
    }

    fn run_name(&self) -> String {
        self.experiment.run_name()
    }

    fn datasets(&self) -> Vec<DatasetKind> {
        vec![self.experiment.dataset]
    }

    async fn run(
        &self,
        data: &Data<'_>,
        session: &mut Session<'_>,
    ) -> Result<Vec<LmcResult>, LmcError> {
        Experiment::validate(self)?;
        let experiment = &self.experiment;
        let subsets = (experiment.train_subset, experiment.eval_subset);
        let prepared = data.prepared(experiment.dataset, subsets, &session.device)?;
        let mut results = Vec::with_capacity(self.ks.len());
        for &k in &self.ks {
            let result = run_lmc::<Net>(experiment, k, &prepared, session).await?;
            results.push(result);
            session.observer.on_report(&json(&results));
        }
        Ok(results)
    }
}

/// A partial report for the observer (serialising plain records cannot fail).
fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_barrier_is_the_peak_above_the_ends_mean() {
        assert!((barrier(&[0.1, 0.3, 0.2]) - 0.15).abs() < 1e-15);
        assert_eq!(barrier(&[0.2, 0.1, 0.2]), 0.0);
        assert_eq!(barrier(&[0.1, 0.1]), 0.0);
        assert_eq!(alphas(3), vec![0.0, 0.5, 1.0]);
    }

    #[test]
    fn the_chord_barrier_ignores_the_ends_gap() {
        let point = |alpha: f64, error: f64| PathPoint {
            alpha,
            point: EvalPoint {
                iteration: 0,
                validation_loss: 0.0,
                validation_accuracy: 0.0,
                test_loss: 0.0,
                test_accuracy: 1.0 - error,
            },
        };
        let mut result = LmcResult {
            run: String::new(),
            label: String::new(),
            k: 0,
            weights_remaining: 1.0,
            copies: [point(0.0, 0.1).point, point(1.0, 0.3).point],
            path: vec![point(0.0, 0.1), point(0.5, 0.2), point(1.0, 0.3)],
            error_barrier: 0.0,
            loss_barrier: 0.0,
            ticket: None,
            wall_seconds: 0.0,
        };
        // A straight line from 0.1 to 0.3: the paper's barrier is half the gap, 0.1; no hump.
        let errors: Vec<f64> = result
            .path
            .iter()
            .map(|p| 1.0 - p.point.test_accuracy)
            .collect();
        assert!((barrier(&errors) - 0.1).abs() < 1e-12);
        assert!(result.chord_barrier().abs() < 1e-12);
        result.path[1] = point(0.5, 0.4);
        assert!((result.chord_barrier() - 0.2).abs() < 1e-12);
    }

    #[test]
    fn interpolation_is_exact_at_both_ends() {
        let a: Weights = [(
            "w".to_string(),
            HostTensor {
                shape: vec![3],
                values: vec![0.1, -2.5, 3.0e-7],
            },
        )]
        .into();
        let b: Weights = [(
            "w".to_string(),
            HostTensor {
                shape: vec![3],
                values: vec![7.0, 0.3, -1.0],
            },
        )]
        .into();
        assert_eq!(interpolate(&a, &b, 0.0), a);
        assert_eq!(interpolate(&a, &b, 1.0), b);
        let mid = interpolate(&a, &b, 0.5);
        assert!((mid["w"].values[0] - 3.55).abs() < 1e-6);
    }
}
