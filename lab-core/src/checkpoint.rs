//! Checkpoints inside a training run, so a killed 50,000-iteration round resumes where it was
//! instead of from iteration 0.
//!
//! A checkpoint holds everything the rest of the run depends on: the weights, the optimiser's
//! state (burn's `OptimizerRecord`, with the parameter ids it is keyed by), the number of
//! finished iterations (the data order is replayed from its seed up to there), the curve and
//! time so far, and θk once taken. It is one record, written atomically by the [`RunStore`],
//! so a kill at any moment leaves the previous checkpoint or the new one. A resumed run gives
//! the same numbers as an uninterrupted one (tested bit for bit on the CPU).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::optim::OptimizerRecord;
use burn::tensor::{Bytes, Tensor};
use serde::{Deserialize, Serialize};

use crate::params::{HostTensor, PathTracker, Weights};
use crate::store::{RunStore, StoreError};
use crate::train::{EvalPoint, TimeSplit};

/// Where and how often a training run checkpoints.
pub struct Checkpointing<'a> {
    pub store: &'a mut dyn RunStore,
    /// The record's key, e.g. `imp-…/round-03/checkpoint.bin`.
    pub key: String,
    /// Iterations between checkpoints (0 = never).
    pub every: usize,
}

/// What a run had done when it checkpointed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// The iteration the run started at (0, or k for a rewound round).
    pub start: usize,
    /// Finished iterations.
    pub iteration: usize,
    pub curve: Vec<EvalPoint>,
    pub time: TimeSplit,
    /// Wall time of the training up to this checkpoint, over every process that ran it.
    #[serde(default)]
    pub wall_seconds: f64,
}

/// A checkpoint that could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CheckpointError(pub String);

/// A decoded checkpoint.
pub struct Checkpoint {
    pub progress: Progress,
    pub weights: Weights,
    pub snapshot: Option<Weights>,
    /// Parameter path → the burn parameter id the optimiser state is keyed by.
    pub param_ids: BTreeMap<String, u64>,
    pub optimizer: OptimizerRecord,
}

#[derive(Serialize, Deserialize)]
struct Header {
    progress: Progress,
    param_ids: BTreeMap<String, u64>,
    weights: Vec<(String, Vec<usize>)>,
    snapshot: Option<Vec<(String, Vec<usize>)>>,
}

const MAGIC: &[u8; 8] = b"LTHCKPT1";

fn shapes(weights: &Weights) -> Vec<(String, Vec<usize>)> {
    weights
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect()
}

fn put_values(out: &mut Vec<u8>, weights: &Weights) {
    for tensor in weights.values() {
        for v in &tensor.values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

fn put_block(out: &mut Vec<u8>, block: &[u8]) {
    out.extend_from_slice(&(block.len() as u64).to_le_bytes());
    out.extend_from_slice(block);
}

/// Reads length-prefixed blocks.
struct Blocks<'a> {
    rest: &'a [u8],
}

impl<'a> Blocks<'a> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let size = u64::from_le_bytes(self.rest.get(..8)?.try_into().ok()?) as usize;
        let block = self.rest.get(8..8usize.checked_add(size)?)?;
        self.rest = &self.rest[8 + size..];
        Some(block)
    }
}

fn take_values(bytes: &[u8], layout: &[(String, Vec<usize>)]) -> Option<Weights> {
    let mut offset = 0;
    let mut weights = Weights::new();
    for (name, shape) in layout {
        let n: usize = shape.iter().product();
        let raw = bytes.get(offset..offset + 4 * n)?;
        offset += 4 * n;
        let values = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        weights.insert(
            name.clone(),
            HostTensor {
                shape: shape.clone(),
                values,
            },
        );
    }
    (offset == bytes.len()).then_some(weights)
}

impl Checkpoint {
    pub fn encode(self) -> Result<Vec<u8>, CheckpointError> {
        let header = Header {
            progress: self.progress,
            param_ids: self.param_ids,
            weights: shapes(&self.weights),
            snapshot: self.snapshot.as_ref().map(shapes),
        };
        let mut out = MAGIC.to_vec();
        put_block(
            &mut out,
            &serde_json::to_vec(&header).map_err(|e| CheckpointError(e.to_string()))?,
        );
        let mut values = Vec::new();
        put_values(&mut values, &self.weights);
        put_block(&mut out, &values);
        let mut values = Vec::new();
        if let Some(snapshot) = &self.snapshot {
            put_values(&mut values, snapshot);
        }
        put_block(&mut out, &values);
        let optimizer = self
            .optimizer
            .into_bytes()
            .map_err(|e| CheckpointError(format!("optimizer state: {e:?}")))?;
        put_block(&mut out, &optimizer);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |what: &str| CheckpointError(format!("corrupt checkpoint: {what}"));
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| corrupt("no header"))?;
        let mut blocks = Blocks { rest };
        let header: Header =
            serde_json::from_slice(blocks.next().ok_or_else(|| corrupt("header"))?)
                .map_err(|e| corrupt(&e.to_string()))?;
        let weights = take_values(
            blocks.next().ok_or_else(|| corrupt("weights"))?,
            &header.weights,
        )
        .ok_or_else(|| corrupt("weights"))?;
        let snapshot_bytes = blocks.next().ok_or_else(|| corrupt("snapshot"))?;
        let snapshot = match &header.snapshot {
            Some(layout) => {
                Some(take_values(snapshot_bytes, layout).ok_or_else(|| corrupt("snapshot"))?)
            }
            None => None,
        };
        let optimizer_bytes = blocks.next().ok_or_else(|| corrupt("optimizer"))?;
        if !blocks.rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        let optimizer =
            OptimizerRecord::from_bytes(Bytes::from_bytes_vec(optimizer_bytes.to_vec()))
                .map_err(|e| corrupt(&format!("optimizer: {e:?}")))?;
        Ok(Checkpoint {
            progress: header.progress,
            weights,
            snapshot,
            param_ids: header.param_ids,
            optimizer,
        })
    }

    /// Reads the checkpoint at `key`, if any (a corrupt one is an error, never silently
    /// ignored: it would restart the round).
    pub fn load(store: &dyn RunStore, key: &str) -> Result<Option<Checkpoint>, StoreError> {
        store
            .read(key)
            .map(|bytes| {
                Checkpoint::decode(&bytes).map_err(|e| StoreError::Corrupt {
                    key: key.into(),
                    reason: e.0,
                })
            })
            .transpose()
    }
}

struct IdReader {
    tracker: PathTracker,
    ids: BTreeMap<String, u64>,
}

impl ModuleVisitor for IdReader {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.ids.insert(self.tracker.path(), param.id.val());
    }
}

/// Every float parameter's burn id, by path.
pub fn param_ids<M: Module>(model: &M) -> BTreeMap<String, u64> {
    let mut reader = IdReader {
        tracker: PathTracker::default(),
        ids: BTreeMap::new(),
    };
    model.visit(&mut reader);
    reader.ids
}

struct IdSetter<'a> {
    tracker: PathTracker,
    ids: &'a BTreeMap<String, u64>,
}

impl ModuleMapper for IdSetter<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.ids.get(&self.tracker.path()) {
            Some(&id) => {
                let (_, value, mapper) = param.consume();
                Param::from_mapped_value(ParamId::from(id), value, mapper)
            }
            None => param,
        }
    }
}

/// `model` with the parameter ids of a checkpoint, so its optimiser state applies.
pub fn with_param_ids<M: Module>(model: M, ids: &BTreeMap<String, u64>) -> M {
    model.map(&mut IdSetter {
        tracker: PathTracker::default(),
        ids,
    })
}
