//! Structured pruning: remove whole units (hidden neurons, convolution filters) scored by
//! the L1 or L2 norm of their incoming weights, or by any unstructured score summed per unit;
//! and compaction, which turns such a ticket into a physically smaller dense network.
//!
//! A removed unit's mask clears its incoming weights *and* the weights that read it in the
//! next weighted stage (for a convolution feeding a linear layer, its whole flattened map).
//! The masked network then computes exactly what the compacted one does: the unit still
//! outputs `relu(bias)`, but nothing reads it. The output layer's units (the classes) are
//! never removed, and every layer keeps at least one unit.
//!
//! Counting rule, as for weights ([`crate::prune`]): a round removes `round(p · n)` of a
//! layer's `n` surviving units (p = that layer's rate), the lowest scores first, ties by
//! position; global scope removes `round(p · N)` of all `N` surviving units by one threshold
//! on each unit's score divided by its layer's mean (raw norms grow with fan-in).

use serde::{Deserialize, Serialize};

use crate::mask::Mask;
use crate::model::{Net, Stage};
use crate::params::{HostTensor, Weights};
use crate::prune::{PruneConfig, PruneScope, prune_count};

/// What a pruning round removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// Single weights (the LTH paper).
    #[default]
    Weights,
    /// Whole units, scored by a norm of their incoming weights.
    Units(UnitNorm),
    /// N:M fine-grained sparsity (2:4 is what GPUs' sparse tensor cores run): in every group
    /// of `m` consecutive weights along a unit's inputs, keep the `n` largest ([`crate::prune::n_of_m`]).
    /// The first pruned round reaches the pattern; later rounds retrain the same mask.
    NOfM { n: usize, m: usize },
}

/// How a unit's incoming scores add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum UnitNorm {
    /// Σ |s| (Li et al. 2017's filter norm when s = w).
    #[default]
    L1,
    /// √Σ s².
    L2,
}

impl Granularity {
    /// `weights`, `units-l1` (also `units`), `units-l2`, or `N:M` such as `2:4`.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "weights" | "unstructured" => Some(Granularity::Weights),
            "units" | "units-l1" => Some(Granularity::Units(UnitNorm::L1)),
            "units-l2" => Some(Granularity::Units(UnitNorm::L2)),
            _ => {
                let (n, m) = text.split_once(':')?;
                Some(Granularity::NOfM {
                    n: n.trim().parse().ok()?,
                    m: m.trim().parse().ok()?,
                })
            }
        }
    }

    pub fn name(self) -> String {
        match self {
            Granularity::Weights => "weights".into(),
            Granularity::Units(UnitNorm::L1) => "units-l1".into(),
            Granularity::Units(UnitNorm::L2) => "units-l2".into(),
            Granularity::NOfM { n, m } => format!("{n}:{m}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StructuredError {
    #[error("structured pruning needs a sequential network (MLP or conv net), not this one")]
    NotSequential,
    #[error("{0} is missing from the weights or the mask")]
    Missing(String),
    #[error("no unit of {0} is read by the next layer: the output does not depend on the input")]
    EmptyLayer(String),
}

/// A weighted stage whose units can be removed, and the stage that reads them.
#[derive(Debug, Clone)]
pub struct UnitLayer {
    /// The stage's weight path.
    pub weight: String,
    pub units: usize,
    /// Flat indices (into its weight) of each unit's incoming weights.
    incoming: Vec<Vec<usize>>,
    /// The next weighted stage's weight path, and per unit the flat indices that read it.
    consumer: String,
    reading: Vec<Vec<usize>>,
}

/// The removable units of a sequential network: every weighted stage but the last.
pub fn unit_layers(stages: &[Stage]) -> Vec<UnitLayer> {
    let weighted: Vec<&Stage> = stages.iter().filter(|s| s.weight().is_some()).collect();
    weighted
        .windows(2)
        .map(|pair| {
            let (stage, next) = (pair[0], pair[1]);
            let units = stage.units();
            let incoming = (0..units)
                .map(|u| match stage {
                    Stage::Linear {
                        inputs, outputs, ..
                    } => (0..*inputs).map(|i| i * outputs + u).collect(),
                    Stage::Conv {
                        in_channels,
                        kernel,
                        ..
                    } => {
                        let cols = in_channels * kernel[0] * kernel[1];
                        (u * cols..(u + 1) * cols).collect()
                    }
                    Stage::MaxPool2 { .. } => Vec::new(),
                })
                .collect();
            let reading = (0..units)
                .map(|u| match next {
                    // A linear layer after a convolution reads each map flattened: `group`
                    // consecutive inputs per channel.
                    Stage::Linear {
                        inputs, outputs, ..
                    } => {
                        let group = inputs / units.max(1);
                        (u * group..(u + 1) * group)
                            .flat_map(|row| (0..*outputs).map(move |j| row * outputs + j))
                            .collect()
                    }
                    Stage::Conv {
                        in_channels,
                        out_channels,
                        kernel,
                        ..
                    } => {
                        let taps = kernel[0] * kernel[1];
                        let cols = in_channels * taps;
                        (0..*out_channels)
                            .flat_map(|o| (0..taps).map(move |t| o * cols + u * taps + t))
                            .collect()
                    }
                    Stage::MaxPool2 { .. } => Vec::new(),
                })
                .collect();
            UnitLayer {
                weight: stage.weight().unwrap_or_default().to_string(),
                units,
                incoming,
                consumer: next.weight().unwrap_or_default().to_string(),
                reading,
            }
        })
        .collect()
}

fn keep_of<'a>(mask: &'a Mask, path: &str) -> Result<&'a [bool], StructuredError> {
    mask.layer(path)
        .map(|l| l.keep.as_slice())
        .ok_or_else(|| StructuredError::Missing(format!("mask of {path}")))
}

