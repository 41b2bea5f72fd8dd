//! Ticket transfer across data sets (Morcos, Yu, Paganini & Tian, NeurIPS 2019, "One ticket
//! to win them all"): a ticket found by IMP on a source data set (its mask and its rewound
//! weights) trained on a target data set, against the ticket IMP finds on the target itself
//! and the two controls made from the source ticket (random reinitialisation: the same mask
//! with fresh weights; random pruning: a random mask with the same per-layer counts and the
//! same rewound weights), round by round.
//!
//! Records (in a [`RunStore`]): the two IMP runs under their own `imp-<hash>/`, and
//! `transfer-<hash>/round-<r>/<branch>/` with the start (`start.safetensors`: mask and
//! weights, so the transferred mask can be checked bit for bit) and `result.json`.

use burn::config::Config;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::base::chart::{Chart, Series};
use crate::base::data::DatasetKind;
use crate::base::error::ConfigError;
use crate::base::keys::AnalysisKeys;
use crate::base::keys::RunKeys;
use crate::base::mask::masked_weights;
use crate::base::model::Net;
use crate::base::model::{Architecture, ModelKind, init_model, init_model_stream};
use crate::base::naming::run_name;
use crate::base::params::{load_weights, read_weights};
use crate::base::store::{StoreError, read_json, write_json};
use crate::base::ticket::read_ticket;
use crate::base::ticket::{Provenance, Ticket};
use crate::methods::imp::{ImpConfig, Rewind, run_imp};
use crate::pruning::prune::{PruneConfig, random_like};
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::result::RoundResult;
use crate::training::train::{Prepared, TrainConfig, train_from};

#[derive(Config, Debug, PartialEq)]
pub struct TransferExperiment {
    #[config(default = "ModelKind::Lenet300")]
    pub model: ModelKind,
    /// Where the tickets are found.
    #[config(default = "DatasetKind::Mnist")]
    pub source: DatasetKind,
    /// Where they are trained.
    #[config(default = "DatasetKind::FashionMnist")]
    pub target: DatasetKind,
    #[config(default = "TrainConfig::new()")]
    pub train: TrainConfig,
    #[config(default = "PruneConfig::default()")]
    pub prune: PruneConfig,
    #[config(default = "Rewind::Init")]
    pub rewind: Rewind,
    /// IMP rounds on each data set, the dense one included.
    #[config(default = 5)]
    pub rounds: usize,
    /// Seed of θ0 (the same on both data sets) and of the data orders.
    #[config(default = 0)]
    pub seed: u64,
    #[config(default = "None")]
    pub train_subset: Option<usize>,
    #[config(default = "None")]
    pub eval_subset: Option<usize>,
}

impl TransferExperiment {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.train.validate()?;
        self.prune.validate()?;
        if self.source == self.target {
            return Err(ConfigError::new(
                "the source and target data sets are the same",
            ));
        }
        ConfigError::check_subsets(self.train_subset, self.eval_subset)?;
        if self.rounds < 2 {
            return Err(ConfigError::new(
                "at least 2 rounds: a dense one and a ticket",
            ));
        }
        if self.rewind == Rewind::FineTune {
            return Err(ConfigError::new(
                "a transferred ticket is rewound weights and a mask: fine-tuning has none",
            ));
        }
        Ok(())
    }

    pub fn run_name(&self) -> String {
        run_name("transfer", self, &TransferExperiment::new())
    }

    /// The IMP run on `dataset` (source or target).
    pub fn imp_config(&self, dataset: DatasetKind) -> ImpConfig {
        ImpConfig::new()
            .with_model(self.model)
            .with_dataset(dataset)
            .with_train(self.train.clone())
            .with_prune(self.prune.clone())
            .with_rounds(self.rounds)
            .with_rewind(self.rewind)
            .with_seed(self.seed)
            .with_train_subset(self.train_subset)
            .with_eval_subset(self.eval_subset)
    }

    pub fn label(&self) -> String {
        format!("{} → {}", self.source.name(), self.target.name())
    }
}

/// Why the analysis failed (shared by the analyses).
pub type TransferError = crate::analyses::error::AnalysisError;

/// The branches trained on the target from the source's tickets.
pub const BRANCHES: [&str; 3] = ["transferred", "reinit", "random-prune"];

