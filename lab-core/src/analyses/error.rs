//! The error the follow-up analyses that train through IMP (linear mode connectivity,
//! early-bird tickets, transfer) share, with its cause kept.

use crate::base::error::{ConfigError, DeviceError};

/// Why a follow-up analysis (linear mode connectivity, early-bird tickets, transfer) failed,
/// with its cause kept.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("training: {0}")]
    Train(#[from] crate::training::train::TrainError),
    #[error("IMP: {0}")]
    Imp(#[from] crate::methods::imp::ImpError),
    #[error("records: {0}")]
    Store(#[from] crate::base::store::StoreError),
}
