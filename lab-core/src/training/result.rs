//! The summary of one training, as every experiment records it: a round's result.

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;
use crate::training::curve::{EvalPoint, TimeSplit};

/// One layer's share of surviving weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    pub name: String,
    /// Fraction of this layer's weights that survive.
    pub remaining: f64,
    pub remaining_weights: usize,
    pub total_weights: usize,
}

pub fn layer_report(mask: &Mask) -> Vec<LayerReport> {
    mask.layers
        .iter()
        .map(|l| LayerReport {
            name: l.name.clone(),
            remaining: l.density(),
            remaining_weights: l.remaining(),
            total_weights: l.total(),
        })
        .collect()
}

/// The result of one training run of an IMP round (ticket or control).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    pub round: usize,
    /// Fraction of prunable weights remaining.
    pub weights_remaining: f64,
    /// Iteration of minimum validation loss.
    pub early_stop_iteration: usize,
    /// Test accuracy at the early-stop iteration.
    pub test_accuracy: f64,
    pub validation_accuracy: f64,
    pub validation_loss: f64,
    /// Test accuracy at the end of training.
    pub final_test_accuracy: f64,
    pub layers: Vec<LayerReport>,
    pub curve: Vec<EvalPoint>,
    pub time: TimeSplit,
    pub wall_seconds: f64,
}
