//! Errors shared by several modules. Each module has its own error enum (`TrainError`,
//! `ImpError`, `PaiError`, `StoreError`, `DataError`, …) that keeps these as sources; the
//! follow-up analyses (`lmc`, `early_bird`, `transfer`), which train through IMP, share
//! [`AnalysisError`].

/// An impossible or inconsistent setting, said in words (e.g. "rounds must be at least 1").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// An experiment's data subsets: `None` (all) or at least one example.
    pub fn check_subsets(train: Option<usize>, eval: Option<usize>) -> Result<(), ConfigError> {
        if train == Some(0) || eval == Some(0) {
            return Err(ConfigError::new(
                "train_subset and eval_subset must be at least 1",
            ));
        }
        Ok(())
    }
}

/// A read from a device (a lost GPU, a failed buffer map) that did not complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("reading {what} from the device failed: {reason}")]
pub struct DeviceError {
    pub what: String,
    pub reason: String,
}

impl DeviceError {
    pub fn new(what: &str, reason: impl std::fmt::Debug) -> Self {
        Self {
            what: what.into(),
            reason: format!("{reason:?}"),
        }
    }
}

/// Why a follow-up analysis (linear mode connectivity, early-bird tickets, transfer) failed,
/// with its cause kept.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("training: {0}")]
    Train(#[from] crate::train::TrainError),
    #[error("IMP: {0}")]
    Imp(#[from] crate::imp::ImpError),
    #[error("records: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Why inference or its benchmark (dense, sparse, compacted) failed, with its cause kept.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("sparse engine: {0}")]
    Sparse(#[from] crate::sparse::SparseError),
    #[error("structured pruning: {0}")]
    Structured(#[from] crate::structured::StructuredError),
}
