//! What a pruning round removes: single weights, whole units, or N:M groups.

use serde::{Deserialize, Serialize};

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
    /// of `m` consecutive weights along a unit's inputs, keep the `n` largest ([`crate::pruning::prune::n_of_m`]).
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
