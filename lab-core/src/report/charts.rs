//! The LTH charts of IMP rounds: accuracy and early stop against weights remaining, curves.

use crate::base::chart::{Chart, Series};
use crate::training::curve::EvalPoint;
use crate::training::result::RoundResult;

/// Groups runs by round number and summarises `metric` as (% remaining, mean, min, max).
pub fn summarise(
    runs: &[Vec<RoundResult>],
    metric: impl Fn(&RoundResult) -> f64,
) -> Vec<(f64, f64, f64, f64)> {
    let mut by_round: std::collections::BTreeMap<usize, Vec<&RoundResult>> = Default::default();
    for result in runs.iter().flatten() {
        by_round.entry(result.round).or_default().push(result);
    }
    by_round
        .values()
        .map(|found| {
            let values: Vec<f64> = found.iter().map(|r| metric(r)).collect();
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let lo = values.iter().copied().fold(f64::MAX, f64::min);
            let hi = values.iter().copied().fold(f64::MIN, f64::max);
            let remaining =
                found.iter().map(|r| r.weights_remaining).sum::<f64>() / found.len() as f64;
            (100.0 * remaining, mean, lo, hi)
        })
        .collect()
}

/// Test accuracy at early stop vs % of weights remaining (the LTH figure), one line per
/// labelled group of runs (e.g. ticket, reinit, random-prune; several seeds each).
pub fn accuracy_vs_remaining(groups: &[(String, Vec<Vec<RoundResult>>)]) -> Chart {
    let title = "Test accuracy at early stop";
    let mut chart = vs_remaining(groups, title, "test accuracy (%)", |r| {
        100.0 * r.test_accuracy
    });
    // Accuracy falls to the right (fewer weights): the legend goes top right.
    chart.legend_top = true;
    chart
}

/// Early-stop iteration vs % of weights remaining.
pub fn early_stop_vs_remaining(groups: &[(String, Vec<Vec<RoundResult>>)]) -> Chart {
    let title = "Early-stop iteration (minimum validation loss)";
    vs_remaining(groups, title, "iteration", |r| {
        r.early_stop_iteration as f64
    })
}

/// `metric` of each group's rounds against % of weights remaining, on the paper's log axis.
fn vs_remaining(
    groups: &[(String, Vec<Vec<RoundResult>>)],
    title: &str,
    y_label: &str,
    metric: impl Fn(&RoundResult) -> f64 + Copy,
) -> Chart {
    Chart {
        title: title.into(),
        x_label: "% of weights remaining (log)".into(),
        y_label: y_label.into(),
        log_x: true,
        log_y: false,
        legend_top: false,
        series: groups
            .iter()
            .map(|(label, runs)| Series {
                label: label.clone(),
                points: summarise(runs, metric),
            })
            .collect(),
    }
}

/// Test accuracy during training, one line per labelled run.
pub fn training_curves(curves: &[(String, Vec<EvalPoint>)]) -> Chart {
    Chart {
        title: "Test accuracy during training".into(),
        x_label: "iteration".into(),
        y_label: "test accuracy (%)".into(),
        log_x: false,
        log_y: false,
        legend_top: false,
        series: curves
            .iter()
            .map(|(label, curve)| Series {
                label: label.clone(),
                points: curve
                    .iter()
                    .map(|p| {
                        let y = 100.0 * p.test_accuracy;
                        (p.iteration as f64, y, y, y)
                    })
                    .collect(),
            })
            .collect(),
    }
}
