//! How alike two masks are: the Jaccard overlap of their kept weights, overall and per layer,
//! against what two independent random masks with the same counts would share (chance), and
//! the normalised Hamming distance.

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;

/// Two masks that do not cover the same layers with the same shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("masks do not match: {0}")]
pub struct OverlapError(String);

/// The overlap of one layer (or of all layers together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerOverlap {
    pub name: String,
    /// Weights kept by both masks.
    pub both: usize,
    /// Weights kept by either.
    pub either: usize,
    /// both / either; 1 for two masks that keep nothing.
    pub jaccard: f64,
    /// The mean Jaccard of two independent uniformly random masks with these counts.
    pub chance: f64,
}

/// The overlap of two masks, overall and per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overlap {
    pub total: LayerOverlap,
    pub layers: Vec<LayerOverlap>,
}

/// Expected |a ∧ b| / |a ∨ b| for independent uniformly random subsets of sizes `ka` and `kb`
/// of `n` positions, to first order: E|a ∧ b| = ka·kb/n over E|a ∨ b| = ka + kb − ka·kb/n.
pub fn chance_jaccard(n: usize, ka: usize, kb: usize) -> f64 {
    if n == 0 || ka + kb == 0 {
        return 1.0;
    }
    let both = ka as f64 * kb as f64 / n as f64;
    both / (ka as f64 + kb as f64 - both)
}

fn ratio(both: usize, either: usize) -> f64 {
    if either == 0 {
        1.0
    } else {
        both as f64 / either as f64
    }
}

/// The overlap of `a` and `b`, which must cover the same layers (names and shapes, in order).
pub fn overlap(a: &Mask, b: &Mask) -> Result<Overlap, OverlapError> {
    if a.layers.len() != b.layers.len() {
        return Err(OverlapError(format!(
            "{} layers against {}",
            a.layers.len(),
            b.layers.len()
        )));
    }
    let mut layers = Vec::with_capacity(a.layers.len());
    let (mut both_all, mut either_all, mut chance_both, mut chance_either) = (0, 0, 0.0, 0.0);
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        if la.name != lb.name || la.shape != lb.shape {
            return Err(OverlapError(format!(
                "{} {:?} against {} {:?}",
                la.name, la.shape, lb.name, lb.shape
            )));
        }
        let both = la
            .keep
            .iter()
            .zip(&lb.keep)
            .filter(|(x, y)| **x && **y)
            .count();
        let either = la
            .keep
            .iter()
            .zip(&lb.keep)
            .filter(|(x, y)| **x || **y)
            .count();
        let (n, ka, kb) = (la.total(), la.remaining(), lb.remaining());
        let expected_both = if n == 0 {
            0.0
        } else {
            ka as f64 * kb as f64 / n as f64
        };
        chance_both += expected_both;
        chance_either += ka as f64 + kb as f64 - expected_both;
        both_all += both;
        either_all += either;
        layers.push(LayerOverlap {
            name: la.name.clone(),
            both,
            either,
            jaccard: ratio(both, either),
            chance: chance_jaccard(n, ka, kb),
        });
    }
    let total = LayerOverlap {
        name: "all".into(),
        both: both_all,
        either: either_all,
        jaccard: ratio(both_all, either_all),
        chance: if chance_either == 0.0 {
            1.0
        } else {
            chance_both / chance_either
        },
    };
    Ok(Overlap { total, layers })
}

/// The normalised Hamming distance of two masks over the same layers: the fraction of all
/// their positions kept by one and pruned by the other (early-bird tickets' mask distance).
pub fn hamming(a: &Mask, b: &Mask) -> Result<f64, OverlapError> {
    let (mut flips, mut total) = (0usize, 0usize);
    if a.layers.len() != b.layers.len() {
        return Err(OverlapError(format!(
            "{} layers against {}",
            a.layers.len(),
            b.layers.len()
        )));
    }
    for (la, lb) in a.layers.iter().zip(&b.layers) {
        if la.name != lb.name || la.shape != lb.shape {
            return Err(OverlapError(format!(
                "{} {:?} against {} {:?}",
                la.name, la.shape, lb.name, lb.shape
            )));
        }
        flips += la.keep.iter().zip(&lb.keep).filter(|(x, y)| x != y).count();
        total += la.total();
    }
    Ok(if total == 0 {
        0.0
    } else {
        flips as f64 / total as f64
    })
}
