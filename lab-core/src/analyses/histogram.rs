//! Weight histograms of an IMP round, per layer: the trained weights before pruning (those
//! the round's mask keeps), the ones pruning keeps (the next round's mask), the same
//! positions after retraining (the next round's trained weights), and their rewound values
//! (θ0 or θk of the survivors: the ticket). Magnitude pruning cuts the middle out of the
//! distribution; retraining spreads the survivors again.
//!
//! Every stage counts each of its weights exactly once: values outside the layer's range
//! (shared by all stages) cannot occur, since the range is taken over all of them.

use serde::{Deserialize, Serialize};

use crate::base::chart::{Chart, Series};
use crate::base::keys::RunKeys;
use crate::base::mask::{LayerMask, Mask};
use crate::base::params::Weights;
use crate::base::store::{RunStore, StoreError};
use crate::base::ticket::read_ticket;

/// Counts of one layer's weights in `bins` equal bins over [lo, hi].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    pub stage: String,
    pub counts: Vec<usize>,
    /// The weights counted (the stage's survivors): the bins' sum plus `non_finite`.
    pub total: usize,
    /// NaN or infinite weights (a diverged run), counted here and in no bin.
    #[serde(default)]
    pub non_finite: usize,
    pub mean_abs: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerHistograms {
    pub name: String,
    pub lo: f64,
    pub hi: f64,
    pub bins: usize,
    pub stages: Vec<Histogram>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundHistograms {
    pub run: String,
    pub round: usize,
    pub layers: Vec<LayerHistograms>,
}

/// The bin of `value` among `bins` over [lo, hi]; hi itself falls in the last bin.
pub fn bin_of(value: f64, lo: f64, hi: f64, bins: usize) -> usize {
    if hi <= lo {
        return 0;
    }
    let at = ((value - lo) / (hi - lo) * bins as f64).floor();
    (at.max(0.0) as usize).min(bins - 1)
}

/// Why histograms could not be drawn from a run's records.
#[derive(Debug, thiserror::Error)]
pub enum HistogramError {
    #[error("records: {0}")]
    Store(#[from] StoreError),
    #[error("no weights for {0}")]
    MissingWeights(String),
    #[error("{stage}: no mask for {layer}")]
    MissingMask { stage: String, layer: String },
    #[error("{0}: weights and mask differ in size")]
    SizeMismatch(String),
}

/// The kept values of a layer.
fn kept(weights: &Weights, layer: &LayerMask) -> Result<Vec<f32>, HistogramError> {
    let tensor = weights
        .get(&layer.name)
        .ok_or_else(|| HistogramError::MissingWeights(layer.name.clone()))?;
    if tensor.values.len() != layer.keep.len() {
        return Err(HistogramError::SizeMismatch(layer.name.clone()));
    }
    Ok(tensor
        .values
        .iter()
        .zip(&layer.keep)
        .filter(|(_, keep)| **keep)
        .map(|(&v, _)| v)
        .collect())
}

/// Histograms of the named stages, each (weights, mask), layer by layer over a shared range.
pub fn histograms(
    stages: &[(&str, &Weights, &Mask)],
    bins: usize,
) -> Result<Vec<LayerHistograms>, HistogramError> {
    let bins = bins.max(1);
    let Some((_, _, first)) = stages.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(first.layers.len());
    for (l, layer) in first.layers.iter().enumerate() {
        let values: Vec<(&str, Vec<f32>)> = stages
            .iter()
            .map(|(stage, weights, mask)| {
                let layer = mask
                    .layers
                    .get(l)
                    .filter(|m| m.name == layer.name)
                    .ok_or_else(|| HistogramError::MissingMask {
                        stage: stage.to_string(),
                        layer: layer.name.clone(),
                    })?;
                Ok((*stage, kept(weights, layer)?))
            })
            .collect::<Result<_, HistogramError>>()?;
        let extreme = values
            .iter()
            .flat_map(|(_, v)| v.iter())
            .filter(|v| v.is_finite())
            .fold(0f64, |m, &v| m.max(f64::from(v).abs()));
        let (lo, hi) = if extreme > 0.0 {
            (-extreme, extreme)
        } else {
            (-1.0, 1.0)
        };
        let stages = values
            .iter()
            .map(|(stage, v)| {
                let mut counts = vec![0usize; bins];
                let finite: Vec<f32> = v.iter().copied().filter(|x| x.is_finite()).collect();
                for &x in &finite {
                    counts[bin_of(f64::from(x), lo, hi, bins)] += 1;
                }
                Histogram {
                    stage: stage.to_string(),
                    counts,
                    total: v.len(),
                    non_finite: v.len() - finite.len(),
                    mean_abs: if finite.is_empty() {
                        0.0
                    } else {
                        finite.iter().map(|x| f64::from(x.abs())).sum::<f64>() / finite.len() as f64
                    },
                }
            })
            .collect();
        out.push(LayerHistograms {
            name: layer.name.clone(),
            lo,
            hi,
            bins,
            stages,
        });
    }
    Ok(out)
}

/// The histograms of round `round` of the IMP run `run` from its records: its trained
/// weights before and after pruning, the survivors after retraining (round + 1), and their
/// rewound values where the run rewinds.
pub fn imp_round_histograms(
    store: &dyn RunStore,
    run: &str,
    round: usize,
    bins: usize,
) -> Result<RoundHistograms, HistogramError> {
    let keys = RunKeys { run: run.into() };
    let load = |key: String| -> Result<crate::base::ticket::Ticket, HistogramError> {
        read_ticket(store, &key)?.ok_or_else(|| {
            HistogramError::Store(StoreError::Missing {
                key: format!(
                    "{key} (rounds {round} and {} must be finished; runs made before the lab \
                     kept every round's trained weights need a fresh --out)",
                    round + 1
                ),
            })
        })
    };
    let before = load(keys.trained(round))?;
    let after = load(keys.trained(round + 1))?;
    let rewound = read_ticket(store, &keys.ticket(round + 1))?;
    let mut stages: Vec<(&str, &Weights, &Mask)> = vec![
        ("trained, before pruning", &before.weights, &before.mask),
        ("kept by pruning", &before.weights, &after.mask),
        ("after retraining", &after.weights, &after.mask),
    ];
    if let Some(ticket) = &rewound {
        stages.push(("rewound (the ticket)", &ticket.weights, &ticket.mask));
    }
    let layers = histograms(&stages, bins)?;
    Ok(RoundHistograms {
        run: run.into(),
        round,
        layers,
    })
}

/// One layer's stages as lines over the bin centres (log y: the pruned gap shows).
pub fn layer_chart(layer: &LayerHistograms, round: usize) -> Chart {
    let width = (layer.hi - layer.lo) / layer.bins as f64;
    let series = layer
        .stages
        .iter()
        .map(|h| Series {
            label: format!("{} ({})", h.stage, h.total),
            points: h
                .counts
                .iter()
                .enumerate()
                .map(|(i, &c)| {
                    let x = layer.lo + (i as f64 + 0.5) * width;
                    let y = (c as f64).max(0.5);
                    (x, y, y, y)
                })
                .collect(),
        })
        .collect();
    Chart {
        title: format!("{}: weights of round {round} and {}", layer.name, round + 1),
        x_label: "weight value".into(),
        y_label: "weights per bin (an empty bin drawn at 0.5)".into(),
        log_x: false,
        log_y: true,
        series,
        legend_top: true,
    }
}

/// A Markdown table: per layer and stage, the weights counted and their mean |w|.
pub fn table(histograms: &RoundHistograms) -> String {
    let mut out = String::from("| layer | stage | weights | mean abs(w) |\n|---|---|---:|---:|\n");
    for layer in &histograms.layers {
        for h in &layer.stages {
            out += &format!(
                "| {} | {} | {} | {:.5} |\n",
                layer.name, h.stage, h.total, h.mean_abs
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::params::HostTensor;

    #[test]
    fn every_survivor_is_counted_once_in_its_bin() {
        let weights: Weights = [(
            "w".to_string(),
            HostTensor {
                shape: vec![6],
                values: vec![-2.0, -0.5, 0.0, 0.25, 1.0, 2.0],
            },
        )]
        .into();
        let mut mask = Mask {
            layers: vec![LayerMask::dense("w", &[6])],
        };
        let all = histograms(&[("all", &weights, &mask)], 4).unwrap();
        // Range [-2, 2], bins of 1: -2 → 0, -0.5 → 1, 0 → 2, 0.25 → 2, 1 → 3, 2 → 3 (the top edge).
        assert_eq!(all[0].stages[0].counts, vec![1, 1, 2, 2]);
        assert_eq!(all[0].stages[0].total, 6);
        mask.layers[0].keep = vec![true, false, false, true, true, false];
        let some = histograms(&[("all", &weights, &mask)], 4).unwrap();
        // The range follows the survivors: [-2, 2] still (|-2| survives).
        assert_eq!(some[0].stages[0].counts, vec![1, 0, 1, 1]);
        assert_eq!(
            some[0].stages[0].counts.iter().sum::<usize>(),
            mask.remaining()
        );
        assert_eq!(bin_of(5.0, -1.0, 1.0, 4), 3);
        assert_eq!(bin_of(-5.0, -1.0, 1.0, 4), 0);
    }
}
