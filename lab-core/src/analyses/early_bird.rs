//! Early-bird tickets (You et al., ICLR 2020): the pruning mask emerges early in training.
//!
//! During one dense training, a magnitude mask with the sparsity of IMP's round-R ticket (its
//! per-layer counts, or its total under global pruning) is drawn every `draw_every`
//! iterations (a [`MaskPolicy`] that reads the weights at those iterations and never changes
//! the mask, so the training is the dense one bit for bit). The normalised Hamming distance
//! between draws falls as training goes on. As in the reference code (`EarlyBird` in
//! `main.py`, a FIFO of `epoch_keep = 5` masks), the early bird is the first draw whose
//! distance to each of the `window − 1` draws before it is at most ε. It is then trained, from
//! θ0 as IMP's tickets are (`Retrain::Init`), or on from its own weights at the draw to the
//! end of the schedule (`Retrain::Continue`, the reference's `retrain_continue`), and compared
//! with the IMP ticket: accuracy, overlap, and total training cost (early bird from θ0: the
//! iterations until it emerged plus one training; continued: one training in all; IMP: R + 1
//! trainings).
//!
//! Deliberate differences from the paper and its code:
//! - You et al. prune conv channels by their batch-norm scales (with an L1 penalty on them
//!   during the search, s = 1e-4) under one network-wide threshold, and normalise the distance
//!   by the channel count. Here masks are unstructured magnitude masks (the lab's nets have no
//!   batch norm, no penalty is added) with IMP's counts, and the distance is over all prunable
//!   weights, so the 784×300 layer weighs 88% of LeNet-300-100's.
//! - They draw once per epoch (the θ0 mask at epoch 0) with ε = 0.1. One MNIST epoch at batch
//!   60 is 917 iterations, so a 5,000-iteration run would give five draws: draws come every
//!   `draw_every` iterations instead (100 by default), and the distances between draws that
//!   close are smaller, so read ε against the recorded curve. Any ε and window can be read from
//!   one dense run, since every draw is recorded.
//! - They stop the dense run at the early bird; here it goes on to the end, so the whole
//!   distance curve is seen (the cost counts only what an early-bird user would pay).
//! - With `Retrain::Continue` the optimiser starts afresh at the draw (as IMP's late
//!   rewinding does); the reference's continue path carries its schedule on.
//!
//! Records (in a [`RunStore`]): `eb-<hash>/draws.json` (every drawn mask),
//! `eb-<hash>/dense.json` (the watched run), `eb-<hash>/ticket-at-<t>/result.json` (the
//! ticket drawn at t, trained); IMP's records under its own `imp-<hash>/`.

use std::cell::RefCell;

use burn::config::Config;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::base::chart::{Chart, Series};
use crate::base::data::DatasetKind;
use crate::base::error::ConfigError;
use crate::base::keys::AnalysisKeys;
use crate::base::mask::Mask;
use crate::base::mask::masked_weights;
use crate::base::model::Net;
use crate::base::model::{Architecture, ModelKind, init_model};
use crate::base::naming::run_name;
use crate::base::params::{load_weights, read_weights};
use crate::base::similarity::{hamming, overlap};
use crate::base::store::{StoreError, read_json, write_json};
use crate::methods::imp::{ImpConfig, Rewind};
use crate::pruning::prune::{
    PruneConfig, PruneScope, magnitude_global_count, magnitude_per_layer_counts,
};
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::policy::{MaskPolicy, UpdateContext};
use crate::training::result::RoundResult;
use crate::training::train::{Prepared, Schedule, TrainConfig, train_from, train_scheduled};

#[derive(Config, Debug, PartialEq)]
pub struct EarlyBirdExperiment {
    #[config(default = "ModelKind::Lenet300")]
    pub model: ModelKind,
    #[config(default = "DatasetKind::Mnist")]
    pub dataset: DatasetKind,
    #[config(default = "TrainConfig::new()")]
    pub train: TrainConfig,
    /// Seed of θ0 and of the data order.
    #[config(default = 0)]
    pub seed: u64,
    /// The IMP round whose per-layer counts the early-bird masks have.
    #[config(default = 5)]
    pub round: usize,
    /// IMP's pruning rule.
    #[config(default = "PruneConfig::default()")]
    pub prune: PruneConfig,
    /// Draw a mask every this many iterations.
    #[config(default = 100)]
    pub draw_every: usize,
    #[config(default = "None")]
    pub train_subset: Option<usize>,
    #[config(default = "None")]
    pub eval_subset: Option<usize>,
}

