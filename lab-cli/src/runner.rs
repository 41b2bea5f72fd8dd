//! The one way a command runs experiments: the shared execution flags, then any lab-core
//! [`Experiment`] with its data sets loaded once, records under `OUT/records`, progress on
//! stderr, and the report so far handed to the caller after every finished part.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use lab_core::base::data::{DatasetKind, Mnist};
use lab_core::base::store::DirStore;
use lab_core::burn::tensor::Device;
use lab_core::training::experiment::{Data, Experiment, Session};

use crate::args::RunArgs;
use crate::data::load_data;
use crate::progress::Progress;

/// Runs experiments of one command on one device and one record store.
pub struct Runner {
    args: RunArgs,
    pub device: Device,
    pub store: DirStore,
    pub progress: Progress,
    loaded: BTreeMap<&'static str, Mnist>,
}

impl Runner {
    /// A runner whose records go to `OUT/records`.
    pub fn new(args: &RunArgs, out: &Path) -> Result<Self> {
        Ok(Self {
            device: args.backend.device()?,
            store: DirStore::new(out.join("records")),
            progress: Progress::new(args.quiet),
            loaded: BTreeMap::new(),
            args: args.clone(),
        })
    }

    /// A data set, loaded (and checked) the first time it is asked for.
    pub fn dataset(&mut self, kind: DatasetKind) -> Result<&Mnist> {
        if !self.loaded.contains_key(kind.name()) {
            let data = load_data(
                kind,
                self.args.data.clone(),
                self.args.download,
                self.args.quiet,
            )?;
            self.loaded.insert(kind.name(), data);
        }
        Ok(&self.loaded[kind.name()])
    }

    /// Runs (or resumes) `experiment`; `on_part` sees the report so far after every finished
    /// part (a branch, a point), so the caller can keep what is finished if a later part fails.
    pub fn run<E: Experiment>(
        &mut self,
        experiment: &E,
        on_part: impl FnMut(&serde_json::Value) -> Result<()> + 'static,
    ) -> Result<E::Report> {
        experiment.validate()?;
        for kind in experiment.datasets() {
            self.dataset(kind)?;
        }
        let data = self
            .loaded
            .values()
            .fold(Data::default(), |data, set| data.with(set.kind, set));
        self.progress.on_part = Some(Box::new(on_part));
        let mut session = Session {
            device: self.device.clone(),
            backend: self.args.backend.0.name().into(),
            store: &mut self.store,
            observer: &mut self.progress,
        };
        let report = lab_core::block_on(experiment.run(&data, &mut session));
        self.progress.on_part = None;
        // The run's own error first; then a part that could not be saved is one too.
        let report = report?;
        if let Some(error) = self.progress.part_error.take() {
            return Err(error);
        }
        Ok(report)
    }
}