/// Per unit layer, which units some later stage still reads (a unit whose reading weights
/// are all pruned contributes nothing, whatever its incoming weights).
pub fn live_units(stages: &[Stage], mask: &Mask) -> Result<Vec<Vec<bool>>, StructuredError> {
    unit_layers(stages)
        .iter()
        .map(|layer| {
            let keep = keep_of(mask, &layer.consumer)?;
            Ok(layer
                .reading
                .iter()
                .map(|idx| idx.iter().any(|&i| keep[i]))
                .collect())
        })
        .collect()
}

/// `mask` with every unit that `live` marks dead removed: its incoming and reading weights
/// cleared.
pub fn remove_units(
    stages: &[Stage],
    mask: &Mask,
    live: &[Vec<bool>],
) -> Result<Mask, StructuredError> {
    let mut out = mask.clone();
    for (layer, live) in unit_layers(stages).iter().zip(live) {
        for (u, _) in live.iter().enumerate().filter(|(_, alive)| !**alive) {
            for (path, indices) in [
                (&layer.weight, &layer.incoming[u]),
                (&layer.consumer, &layer.reading[u]),
            ] {
                let target = out
                    .layers
                    .iter_mut()
                    .find(|l| &l.name == path)
                    .ok_or_else(|| StructuredError::Missing(format!("mask of {path}")))?;
                indices.iter().for_each(|&i| target.keep[i] = false);
            }
        }
    }
    Ok(out)
}

/// Each live unit's score: the `norm` of its kept incoming entries of `scores` (magnitudes
/// for norm pruning, or any unstructured score, e.g. SNIP's).
pub fn unit_scores(
    stages: &[Stage],
    mask: &Mask,
    scores: &Weights,
    norm: UnitNorm,
) -> Result<Vec<Vec<f64>>, StructuredError> {
    unit_layers(stages)
        .iter()
        .map(|layer| {
            let keep = keep_of(mask, &layer.weight)?;
            let values = &scores
                .get(&layer.weight)
                .ok_or_else(|| StructuredError::Missing(format!("scores of {}", layer.weight)))?
                .values;
            Ok(layer
                .incoming
                .iter()
                .map(|idx| {
                    let kept = idx
                        .iter()
                        .filter(|&&i| keep[i])
                        .map(|&i| values[i].abs() as f64);
                    let score = match norm {
                        UnitNorm::L1 => kept.sum(),
                        UnitNorm::L2 => kept.map(|v| v * v).sum::<f64>().sqrt(),
                    };
                    // A unit with a NaN weight (a diverged run) goes first, as in
                    // `prune::rank`.
                    if score.is_nan() {
                        f64::NEG_INFINITY
                    } else {
                        score
                    }
                })
                .collect())
        })
        .collect()
}

