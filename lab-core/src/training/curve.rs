//! What a training run measures along the way: evaluation points, where the time went, and
//! the mask of a run whose policy moves it.

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;
use crate::training::policy::MaskUpdate;

/// Metrics at one evaluation point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalPoint {
    pub iteration: usize,
    pub validation_loss: f64,
    pub validation_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
}

/// Where the wall time of a training run went (seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSplit {
    /// Building batches on the host and uploading them.
    pub data: f64,
    /// Forward, backward and optimiser steps (queued work on async devices).
    pub training: f64,
    /// Evaluation passes, including the device sync of the metric reads.
    pub evaluation: f64,
}

impl TimeSplit {
    pub fn total(&self) -> f64 {
        self.data + self.training + self.evaluation
    }

    pub fn add(&mut self, other: &TimeSplit) {
        self.data += other.data;
        self.training += other.training;
        self.evaluation += other.evaluation;
    }
}

/// The mask of a run whose policy changes it, with what ITOP tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskDynamics {
    pub mask: Mask,
    /// Every weight active at some point so far.
    pub explored: Mask,
    pub updates: Vec<MaskUpdate>,
}