impl EarlyBirdExperiment {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train.validate()?;
        self.prune.validate()?;
        if self.round == 0 {
            return Err(ConfigError::new(
                "round 0 is the dense network: pick round >= 1",
            ));
        }
        if self.draw_every == 0 || self.draw_every > self.train.iterations {
            return Err(ConfigError::new(
                "draw_every must be between 1 and the training iterations",
            ));
        }
        ConfigError::check_subsets(self.train_subset, self.eval_subset)?;
        Ok(())
    }

    pub fn run_name(&self) -> String {
        run_name("eb", self, &EarlyBirdExperiment::new())
    }

    /// The IMP run whose round `round` the early bird is compared with (rewinding to θ0).
    pub fn imp_config(&self) -> ImpConfig {
        ImpConfig::new()
            .with_model(self.model)
            .with_dataset(self.dataset)
            .with_train(self.train.clone())
            .with_prune(self.prune.clone())
            .with_rounds(self.round + 1)
            .with_rewind(Rewind::Init)
            .with_seed(self.seed)
            .with_train_subset(self.train_subset)
            .with_eval_subset(self.eval_subset)
    }
}

/// When the early bird emerges: a draw within ε of each of the `window − 1` draws before it
/// (the reference: ε = 0.1, a window of 5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Criterion {
    pub epsilon: f64,
    pub window: usize,
}

/// How the early-bird ticket is trained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Retrain {
    /// From θ0 ⊙ m for the whole schedule, as IMP's tickets (rewinding to init).
    Init,
    /// From the dense weights at the draw ⊙ m, on to the end of the schedule.
    Continue,
}

impl Retrain {
    pub fn name(self) -> &'static str {
        match self {
            Retrain::Init => "from θ0",
            Retrain::Continue => "continued",
        }
    }
}

/// A mask drawn during the dense run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draw {
    pub iteration: usize,
    pub mask: Mask,
}

/// One draw as reported: its distance to the previous draw and to IMP's round-R mask.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrawDistance {
    pub iteration: usize,
    /// Normalised Hamming distance to the previous draw (`None` for the first).
    pub to_previous: Option<f64>,
    /// Normalised Hamming distance to the IMP ticket's mask.
    pub to_imp: f64,
}

/// The early-bird ticket of one criterion, trained, beside the IMP ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyBirdTicket {
    pub criterion: Criterion,
    pub retrain: Retrain,
    /// The iteration of the draw that is the early bird (`None`: it never emerged).
    pub found_at: Option<usize>,
    /// Its training from θ0.
    pub training: Option<RoundResult>,
    /// Jaccard overlap with the IMP ticket's mask.
    pub imp_jaccard: Option<f64>,
    /// Training iterations spent: until the draw, plus its own training.
    pub cost_iterations: Option<usize>,
}

/// What one early-bird experiment reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyBirdReport {
    pub run: String,
    pub round: usize,
    pub weights_remaining: f64,
    pub draws: Vec<DrawDistance>,
    /// The watched dense training.
    pub dense: RoundResult,
    /// IMP's ticket of round R (rewound to θ0) and what finding and training it cost.
    pub imp: RoundResult,
    pub imp_cost_iterations: usize,
    /// The Jaccard overlap two random masks of these counts have.
    pub chance_jaccard: f64,
    pub tickets: Vec<EarlyBirdTicket>,
}

/// Why the analysis failed (shared by the analyses).
pub type EarlyBirdError = crate::analyses::error::AnalysisError;

/// How many weights a draw prunes: per layer, or in all (global magnitude pruning).
enum PruneCounts {
    PerLayer(Vec<usize>),
    Global(usize),
}

/// A mask policy that only watches: every `every` iterations it draws the magnitude mask
/// that prunes `counts` weights, and keeps the dense mask.
struct MaskWatch {
    every: usize,
    counts: PruneCounts,
    draws: RefCell<Vec<Draw>>,
}

impl MaskPolicy for MaskWatch {
    fn updates_at(&self, iteration: usize, _total: usize) -> bool {
        iteration.is_multiple_of(self.every)
    }

