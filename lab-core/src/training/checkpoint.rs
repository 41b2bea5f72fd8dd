//! Checkpoints inside a training run, so a killed 50,000-iteration round resumes where it was
//! instead of from iteration 0.
//!
//! A checkpoint holds everything the rest of the run depends on: the weights, the optimiser's
//! state (by parameter path), the number of finished iterations (the data order is replayed
//! from its seed up to there), the curve and time so far, θk once taken, and a changing
//! mask with its explored set (dynamic sparse training). It is one record, written atomically by the [`RunStore`],
//! so a kill at any moment leaves the previous checkpoint or the new one. A resumed run gives
//! the same numbers as an uninterrupted one (tested bit for bit on the CPU).

use serde::{Deserialize, Serialize};

use crate::base::error::ConfigError;
use crate::base::params::{HostTensor, Weights};
use crate::base::store::{RunStore, StoreError};
use crate::training::curve::{EvalPoint, MaskDynamics, TimeSplit};
use crate::training::optim::OptimizerState;
use crate::training::policy::MaskUpdate;
use crate::training::sparse::Kernel;

/// Where and how often a training run checkpoints.
pub struct Checkpointing<'a> {
    pub store: &'a mut dyn RunStore,
    /// The record's key, e.g. `imp-…/round-03/checkpoint.bin`.
    pub key: String,
    /// Iterations between checkpoints (0 = never).
    pub every: usize,
}

impl Checkpointing<'_> {
    /// Whether the run checkpoints after finished iteration `iteration` of `total` (never
    /// after the last: the finished round's own record replaces the checkpoint).
    pub fn due(&self, iteration: usize, total: usize) -> bool {
        self.every > 0 && iteration.is_multiple_of(self.every) && iteration < total
    }

    /// The checkpoint to resume from, if one was saved.
    pub fn load(&self) -> Result<Option<Checkpoint>, StoreError> {
        Checkpoint::load(&*self.store, &self.key)
    }

    /// Writes `checkpoint` over the previous one (atomically: a kill leaves one or the other).
    pub fn save(&mut self, checkpoint: Checkpoint) -> Result<(), StoreError> {
        let bytes = checkpoint.encode().map_err(|e| StoreError::Corrupt {
            key: self.key.clone(),
            reason: e.0,
        })?;
        self.store.write(&self.key, &bytes)
    }
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
    /// The mask, explored set and updates of a run whose mask changes.
    #[serde(default)]
    pub dynamics: Option<MaskDynamics>,
    /// The kernel the steps ran with (checkpoints from before kernels existed: dense).
    #[serde(default)]
    pub kernel: Kernel,
}

impl Progress {
    /// Refuses to resume a run that is not the one this checkpoint was saved by: another
    /// start, a shorter schedule, a mask that moves in one and not the other, or another
    /// kernel (its numbers differ in the last bits: a run is not mixed from two).
    pub fn check_resumes(
        &self,
        start: usize,
        iterations: usize,
        moving_mask: bool,
        kernel: Kernel,
    ) -> Result<(), ConfigError> {
        if self.kernel != kernel {
            return Err(ConfigError(format!(
                "the checkpoint was trained with the {} kernel, this run uses the {} kernel",
                self.kernel.name(),
                kernel.name()
            )));
        }
        if self.start != start || self.iteration > iterations {
            return Err(ConfigError(format!(
                "the checkpoint ran from iteration {} to {}, this run goes from {start} to {iterations}",
                self.start, self.iteration
            )));
        }
        if self.dynamics.is_some() != moving_mask {
            return Err(ConfigError::new(
                "the checkpoint and this run disagree on whether the mask changes",
            ));
        }
        Ok(())
    }
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
    pub optimizer: OptimizerState,
}

/// The floats of the curve and of the mask updates as bits: serde_json's parser may miss the
/// last bit of an f64, and a resumed run must report exactly what an uninterrupted one does.
#[derive(Serialize, Deserialize)]
struct ExactFloats {
    curve: Vec<(usize, [u64; 4])>,
    updates: Vec<(usize, u64, u64, usize, usize)>,
}

