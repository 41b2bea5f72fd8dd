//! One magnitude-pruning round at any granularity.

use crate::base::mask::Mask;
use crate::base::model::Stage;
use crate::base::params::Weights;
use crate::pruning::granularity::Granularity;
use crate::pruning::prune::{PruneConfig, magnitude, magnitudes, n_of_m};
use crate::pruning::units::{self, StructuredError};

/// One magnitude round at `config`'s granularity: [`magnitude`] for weights, the units'
/// norms of their weights ([`units::prune_units`]) for units, which need the network's
/// `stages`.
pub fn magnitude_round(
    mask: &Mask,
    weights: &Weights,
    config: &PruneConfig,
    stages: Option<&[Stage]>,
) -> Result<Mask, StructuredError> {
    match config.granularity {
        Granularity::Weights => Ok(magnitude(mask, weights, config)),
        Granularity::NOfM { n, m } => Ok(n_of_m(mask, &magnitudes(weights), n, m)),
        Granularity::Units(norm) => {
            let stages = stages.ok_or(StructuredError::NotSequential)?;
            units::prune_units(stages, mask, weights, norm, config)
        }
    }
}