    fn update(&self, context: &UpdateContext) -> Mask {
        let drawn = match &self.counts {
            PruneCounts::PerLayer(counts) => {
                magnitude_per_layer_counts(context.mask, context.weights, counts)
            }
            PruneCounts::Global(count) => {
                magnitude_global_count(context.mask, context.weights, *count)
            }
        };
        self.draws.borrow_mut().push(Draw {
            iteration: context.iteration,
            mask: drawn,
        });
        context.mask.clone()
    }
}

/// The index of the first of `draws` draws within ε of each of the `window − 1` before it;
/// `distance(i, j)` is the distance between draws i and j.
pub fn emergence(
    draws: usize,
    distance: &dyn Fn(usize, usize) -> f64,
    criterion: Criterion,
) -> Option<usize> {
    let window = criterion.window.max(2);
    (window - 1..draws).find(|&i| (1..window).all(|j| distance(i, i - j) <= criterion.epsilon))
}

/// Runs (or reads back) the experiment: IMP to round R, the watched dense run, and the
/// early-bird ticket of each criterion, trained each way of `retrains`.
pub async fn run_early_bird<M: Architecture>(
    experiment: &EarlyBirdExperiment,
    criteria: &[Criterion],
    retrains: &[Retrain],
    data: &Prepared,
    session: &mut Session<'_>,
) -> Result<EarlyBirdReport, EarlyBirdError> {
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    experiment.validate()?;
    let run = experiment.run_name();
    let keys = AnalysisKeys { run: run.clone() };
    write_json(store, &keys.config(), experiment)?;
    let device = device.clone().autodiff();
    let imp_config = experiment.imp_config();
    let imp_results =
        crate::methods::imp::run_imp::<M>(&imp_config, data, &device, store, observer).await?;
    let imp_keys = crate::base::keys::RunKeys {
        run: imp_config.run_name(),
    };
    let imp_mask = crate::base::ticket::read_ticket(store, &imp_keys.ticket(experiment.round))?
        .ok_or_else(|| StoreError::Missing {
            key: imp_keys.ticket(experiment.round),
        })?
        .mask;
    let imp = imp_results[experiment.round].clone();
    let theta0: M = init_model(experiment.model, experiment.seed, &device);
    let dense_mask = Mask::dense_for(&theta0);
    let train = experiment.train.for_replicate(experiment.seed);

    let draws_key = keys.draws();
    let dense_key = keys.dense();
    let (draws, dense) = match (
        read_json::<Vec<Draw>>(store, &draws_key),
        read_json::<RoundResult>(store, &dense_key),
    ) {
        (Some(draws), Some(dense)) => (draws?, dense?),
        _ => {
            let counts = match experiment.prune.scope {
                PruneScope::PerLayer => PruneCounts::PerLayer(
                    dense_mask
                        .layers
                        .iter()
                        .zip(&imp_mask.layers)
                        .map(|(all, kept)| all.total() - kept.remaining())
                        .collect(),
                ),
                PruneScope::Global => {
                    PruneCounts::Global(dense_mask.total() - imp_mask.remaining())
                }
            };
            let watch = MaskWatch {
                every: experiment.draw_every,
                counts,
                draws: RefCell::new(Vec::new()),
            };
            observer.on_round_start(0, 1.0, "watched dense run");
            let started = Instant::now();
            let schedule = Schedule {
                start: 0,
                snapshot_at: None,
                checkpoint: None,
                policy: Some(&watch),
            };
            let outcome = train_scheduled(
                theta0.clone(),
                Some(&dense_mask),
                data,
                &train,
                schedule,
                observer,
            )
            .await?;
            let dense = RoundResult::from_training(
                0,
                &dense_mask,
                &outcome,
                started.elapsed().as_secs_f64(),
            );
            let draws = watch.draws.into_inner();
            write_json(store, &draws_key, &draws)?;
            write_json(store, &dense_key, &dense)?;
            (draws, dense)
        }
    };
    let distances: Vec<DrawDistance> = draws
        .iter()
        .enumerate()
        .map(|(i, draw)| -> Result<DrawDistance, EarlyBirdError> {
            let to_previous = match i {
                0 => None,
                _ => Some(hamming(&draws[i - 1].mask, &draw.mask).map_err(config)?),
            };
            Ok(DrawDistance {
                iteration: draw.iteration,
                to_previous,
                to_imp: hamming(&draw.mask, &imp_mask).map_err(config)?,
            })
        })
        .collect::<Result<_, _>>()?;
    let theta0_weights = read_weights(&theta0).await?;
    let iterations = experiment.train.iterations;
    let distance = |i: usize, j: usize| hamming(&draws[i].mask, &draws[j].mask).unwrap_or(1.0);
    let mut tickets = Vec::with_capacity(criteria.len() * retrains.len());
    for &criterion in criteria {
        let found = emergence(draws.len(), &distance, criterion);
        for &retrain in retrains {
            let Some(index) = found else {
                tickets.push(EarlyBirdTicket {
                    criterion,
                    retrain,
                    found_at: None,
                    training: None,
                    imp_jaccard: None,
                    cost_iterations: None,
                });
                continue;
            };
            let Draw {
                iteration: at,
                mask,
            } = &draws[index];
            let at = *at;
            let (name, start) = match retrain {
                Retrain::Init => ("ticket-at", 0),
                Retrain::Continue => ("continue-at", at),
            };
            let key = keys.retrained(name, at);
            let training = match read_json::<RoundResult>(store, &key) {
                Some(done) => done?,
                None => {
                    observer.on_round_start(
                        experiment.round,
                        mask.density(),
                        &format!("early bird drawn at {at}, {}", retrain.name()),
                    );
                    let started = Instant::now();
                    let weights = match retrain {
                        Retrain::Init => theta0_weights.clone(),
                        Retrain::Continue => {
                            // The watched run's weights at the draw: its first `at` iterations
                            // again (the schedule depends on the iteration only).
                            let before = train.clone().with_iterations(at).with_eval_every(at);
                            let outcome = crate::training::train::train(
                                theta0.clone(),
                                Some(&dense_mask),
                                data,
                                &before,
                                None,
                                observer,
                            )
                            .await?;
                            read_weights(&outcome.model).await?
                        }
                    };
                    let model = load_weights(theta0.clone(), &masked_weights(&weights, mask));
                    let outcome =
                        train_from(model, Some(mask), data, &train, start, None, observer).await?;
                    let result = RoundResult::from_training(
                        experiment.round,
                        mask,
                        &outcome,
                        started.elapsed().as_secs_f64(),
                    );
                    write_json(store, &key, &result)?;
                    result
                }
            };
            tickets.push(EarlyBirdTicket {
                criterion,
                retrain,
                found_at: Some(at),
                training: Some(training),
                imp_jaccard: Some(overlap(mask, &imp_mask).map_err(config)?.total.jaccard),
                cost_iterations: Some(match retrain {
                    Retrain::Init => at + iterations,
                    Retrain::Continue => iterations,
                }),
            });
        }
    }
    Ok(EarlyBirdReport {
        run,
        round: experiment.round,
        weights_remaining: imp_mask.density(),
        draws: distances,
        dense,
        imp,
        imp_cost_iterations: (experiment.round + 1) * iterations,
        // A mask with itself: the chance level of two random masks with its counts.
        chance_jaccard: overlap(&imp_mask, &imp_mask).map_err(config)?.total.chance,
        tickets,
    })
}

