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
//! Counting rule, as for weights ([`crate::pruning::prune`]): a round removes `round(p · n)` of a
//! layer's `n` surviving units (p = that layer's rate), the lowest scores first, ties by
//! position; global scope removes `round(p · N)` of all `N` surviving units by one threshold
//! on each unit's score divided by its layer's mean (raw norms grow with fan-in).

use crate::base::mask::Mask;
use crate::base::model::Stage;
use crate::base::params::Weights;
use crate::pruning::granularity::UnitNorm;
use crate::pruning::prune::{PruneConfig, PruneScope, prune_count};

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
            let mut rng =
                crate::base::rng::Rng::for_purpose(seed, &format!("{stream}/{}", layer.weight));
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
            .map(|l| crate::base::mask::LayerMask::dense(&l.name, &l.shape))
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
