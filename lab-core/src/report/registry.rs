//! Every experiment by its kind, one line each: a face that holds a kind and a JSON config
//! (the browser, a sweep file, a notebook cell) runs it here. Adding a method or an analysis
//! is its own file implementing [`Experiment`] and one line below.

use serde_json::Value;

use crate::analyses::early_bird::EarlyBirdRun;
use crate::analyses::lmc::LmcRun;
use crate::analyses::transfer::TransferExperiment;
use crate::base::data::DatasetKind;
use crate::base::error::ConfigError;
use crate::base::naming::with_defaults;
use crate::methods::dst::DstRun;
use crate::methods::imp::ImpExperiment;
use crate::methods::pai::PaiExperiment;
use crate::training::experiment::{Data, Experiment, Session};

/// Why a run by kind did not give a report, with the experiment's own error kept.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("no experiment is called `{0}` (known: {known})", known = KINDS.join(", "))]
    UnknownKind(String),
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error("{kind}: {source}")]
    Failed {
        kind: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a face needs to know of a config before it runs: its run and its data sets.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub run_name: String,
    pub datasets: Vec<DatasetKind>,
}

macro_rules! registry {
    ($($experiment:ty),* $(,)?) => {
        /// The kinds, as `run_json` takes them.
        pub const KINDS: &[&str] = &[$(<$experiment as Experiment>::KIND),*];

        /// Runs (or resumes) the experiment `kind` whose settings are `config`: partial JSON
        /// over the experiment's defaults (unknown keys are errors). Returns its report.
        pub async fn run_json(
            kind: &str,
            config: Value,
            data: &Data<'_>,
            session: &mut Session<'_>,
        ) -> Result<Value, RunError> {
            $(if kind == <$experiment as Experiment>::KIND {
                return run_as::<$experiment>(config, data, session).await;
            })*
            Err(RunError::UnknownKind(kind.into()))
        }

        /// The run name and data sets of the experiment `kind` with settings `config`.
        pub fn describe(kind: &str, config: Value) -> Result<Described, RunError> {
            $(if kind == <$experiment as Experiment>::KIND {
                return describe_as::<$experiment>(config);
            })*
            Err(RunError::UnknownKind(kind.into()))
        }
    };
}

registry!(
    ImpExperiment,
    PaiExperiment,
    DstRun,
    LmcRun,
    EarlyBirdRun,
    TransferExperiment,
);

fn parse<E: Experiment>(config: Value) -> Result<E, ConfigError> {
    let experiment: E = with_defaults(&E::default(), config)?;
    experiment.validate()?;
    Ok(experiment)
}

fn describe_as<E: Experiment>(config: Value) -> Result<Described, RunError> {
    let experiment = parse::<E>(config)?;
    Ok(Described {
        run_name: experiment.run_name(),
        datasets: experiment.datasets(),
    })
}

async fn run_as<E: Experiment>(
    config: Value,
    data: &Data<'_>,
    session: &mut Session<'_>,
) -> Result<Value, RunError> {
    let experiment = parse::<E>(config)?;
    let failed = |source: Box<dyn std::error::Error + Send + Sync>| RunError::Failed {
        kind: E::KIND,
        source,
    };
    let report = experiment
        .run(data, session)
        .await
        .map_err(|e| failed(Box::new(e)))?;
    serde_json::to_value(&report).map_err(|e| failed(Box::new(e)))
}