fn config(error: crate::base::similarity::OverlapError) -> EarlyBirdError {
    ConfigError(error.to_string()).into()
}

/// Mask distance over training: to the previous draw and to the IMP ticket (log y).
pub fn distance_chart(report: &EarlyBirdReport) -> Chart {
    let point = |x: usize, y: f64| (x as f64, y, y, y);
    let previous = report
        .draws
        .iter()
        .filter_map(|d| d.to_previous.map(|v| point(d.iteration, v.max(1e-6))))
        .collect();
    let to_imp = report
        .draws
        .iter()
        .map(|d| point(d.iteration, d.to_imp.max(1e-6)))
        .collect();
    let mut series = vec![
        Series {
            label: "to the previous draw".into(),
            points: previous,
        },
        Series {
            label: format!("to the IMP ticket (round {})", report.round),
            points: to_imp,
        },
    ];
    let mut marked: Vec<Criterion> = Vec::new();
    for ticket in &report.tickets {
        if let Some(at) = ticket.found_at
            && !marked.contains(&ticket.criterion)
        {
            marked.push(ticket.criterion);
            let top = 1.0;
            series.push(Series {
                label: format!(
                    "early bird, ε = {}, window {}",
                    ticket.criterion.epsilon, ticket.criterion.window
                ),
                points: vec![point(at, 1e-3), (at as f64, top, top, top)],
            });
        }
    }
    Chart {
        title: format!(
            "Early-bird masks ({:.1}% of weights): normalised Hamming distance",
            100.0 * report.weights_remaining
        ),
        x_label: "training iteration of the draw".into(),
        y_label: "fraction of weights that flipped".into(),
        log_x: false,
        log_y: true,
        series,
        legend_top: true,
    }
}

