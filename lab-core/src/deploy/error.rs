//! Why inference or its benchmark (dense, sparse, compacted) failed, with its cause kept.

use crate::base::error::DeviceError;

/// Why inference or its benchmark (dense, sparse, compacted) failed, with its cause kept.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("sparse engine: {0}")]
    Sparse(#[from] crate::deploy::sparse::SparseError),
    #[error("structured pruning: {0}")]
    Structured(#[from] crate::pruning::units::StructuredError),
}