/// One round: the target's own ticket and the three source-derived networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferRound {
    pub round: usize,
    pub weights_remaining: f64,
    /// The ticket IMP found on the target at this round.
    pub target_ticket: RoundResult,
    /// The source ticket trained on the target.
    pub transferred: RoundResult,
    pub reinit: RoundResult,
    pub random_prune: RoundResult,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferReport {
    pub run: String,
    pub source: String,
    pub target: String,
    /// The dense network trained on the target (the target IMP's round 0).
    pub target_dense: RoundResult,
    pub rounds: Vec<TransferRound>,
}

/// Runs (or reads back) IMP on both data sets and the three source-derived branches of every
/// ticket round on the target.
pub async fn run_transfer<M: Architecture>(
    experiment: &TransferExperiment,
    source_data: &Prepared,
    target_data: &Prepared,
    session: &mut Session<'_>,
) -> Result<TransferReport, TransferError> {
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    experiment.validate()?;
    let run = experiment.run_name();
    let keys = AnalysisKeys { run: run.clone() };
    write_json(store, &keys.config(), experiment)?;
    let device = device.clone().autodiff();
    let source_imp = experiment.imp_config(experiment.source);
    let target_imp = experiment.imp_config(experiment.target);
    run_imp::<M>(&source_imp, source_data, &device, store, observer).await?;
    let target_results = run_imp::<M>(&target_imp, target_data, &device, store, observer).await?;
    let source_keys = RunKeys {
        run: source_imp.run_name(),
    };
    let theta0: M = init_model(experiment.model, experiment.seed, &device);
    let theta0_weights = read_weights(&theta0).await?;
    let start_at = experiment
        .rewind
        .iteration(experiment.train.iterations)
        .unwrap_or(0);
    let train = experiment.train.for_replicate(experiment.seed);
    let mut rounds = Vec::new();
    for (round, target_ticket) in target_results.iter().enumerate().skip(1) {
        let ticket =
            read_ticket(store, &source_keys.ticket(round))?.ok_or_else(|| StoreError::Missing {
                key: source_keys.ticket(round),
            })?;
        let mut results = Vec::with_capacity(BRANCHES.len());
        for branch in BRANCHES {
            let key = keys.branch_result(round, branch);
            if let Some(done) = read_json::<RoundResult>(store, &key) {
                results.push(done?);
                continue;
            }
            let stream = format!("transfer-{branch}/round-{round:02}");
            let (mask, weights) = match branch {
                "transferred" => (ticket.mask.clone(), ticket.weights.clone()),
                "reinit" => {
                    let fresh: M =
                        init_model_stream(experiment.model, experiment.seed, &stream, &device);
                    let weights = read_weights(&fresh).await?;
                    (ticket.mask.clone(), masked_weights(&weights, &ticket.mask))
                }
                _ => {
                    let mask = random_like(&ticket.mask, experiment.seed, &stream);
                    // The rewound weights the ticket started from, unmasked: θ0 or θk.
                    let rewound = if start_at == 0 {
                        theta0_weights.clone()
                    } else {
                        read_ticket(store, &source_keys.rewind())?
                            .ok_or_else(|| StoreError::Missing {
                                key: source_keys.rewind(),
                            })?
                            .weights
                    };
                    (mask.clone(), masked_weights(&rewound, &mask))
                }
            };
            let provenance = Provenance {
                run: run.clone(),
                stream,
                dataset: experiment.target.name().into(),
                ..ticket.provenance.clone()
            };
            store.write(
                &keys.branch_start(round, branch),
                &Ticket {
                    mask: mask.clone(),
                    weights: weights.clone(),
                    provenance,
                }
                .to_safetensors(),
            )?;
            observer.on_round_start(round, mask.density(), branch);
            let started = Instant::now();
            let model = load_weights(theta0.clone(), &weights);
            let outcome = train_from(
                model,
                Some(&mask),
                target_data,
                &train,
                start_at,
                None,
                observer,
            )
            .await?;
            let result =
                RoundResult::from_training(round, &mask, &outcome, started.elapsed().as_secs_f64());
            write_json(store, &key, &result)?;
            observer.on_round(&result, branch);
            results.push(result);
        }
        let [transferred, reinit, random_prune]: [RoundResult; 3] =
            results.try_into().expect("three branches");
        rounds.push(TransferRound {
            round,
            weights_remaining: transferred.weights_remaining,
            target_ticket: target_ticket.clone(),
            transferred,
            reinit,
            random_prune,
        });
    }
    Ok(TransferReport {
        run,
        source: experiment.source.name().into(),
        target: experiment.target.name().into(),
        target_dense: target_results[0].clone(),
        rounds,
    })
}