/// A Markdown table: the IMP ticket and each early-bird ticket, accuracy and cost.
pub fn table(report: &EarlyBirdReport) -> String {
    let mut out = String::from(
        "| ticket | drawn at | test acc % (early stop) | final test acc % | Jaccard with IMP | training iterations |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    out += &format!(
        "| dense (watched run) | | {:.2} | {:.2} | | {} |\n",
        100.0 * report.dense.test_accuracy,
        100.0 * report.dense.final_test_accuracy,
        report.imp_cost_iterations / (report.round + 1)
    );
    out += &format!(
        "| IMP round {} ({:.1}%) | | {:.2} | {:.2} | 1 | {} |\n",
        report.round,
        100.0 * report.weights_remaining,
        100.0 * report.imp.test_accuracy,
        100.0 * report.imp.final_test_accuracy,
        report.imp_cost_iterations
    );
    for t in &report.tickets {
        let name = format!(
            "early bird ε = {}, window {}, {}",
            t.criterion.epsilon,
            t.criterion.window,
            t.retrain.name()
        );
        match (&t.training, t.found_at) {
            (Some(r), Some(at)) => {
                out += &format!(
                    "| {name} | {at} | {:.2} | {:.2} | {:.3} | {} |\n",
                    100.0 * r.test_accuracy,
                    100.0 * r.final_test_accuracy,
                    t.imp_jaccard.unwrap_or(0.0),
                    t.cost_iterations.unwrap_or(0)
                );
            }
            _ => out += &format!("| {name} | never | | | | |\n"),
        }
    }
    out += &format!(
        "\nTwo random masks of these counts share {:.3} by Jaccard.\n",
        report.chance_jaccard
    );
    out
}

/// An early-bird analysis as every face runs it: the experiment, the stopping criteria to
/// apply to its draws, and which retrainings to make of each bird.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyBirdRun {
    pub experiment: EarlyBirdExperiment,
    pub criteria: Vec<Criterion>,
    pub retrains: Vec<Retrain>,
}

impl Default for EarlyBirdRun {
    fn default() -> Self {
        Self {
            experiment: EarlyBirdExperiment::new(),
            criteria: vec![Criterion {
                epsilon: 0.1,
                window: 5,
            }],
            retrains: vec![Retrain::Init, Retrain::Continue],
        }
    }
}

impl Experiment for EarlyBirdRun {
    const KIND: &'static str = "early-bird";
    type Report = EarlyBirdReport;
    type Error = EarlyBirdError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.experiment.validate()
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
    ) -> Result<EarlyBirdReport, EarlyBirdError> {
        let experiment = &self.experiment;
        let subsets = (experiment.train_subset, experiment.eval_subset);
        let prepared = data.prepared(experiment.dataset, subsets, &session.device)?;
        run_early_bird::<Net>(
            experiment,
            &self.criteria,
            &self.retrains,
            &prepared,
            session,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_early_bird_is_the_first_draw_close_to_each_of_the_window_before_it() {
        // Draws on a line: the distance between draws i and j is |x_i − x_j|.
        let x = [0.0, 0.5, 0.55, 0.58, 0.6, 0.61, 0.615];
        let distance = |i: usize, j: usize| f64::abs(x[i] - x[j]);
        let c = |epsilon, window| Criterion { epsilon, window };
        // Window 2 is the consecutive distance: 0.05 from draw 1 to 2.
        assert_eq!(emergence(x.len(), &distance, c(0.051, 2)), Some(2));
        // Window 3: draw 3 is 0.08 from draw 1; draw 4 is 0.05 and 0.02 from draws 2, 3.
        assert_eq!(emergence(x.len(), &distance, c(0.051, 3)), Some(4));
        // Window 5 (the reference's): draw 6 is 0.065 from draw 2; no draw within 0.051.
        assert_eq!(emergence(x.len(), &distance, c(0.051, 5)), None);
        assert_eq!(emergence(x.len(), &distance, c(0.07, 5)), Some(6));
        assert_eq!(emergence(x.len(), &distance, c(1.0, 5)), Some(4));
    }
}
