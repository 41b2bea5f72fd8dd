//! Reproduction protocols. `lth-lenet300`: Frankle & Carbin (ICLR 2019), LeNet-300-100 on
//! MNIST — IMP with rewinding to θ0 over several seeds, plus the random-reinit and
//! random-prune controls at chosen sparsity levels.
//!
//! A reproduction is a sweep (`lth sweep`, one IMP run per seed): this module holds the
//! protocol's settings, the rounds its controls run at, and the aggregation of finished runs
//! into its table and figures (`Reproduction::from_runs`), the same for any IMP sweep.

use std::collections::BTreeMap;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::base::model::{Architecture, ModelKind};
use crate::base::params::prunable_params;
use crate::methods::imp::ImpReport;
use crate::methods::imp::{ImpConfig, Rewind};
use crate::pruning::prune::{PruneConfig, prune_count};
use crate::training::curve::TimeSplit;
use crate::training::result::RoundResult;
use crate::training::train::TrainConfig;

/// The paper's weights-remaining levels (%) where controls run: Pm after 0, 3, 7, 9, 15, 18 rounds.
pub const LTH_LEVELS: [f64; 6] = [100.0, 51.3, 21.1, 13.5, 3.6, 1.9];

/// The paper's protocol with `budget` training iterations per run and `rounds` IMP rounds.
/// Evaluation every 100 iterations as in the paper, or every budget/50 for short budgets.
pub fn lth_lenet300(budget: usize, rounds: usize) -> ImpConfig {
    let eval_every = if budget >= 5_000 {
        100
    } else {
        (budget / 50).max(1)
    };
    ImpConfig::new()
        .with_model(ModelKind::Lenet300)
        .with_train(
            TrainConfig::new()
                .with_learning_rate(1.2e-3)
                .with_batch_size(60)
                .with_iterations(budget)
                .with_eval_every(eval_every),
        )
        .with_prune(PruneConfig::default())
        .with_rewind(Rewind::Init)
        .with_rounds(rounds)
}

/// Fraction of weights remaining after each round, from the counting rule alone.
pub fn densities<M: Architecture>(config: &ImpConfig, device: &Device) -> Vec<f64> {
    let model = M::build(config.model, device).expect("architecture matches the model");
    let mask = crate::base::mask::Mask::dense_over(&prunable_params(&model));
    let rates = config.prune_rules().layer_rates(&mask);
    let mut counts: Vec<usize> = mask.layers.iter().map(|l| l.total()).collect();
    let total: usize = counts.iter().sum();
    let mut out = Vec::with_capacity(config.rounds);
    for _ in 0..config.rounds {
        out.push(counts.iter().sum::<usize>() as f64 / total as f64);
        for (count, &rate) in counts.iter_mut().zip(&rates) {
            *count -= prune_count(*count, rate);
        }
    }
    out
}

/// For each level (% remaining), the round whose density is closest on a log scale.
pub fn rounds_for_levels(densities: &[f64], levels: &[f64]) -> Vec<usize> {
    let mut rounds: Vec<usize> = levels
        .iter()
        .filter_map(|&level| {
            (0..densities.len()).min_by(|&a, &b| {
                let d = |r: usize| (densities[r].ln() - (level / 100.0).ln()).abs();
                d(a).total_cmp(&d(b))
            })
        })
        .collect();
    rounds.sort_unstable();
    rounds.dedup();
    rounds
}

/// All runs of a reproduction: per group (ticket, reinit, random-prune), per seed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reproduction {
    pub protocol: String,
    pub budget: usize,
    pub seeds: Vec<u64>,
    pub control_rounds: Vec<usize>,
    pub backend: String,
    pub groups: BTreeMap<String, Vec<Vec<RoundResult>>>,
    /// Summed over every training run (including resumed ones, as recorded).
    pub time: TimeSplit,
    pub wall_seconds: f64,
}

/// One finished IMP run of a sweep: its report, its replicate seed and the label of the
/// settings it shares with the runs it is averaged with (empty when only the seed varies).
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub label: String,
    pub seed: u64,
    pub report: ImpReport,
}

