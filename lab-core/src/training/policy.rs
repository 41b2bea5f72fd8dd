//! The hook through which the training loop asks, at scheduled iterations, for the next mask:
//! DST's policies (SET, RigL, GMP) and early-bird's mask watch implement [`MaskPolicy`].

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;
use crate::base::params::Weights;

/// What the loop hands a policy at an update.
pub struct UpdateContext<'a> {
    /// The finished iteration the update follows (1-based).
    pub iteration: usize,
    /// The run's total iterations.
    pub total: usize,
    /// The mask the step just trained with.
    pub mask: &'a Mask,
    /// Every weight that was active at some point of the run (ITOP's explored set).
    pub explored: &'a Mask,
    /// All parameters after the step, on the host.
    pub weights: &'a Weights,
    /// The step's dense gradient of the masked parameters (before masking), when the policy
    /// asked for it.
    pub gradient: Option<&'a Weights>,
}

/// Changes the mask during training.
pub trait MaskPolicy {
    /// Whether the mask may change after finished iteration `iteration` of `total`: host
    /// arithmetic only, asked every step; the loop syncs the device only when it is true.
    fn updates_at(&self, iteration: usize, total: usize) -> bool;
    /// Whether [`MaskPolicy::update`] needs the dense gradient of the update step.
    fn needs_gradient(&self) -> bool {
        false
    }
    /// The next mask.
    fn update(&self, context: &UpdateContext) -> Mask;
    /// The values grown connections start from, by parameter path; `None`: 0.
    fn grow_values(&self) -> Option<&Weights> {
        None
    }
}

/// One mask update, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskUpdate {
    pub iteration: usize,
    /// Fraction of the masked weights active after the update.
    pub density: f64,
    /// The ITOP rate Rs: fraction of the masked weights ever active, after the update.
    pub explored: f64,
    /// Net changes of the mask: a weight dropped and regrown in the same update (RigL's
    /// candidates include the just-dropped) counts in neither.
    pub dropped: usize,
    pub grown: usize,
}

/// Counts of weights `before` had and `after` lacks (dropped) and the reverse (grown).
pub fn changes(before: &Mask, after: &Mask) -> (usize, usize) {
    let mut dropped = 0;
    let mut grown = 0;
    for (a, b) in before.layers.iter().zip(&after.layers) {
        for (&x, &y) in a.keep.iter().zip(&b.keep) {
            dropped += usize::from(x && !y);
            grown += usize::from(!x && y);
        }
    }
    (dropped, grown)
}

/// `explored` with every weight of `mask` added.
pub fn explore(explored: &mut Mask, mask: &Mask) {
    for (e, m) in explored.layers.iter_mut().zip(&mask.layers) {
        for (x, &y) in e.keep.iter_mut().zip(&m.keep) {
            *x |= y;
        }
    }
}