/// One structured pruning round: removes units by `norm` of `scores` at `config`'s rates
/// (per layer: each layer's rate; global: `config.rate` of all units, one threshold).
pub fn prune_units(
    stages: &[Stage],
    mask: &Mask,
    scores: &Weights,
    norm: UnitNorm,
    config: &PruneConfig,
) -> Result<Mask, StructuredError> {
    let layers = unit_layers(stages);
    let mut live = live_units(stages, mask)?;
    let unit_scores = unit_scores(stages, mask, scores, norm)?;
    let rates = config.layer_rates(mask);
    let rate_of = |path: &str| {
        mask.layers
            .iter()
            .position(|l| l.name == path)
            .map_or(config.rate, |i| rates[i])
    };
    // (score, layer, unit) of every live unit, in position order.
    let candidates = |layer: usize, live: &[Vec<bool>]| -> Vec<(f64, usize, usize)> {
        (0..layers[layer].units)
            .filter(|&u| live[layer][u])
            .map(|u| (unit_scores[layer][u], layer, u))
            .collect()
    };
    let by_score = |a: &(f64, usize, usize), b: &(f64, usize, usize)| {
        a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2)))
    };
    let mut doomed = Vec::new();
    match config.scope {
        PruneScope::PerLayer => {
            for (l, layer) in layers.iter().enumerate() {
                let mut units = candidates(l, &live);
                let count = prune_count(units.len(), rate_of(&layer.weight))
                    .min(units.len().saturating_sub(1));
                units.sort_by(by_score);
                doomed.extend(units.into_iter().take(count));
            }
        }
        PruneScope::Global => {
            // A unit's norm grows with its fan-in, so raw norms would strip the layers with
            // few inputs first; one threshold applies to each unit's score relative to the
            // mean of its layer's live units.
            let mut units: Vec<_> = (0..layers.len())
                .flat_map(|l| {
                    let layer_units = candidates(l, &live);
                    let mean = layer_units
                        .iter()
                        .map(|u| u.0)
                        .filter(|s| s.is_finite())
                        .sum::<f64>()
                        / layer_units.len().max(1) as f64;
                    layer_units.into_iter().map(move |(score, l, u)| {
                        (if mean > 0.0 { score / mean } else { score }, l, u)
                    })
                })
                .collect();
            let count = prune_count(units.len(), config.rate);
            units.sort_by(by_score);
            let mut left: Vec<usize> = (0..layers.len())
                .map(|l| live[l].iter().filter(|&&a| a).count())
                .collect();
            for (_, l, u) in units {
                if doomed.len() == count {
                    break;
                }
                if left[l] > 1 {
                    left[l] -= 1;
                    doomed.push((0.0, l, u));
                }
            }
        }
    }
    for (_, l, u) in doomed {
        live[l][u] = false;
    }
    remove_units(stages, mask, &live)
}

/// A structured ticket as a smaller dense network.
#[derive(Debug)]
pub struct Compacted {
    pub net: Net,
    /// The smaller network's weights (pruned entries that remain are zero).
    pub weights: Weights,
    /// Units kept per unit layer, as [`Net::with_units`] takes them.
    pub units: Vec<usize>,
    /// Weights of the stages (biases left out), before and after.
    pub weights_before: usize,
    pub weights_after: usize,
}

/// Removes every unit no later stage reads and slices the weights to match: the result's
/// logits equal the masked network's (up to float summation order).
pub fn compact(
    net: &Net,
    weights: &Weights,
    mask: &Mask,
    device: &burn::tensor::Device,
) -> Result<Compacted, StructuredError> {
    let stages = net.stages().ok_or(StructuredError::NotSequential)?;
    let live = live_units(&stages, mask)?;
    let units: Vec<usize> = live
        .iter()
        .map(|l| l.iter().filter(|&&a| a).count())
        .collect();
    if let Some(empty) = units.iter().position(|&u| u == 0) {
        return Err(StructuredError::EmptyLayer(
            unit_layers(&stages)[empty].weight.clone(),
        ));
    }
    let mut out = Weights::new();
    let (mut before, mut after) = (0, 0);
    let tensor = |path: &str| {
        weights
            .get(path)
            .ok_or_else(|| StructuredError::Missing(path.into()))
    };
    // The kept inputs of the next weighted stage: kept units of the previous one (for the
    // first, all inputs).
    let mut previous_live: Option<&Vec<bool>> = None;
    let mut unit_layer = 0;
    for stage in &stages {
        let Some(path) = stage.weight() else { continue };
        let w = tensor(path)?;
        let keep = mask.layer(path).map(|l| l.keep.as_slice());
        let own_live = live.get(unit_layer);
        let kept_out = |u: usize| own_live.is_none_or(|l| l[u]);
        before += w.values.len();
        let value = |i: usize| {
            if keep.is_none_or(|k| k[i]) {
                w.values[i]
            } else {
                0.0
            }
        };
        let (shape, values) = match stage {
            Stage::Linear {
                inputs, outputs, ..
            } => {
                let group = previous_live.map_or(1, |l| inputs / l.len().max(1));
                let kept_in = |i: usize| previous_live.is_none_or(|l| l[i / group]);
                let rows: Vec<usize> = (0..*inputs).filter(|&i| kept_in(i)).collect();
                let cols: Vec<usize> = (0..*outputs).filter(|&j| kept_out(j)).collect();
                let values = rows
                    .iter()
                    .flat_map(|&i| cols.iter().map(move |&j| value(i * outputs + j)))
                    .collect();
                (vec![rows.len(), cols.len()], values)
            }
            Stage::Conv {
                in_channels,
                out_channels,
                kernel,
                ..
            } => {
                let taps = kernel[0] * kernel[1];
                let kept_in: Vec<usize> = (0..*in_channels)
                    .filter(|&c| previous_live.is_none_or(|l| l[c]))
                    .collect();
                let kept: Vec<usize> = (0..*out_channels).filter(|&o| kept_out(o)).collect();
                let mut values = Vec::new();
                for &o in &kept {
                    for &c in &kept_in {
                        values.extend((0..taps).map(|t| value((o * in_channels + c) * taps + t)));
                    }
                }
                (
                    vec![kept.len(), kept_in.len(), kernel[0], kernel[1]],
                    values,
                )
            }
            Stage::MaxPool2 { .. } => continue,
        };
        after += values.len();
        out.insert(path.to_string(), HostTensor { shape, values });
        if let Some(b) = stage.bias() {
            let bias = tensor(b)?;
            let values: Vec<f32> = bias
                .values
                .iter()
                .enumerate()
                .filter(|(u, _)| kept_out(*u))
                .map(|(_, &v)| v)
                .collect();
            out.insert(
                b.to_string(),
                HostTensor {
                    shape: vec![values.len()],
                    values,
                },
            );
        }
        previous_live = own_live;
        unit_layer += 1;
    }
    let smaller = net
        .with_units(&units, device)
        .ok_or(StructuredError::NotSequential)?;
    let smaller = crate::params::load_weights(smaller, &out);
    Ok(Compacted {
        net: smaller,
        weights: out,
        units,
        weights_before: before,
        weights_after: after,
    })
}