impl ExactFloats {
    /// Moves the curve and the updates out of `progress` into bits.
    fn take(progress: &mut Progress) -> Self {
        let curve = std::mem::take(&mut progress.curve)
            .into_iter()
            .map(|p| {
                let values = [
                    p.validation_loss,
                    p.validation_accuracy,
                    p.test_loss,
                    p.test_accuracy,
                ];
                (p.iteration, values.map(f64::to_bits))
            })
            .collect();
        let updates = progress
            .dynamics
            .as_mut()
            .map(|d| std::mem::take(&mut d.updates))
            .unwrap_or_default()
            .into_iter()
            .map(|u| {
                (
                    u.iteration,
                    u.density.to_bits(),
                    u.explored.to_bits(),
                    u.dropped,
                    u.grown,
                )
            })
            .collect();
        Self { curve, updates }
    }

    /// Puts them back.
    fn restore(self, progress: &mut Progress) {
        progress.curve = self
            .curve
            .into_iter()
            .map(|(iteration, bits)| {
                let [
                    validation_loss,
                    validation_accuracy,
                    test_loss,
                    test_accuracy,
                ] = bits.map(f64::from_bits);
                EvalPoint {
                    iteration,
                    validation_loss,
                    validation_accuracy,
                    test_loss,
                    test_accuracy,
                }
            })
            .collect();
        if let Some(dynamics) = progress.dynamics.as_mut() {
            dynamics.updates = self
                .updates
                .into_iter()
                .map(
                    |(iteration, density, explored, dropped, grown)| MaskUpdate {
                        iteration,
                        density: f64::from_bits(density),
                        explored: f64::from_bits(explored),
                        dropped,
                        grown,
                    },
                )
                .collect();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Header {
    progress: Progress,
    exact: ExactFloats,
    weights: Vec<(String, Vec<usize>)>,
    snapshot: Option<Vec<(String, Vec<usize>)>>,
    optimizer_time: usize,
    optimizer: Vec<(String, Vec<usize>)>,
}

/// v2: the optimiser state by parameter path (v1 held burn's record, keyed by parameter id).
const MAGIC: &[u8; 8] = b"LTHCKPT2";
const MAGIC_V1: &[u8; 8] = b"LTHCKPT1";

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
    pub fn encode(mut self) -> Result<Vec<u8>, CheckpointError> {
        let exact = ExactFloats::take(&mut self.progress);
        let header = Header {
            exact,
            progress: self.progress,
            weights: shapes(&self.weights),
            snapshot: self.snapshot.as_ref().map(shapes),
            optimizer_time: self.optimizer.time,
            optimizer: shapes(&self.optimizer.tensors),
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
        let mut values = Vec::new();
        put_values(&mut values, &self.optimizer.tensors);
        put_block(&mut out, &values);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let corrupt = |what: &str| CheckpointError(format!("corrupt checkpoint: {what}"));
        if bytes.starts_with(MAGIC_V1) {
            return Err(CheckpointError(
                "a checkpoint of an older lab (v1 optimiser state): delete it to restart \
                 this training from its start"
                    .into(),
            ));
        }
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| corrupt("no header"))?;
        let mut blocks = Blocks { rest };
        let mut header: Header =
            serde_json::from_slice(blocks.next().ok_or_else(|| corrupt("header"))?)
                .map_err(|e| corrupt(&e.to_string()))?;
        let exact = std::mem::replace(
            &mut header.exact,
            ExactFloats {
                curve: Vec::new(),
                updates: Vec::new(),
            },
        );
        exact.restore(&mut header.progress);
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
        let optimizer = take_values(
            blocks.next().ok_or_else(|| corrupt("optimizer"))?,
            &header.optimizer,
        )
        .ok_or_else(|| corrupt("optimizer"))?;
        if !blocks.rest.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(Checkpoint {
            progress: header.progress,
            weights,
            snapshot,
            optimizer: OptimizerState {
                time: header.optimizer_time,
                tensors: optimizer,
            },
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