/// Test accuracy on the target against weights remaining: the target's own tickets, the
/// transferred ones and the controls, and the dense network.
pub fn accuracy_chart(report: &TransferReport) -> Chart {
    let line = |label: &str, pick: &dyn Fn(&TransferRound) -> &RoundResult| Series {
        label: label.into(),
        points: report
            .rounds
            .iter()
            .map(|r| {
                let a = 100.0 * pick(r).test_accuracy;
                (100.0 * r.weights_remaining, a, a, a)
            })
            .collect(),
    };
    let dense = 100.0 * report.target_dense.test_accuracy;
    let (lo, hi) = report
        .rounds
        .iter()
        .fold((100.0f64, 0.0f64), |(lo, hi), r| {
            (
                lo.min(100.0 * r.weights_remaining),
                hi.max(100.0 * r.weights_remaining),
            )
        });
    Chart {
        title: format!(
            "Tickets from {} trained on {}",
            report.source, report.target
        ),
        x_label: "% of weights remaining".into(),
        y_label: format!("{} test accuracy % (early stop)", report.target),
        log_x: true,
        log_y: false,
        series: vec![
            line(&format!("ticket found on {}", report.target), &|r| {
                &r.target_ticket
            }),
            line(&format!("ticket found on {}", report.source), &|r| {
                &r.transferred
            }),
            line("its mask, reinitialised", &|r| &r.reinit),
            line("random mask, same counts", &|r| &r.random_prune),
            Series {
                label: "dense".into(),
                points: vec![(lo, dense, dense, dense), (hi, dense, dense, dense)],
            },
        ],
        legend_top: false,
    }
}

/// A Markdown table, one row per round.
pub fn table(report: &TransferReport) -> String {
    let mut out = format!(
        "{} → {} (test accuracy % on {} at early stop; dense {:.2})\n\n\
         | round | % remaining | ticket found on {} | ticket from {} | reinit | random prune |\n\
         |---:|---:|---:|---:|---:|---:|\n",
        report.source,
        report.target,
        report.target,
        100.0 * report.target_dense.test_accuracy,
        report.target,
        report.source
    );
    for r in &report.rounds {
        out += &format!(
            "| {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} |\n",
            r.round,
            100.0 * r.weights_remaining,
            100.0 * r.target_ticket.test_accuracy,
            100.0 * r.transferred.test_accuracy,
            100.0 * r.reinit.test_accuracy,
            100.0 * r.random_prune.test_accuracy
        );
    }
    out
}

impl Default for TransferExperiment {
    fn default() -> Self {
        Self::new()
    }
}

impl Experiment for TransferExperiment {
    const KIND: &'static str = "transfer";
    type Report = TransferReport;
    type Error = TransferError;

    fn validate(&self) -> Result<(), ConfigError> {
        TransferExperiment::validate(self)
    }

    fn run_name(&self) -> String {
        TransferExperiment::run_name(self)
    }

    fn datasets(&self) -> Vec<DatasetKind> {
        vec![self.source, self.target]
    }

    async fn run(
        &self,
        data: &Data<'_>,
        session: &mut Session<'_>,
    ) -> Result<TransferReport, TransferError> {
        let subsets = (self.train_subset, self.eval_subset);
        let source = data.prepared(self.source, subsets, &session.device)?;
        let target = data.prepared(self.target, subsets, &session.device)?;
        run_transfer::<Net>(self, &source, &target, session).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_subsets_and_same_data_sets_are_refused() {
        assert!(TransferExperiment::new().validate().is_ok());
        assert!(
            TransferExperiment::new()
                .with_train_subset(Some(0))
                .validate()
                .is_err()
        );
        assert!(
            TransferExperiment::new()
                .with_eval_subset(Some(0))
                .validate()
                .is_err()
        );
        assert!(
            TransferExperiment::new()
                .with_target(DatasetKind::Mnist)
                .validate()
                .is_err()
        );
    }
}
