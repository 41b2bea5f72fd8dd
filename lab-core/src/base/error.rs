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
