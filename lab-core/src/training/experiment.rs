//! One shape for every experiment, a method's run or an analysis: its config validates itself
//! and names its run by content hash; it runs (or resumes) against a [`Session`] — a device, a
//! record store and an observer — on the data sets it names, and returns a serialisable
//! report. The faces (the CLI, the browser, notebooks) run any experiment through this trait,
//! and `report::registry` finds one by its kind.

use burn::tensor::Device;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::base::data::{DatasetKind, Mnist};
use crate::base::error::ConfigError;
use crate::base::store::RunStore;
use crate::training::observer::RunObserver;
use crate::training::train::Prepared;

/// Where an experiment runs.
pub struct Session<'a> {
    pub device: Device,
    /// The backend's name, recorded with the run: a run continues on one backend only.
    pub backend: String,
    pub store: &'a mut dyn RunStore,
    pub observer: &'a mut dyn RunObserver,
}

impl<'a> Session<'a> {
    pub fn new(
        device: Device,
        backend: &str,
        store: &'a mut dyn RunStore,
        observer: &'a mut dyn RunObserver,
    ) -> Self {
        Self {
            device,
            backend: backend.to_string(),
            store,
            observer,
        }
    }
}

/// The data sets a face has loaded for an experiment, by kind.
#[derive(Default, Clone, Copy)]
pub struct Data<'a> {
    sets: [Option<&'a Mnist>; DatasetKind::ALL.len()],
}

impl<'a> Data<'a> {
    /// One data set.
    pub fn one(kind: DatasetKind, data: &'a Mnist) -> Self {
        Self::default().with(kind, data)
    }

    pub fn with(mut self, kind: DatasetKind, data: &'a Mnist) -> Self {
        self.sets[index(kind)] = Some(data);
        self
    }

    /// The data set `kind` limited to an experiment's subsets, its evaluation sets uploaded
    /// to `device`: what the training loop takes.
    pub fn prepared(
        &self,
        kind: DatasetKind,
        subsets: (Option<usize>, Option<usize>),
        device: &Device,
    ) -> Result<Prepared, ConfigError> {
        let (train, eval) = subsets;
        Ok(Prepared::new(&self.get(kind)?.limited(train, eval), device))
    }

    /// The data set `kind`, or why the face did not load it.
    pub fn get(&self, kind: DatasetKind) -> Result<&'a Mnist, ConfigError> {
        self.sets[index(kind)].ok_or_else(|| {
            ConfigError(format!(
                "the experiment needs {}, which was not loaded",
                kind.name()
            ))
        })
    }
}

fn index(kind: DatasetKind) -> usize {
    DatasetKind::ALL
        .iter()
        .position(|&k| k == kind)
        .expect("every kind is in ALL")
}

/// A method's run or an analysis, as every face runs it.
pub trait Experiment: Serialize + DeserializeOwned + Default {
    /// The registry key and the prefix of the run's name: `imp`, `pai`, `dst`, `lmc`, ….
    const KIND: &'static str;
    type Report: Serialize + DeserializeOwned;
    type Error: std::error::Error + Send + Sync + From<ConfigError> + 'static;

    /// An impossible or inconsistent setting, in words, before anything runs.
    fn validate(&self) -> Result<(), ConfigError>;

    /// `<KIND>-<hash of the non-default settings>`: the run's records directory, so a rerun
    /// finds finished work and skips it.
    fn run_name(&self) -> String;

    /// The data sets `run` reads, so a face loads only those.
    fn datasets(&self) -> Vec<DatasetKind>;

    /// Runs or resumes the experiment; finished work in the store is read back, not redone.
    // Not `Send`: browser futures live on one thread, and natively `block_on` drives them.
    #[allow(async_fn_in_trait)]
    async fn run(
        &self,
        data: &Data<'_>,
        session: &mut Session<'_>,
    ) -> Result<Self::Report, Self::Error>;
}