/// The random-pruning control of a structured ticket: in every unit layer, as many units as
/// `reference` keeps, chosen uniformly at random (stream `"<stream>/<weight path>"`), removed
/// from the dense mask the way [`prune_units`] removes them.
pub fn random_units_like(
    stages: &[Stage],
    reference: &Mask,
    seed: u64,
    stream: &str,
) -> Result<Mask, StructuredError> {
    let live = live_units(stages, reference)?;
    let chosen: Vec<Vec<bool>> = unit_layers(stages)
        .iter()
        .zip(&live)
        .map(|(layer, live)| {
            let kept = live.iter().filter(|&&a| a).count();
            let mut rng = crate::rng::Rng::for_purpose(seed, &format!("{stream}/{}", layer.weight));
            let mut pick = vec![false; layer.units];
            rng.permutation(layer.units)
                .into_iter()
                .take(kept)
                .for_each(|u| pick[u] = true);
            pick
        })
        .collect();
    let dense = Mask {
        layers: reference
            .layers
            .iter()
            .map(|l| crate::mask::LayerMask::dense(&l.name, &l.shape))
            .collect(),
    };
    remove_units(stages, &dense, &chosen)
}

/// Keeps the `keep[l]` highest-scoring units of every unit layer of `mask` (one shot).
pub fn keep_top_units(
    stages: &[Stage],
    mask: &Mask,
    scores: &Weights,
    norm: UnitNorm,
    keep: &[usize],
) -> Result<Mask, StructuredError> {
    let unit_scores = unit_scores(stages, mask, scores, norm)?;
    let mut live = live_units(stages, mask)?;
    for ((live, scores), &keep) in live.iter_mut().zip(&unit_scores).zip(keep) {
        let mut order: Vec<usize> = (0..live.len()).filter(|&u| live[u]).collect();
        // Highest first, ties by position.
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        order
            .iter()
            .skip(keep.max(1))
            .for_each(|&u| live[u] = false);
    }
    remove_units(stages, mask, &live)
}

/// One-shot structured pruning of a dense `mask` to about `density` of its weights: the
/// same fraction of units kept in every unit layer (the highest `norm` scores), the fraction
/// chosen by bisection so that the kept weights come closest to `density` of the total. For
/// comparisons with unstructured masks at equal parameter count.
pub fn units_to_density(
    stages: &[Stage],
    mask: &Mask,
    scores: &Weights,
    norm: UnitNorm,
    density: f64,
) -> Result<Mask, StructuredError> {
    let units: Vec<usize> = unit_layers(stages).iter().map(|l| l.units).collect();
    let target = density * mask.total() as f64;
    let at = |fraction: f64| {
        let keep: Vec<usize> = units
            .iter()
            .map(|&u| ((u as f64 * fraction).round() as usize).max(1))
            .collect();
        keep_top_units(stages, mask, scores, norm, &keep)
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..40 {
        let mid = 0.5 * (lo + hi);
        if (at(mid)?.remaining() as f64) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let (below, above) = (at(lo)?, at(hi)?);
    let gap = |m: &Mask| (m.remaining() as f64 - target).abs();
    Ok(if gap(&below) <= gap(&above) {
        below
    } else {
        above
    })
}