impl Reproduction {
    /// Groups finished runs by label and branch (`ticket`, `reinit`, `random-prune`, each led
    /// by the label when there is one), one list of rounds per seed, in the order given.
    pub fn from_runs(protocol: &str, runs: &[SeedRun]) -> Reproduction {
        let mut groups: BTreeMap<String, Vec<Vec<RoundResult>>> = BTreeMap::new();
        let mut seeds: Vec<u64> = Vec::new();
        let mut control_rounds: Vec<usize> = Vec::new();
        let mut backends: Vec<String> = Vec::new();
        let mut budget = 0;
        let name = |label: &str, branch: &str| {
            if label.is_empty() {
                branch.to_string()
            } else {
                format!("{label} {branch}")
            }
        };
        for run in runs {
            if !seeds.contains(&run.seed) {
                seeds.push(run.seed);
            }
            if !backends.contains(&run.report.backend) {
                backends.push(run.report.backend.clone());
            }
            budget = budget.max(
                run.report.config["train"]["iterations"]
                    .as_u64()
                    .unwrap_or(0) as usize,
            );
            groups
                .entry(name(&run.label, "ticket"))
                .or_default()
                .push(run.report.rounds.clone());
            for (control, results) in &run.report.controls {
                control_rounds.extend(results.iter().map(|r| r.round));
                groups
                    .entry(name(&run.label, control))
                    .or_default()
                    .push(results.clone());
            }
        }
        control_rounds.sort_unstable();
        control_rounds.dedup();
        let mut time = TimeSplit::default();
        let mut wall_seconds = 0.0;
        for result in groups.values().flatten().flatten() {
            time.add(&result.time);
            wall_seconds += result.wall_seconds;
        }
        Reproduction {
            protocol: protocol.into(),
            budget,
            seeds,
            control_rounds,
            backend: backends.join(","),
            groups,
            time,
            wall_seconds,
        }
    }
}

/// Group names by label, each label's ticket first, then its controls in the paper's order.
pub fn group_order(reproduction: &Reproduction) -> Vec<&String> {
    let split = |name: &str| -> (String, usize) {
        let (label, branch) = name.rsplit_once(' ').unwrap_or(("", name));
        let rank = ["ticket", "reinit", "random-prune"]
            .iter()
            .position(|n| *n == branch)
            .unwrap_or(usize::MAX);
        (label.to_string(), rank)
    };
    let mut names: Vec<&String> = reproduction.groups.keys().collect();
    names.sort_by_key(|n| split(n));
    names
}

fn stats(values: &[f64]) -> (f64, f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let lo = values.iter().copied().fold(f64::MAX, f64::min);
    let hi = values.iter().copied().fold(f64::MIN, f64::max);
    (mean, lo, hi)
}

/// A Markdown table: per round, % remaining and for each group the test accuracy at early
/// stop and the early-stop iteration, as mean [min, max] over seeds.
pub fn markdown_table(reproduction: &Reproduction) -> String {
    let names = group_order(reproduction);
    let mut out = String::from("| round | % remaining |");
    for name in &names {
        out += &format!(" {name} test acc % | {name} early stop |");
    }
    out += "\n|---:|---:|";
    out += &"---:|---:|".repeat(names.len());
    out += "\n";
    // The rows: every round any group reached, with its density from the first group that has it.
    let rounds = reproduction
        .groups
        .values()
        .flatten()
        .flatten()
        .map(|r| r.round + 1)
        .max()
        .unwrap_or(0);
    for round in 0..rounds {
        let of_round = |runs: &Vec<Vec<RoundResult>>| -> Vec<RoundResult> {
            runs.iter()
                .filter_map(|r| r.iter().find(|x| x.round == round).cloned())
                .collect()
        };
        let Some(first) = names
            .iter()
            .find_map(|name| of_round(&reproduction.groups[*name]).into_iter().next())
        else {
            continue;
        };
        out += &format!("| {round} | {:.1} |", 100.0 * first.weights_remaining);
        for name in &names {
            let runs = of_round(&reproduction.groups[*name]);
            if runs.is_empty() {
                out += " | |";
                continue;
            }
            let acc: Vec<f64> = runs.iter().map(|r| 100.0 * r.test_accuracy).collect();
            let stop: Vec<f64> = runs.iter().map(|r| r.early_stop_iteration as f64).collect();
            let (a, a0, a1) = stats(&acc);
            let (s, s0, s1) = stats(&stop);
            out += &format!(" {a:.2} [{a0:.2}, {a1:.2}] | {s:.0} [{s0:.0}, {s1:.0}] |");
        }
        out += "\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_levels_map_to_the_paper_rounds() {
        let device = crate::base::backend::BackendKind::Ndarray.device().unwrap();
        let config = lth_lenet300(1000, 19);
        let d = densities::<crate::base::model::Net>(&config, &device);
        // Pm = (265200·0.8^k + 1000·0.9^k)/266200 within rounding.
        for (k, &pm) in d.iter().enumerate() {
            let ideal =
                (265_200.0 * 0.8f64.powi(k as i32) + 1000.0 * 0.9f64.powi(k as i32)) / 266_200.0;
            assert!((pm - ideal).abs() < 1e-4, "round {k}: {pm} vs {ideal}");
        }
        assert_eq!(rounds_for_levels(&d, &LTH_LEVELS), vec![0, 3, 7, 9, 15, 18]);
    }
}
