//! Sparse execution of unstructured tickets: every weight matrix in compressed sparse rows
//! ([`Csr`]), a forward pass that touches only kept weights ([`SparseNet::forward`]), and
//! its file format ([`SparseNet::to_safetensors`]).
//!
//! Why our own kernel: the sparse crates that fit (`sprs`, `nalgebra-sparse`) are generic
//! CSR/CSC libraries with sparse × dense products but no convolutions, and would add their
//! numeric stacks to the wasm build. A sparse LeNet-5 needs convolutions, and both targets
//! need the same code. The kernel here is ~150 lines. It keeps activations feature-major
//! (`[feature][batch]`), so the inner loops run over contiguous slices and vectorise: SSE2
//! natively (an AVX2 build of the same loops measured only 5–12% faster, so there is no
//! runtime dispatch), SIMD128 in wasm32 (`+simd128`, see `.cargo/config.toml`). It runs on
//! the host, on one thread.

use std::collections::BTreeMap;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

pub use crate::base::csr::Csr;
use crate::base::csr::{self, ConvGeometry, StageWeightsError, stage_csr};
use crate::base::mask::Mask;
use crate::base::model::{Stage, check_chain};
use crate::base::params::Weights;
use crate::base::ticket::Provenance;

#[derive(Debug, thiserror::Error)]
pub enum SparseError {
    #[error("the ticket has no {0}")]
    Missing(String),
    #[error(transparent)]
    Weights(#[from] StageWeightsError),
    #[error("sparse file: {0}")]
    Format(String),
    #[error("sparse file: {path}: {source}")]
    Csr { path: String, source: csr::CsrError },
    #[error("sparse file: {0}")]
    Stage(#[from] crate::base::model::StageError),
    #[error("not a safetensors file: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("input has {found} values, not a multiple of {per_example} per example")]
    Input { found: usize, per_example: usize },
}

/// One stage of the sparse network.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    Linear {
        weight: Csr,
        bias: Vec<f32>,
        relu: bool,
    },
    Conv {
        weight: Csr,
        bias: Vec<f32>,
        geometry: [[usize; 2]; 4],
        relu: bool,
    },
    MaxPool2 {
        channels: usize,
        side: [usize; 2],
    },
}

/// A sequential network whose weights are in CSR, for inference on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseNet {
    stages: Vec<Stage>,
    ops: Vec<Op>,
    inputs: usize,
    outputs: usize,
}

/// The count of kept and of all weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SparseSize {
    pub nonzeros: usize,
    pub weights: usize,
}

const FORMAT_KEY: &str = "format";
const STAGES_KEY: &str = "stages";
const PROVENANCE_KEY: &str = "ticket";

impl SparseNet {
    /// The network of `stages` with `weights`, keeping what `mask` keeps (a weight the mask
    /// does not cover is kept: biases, or layers that are never pruned).
    pub fn new(stages: &[Stage], weights: &Weights, mask: &Mask) -> Result<Self, SparseError> {
        check_chain(stages)?;
        let mut ops = Vec::with_capacity(stages.len());
        for stage in stages {
            let relu = match stage {
                Stage::Linear { relu, .. } | Stage::Conv { relu, .. } => *relu,
                Stage::MaxPool2 { .. } => false,
            };
            ops.push(match (stage, stage_csr(stage, weights, Some(mask))?) {
                (
                    Stage::Conv {
                        kernel,
                        padding,
                        input_side,
                        ..
                    },
                    Some((weight, bias)),
                ) => Op::Conv {
                    weight,
                    bias,
                    geometry: [*input_side, stage.output_side(), *kernel, *padding],
                    relu,
                },
                (_, Some((weight, bias))) => Op::Linear { weight, bias, relu },
                (_, None) => {
                    let (channels, side) = stage.input_shape();
                    Op::MaxPool2 { channels, side }
                }
            });
        }
        Self::from_ops(stages.to_vec(), ops)
    }

    fn from_ops(stages: Vec<Stage>, ops: Vec<Op>) -> Result<Self, SparseError> {
        let inputs = match stages.first() {
            Some(Stage::Linear { inputs, .. }) => *inputs,
            Some(Stage::Conv {
                in_channels,
                input_side,
                ..
            }) => in_channels * input_side[0] * input_side[1],
            _ => {
                return Err(SparseError::Format(
                    "a network starts with a weighted stage".into(),
                ));
            }
        };
        let outputs = stages.last().map_or(0, Stage::output_len);
        Ok(Self {
            stages,
            ops,
            inputs,
            outputs,
        })
    }

    /// Values per input example (784 for MNIST).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Logits per example.
    pub fn outputs(&self) -> usize {
        self.outputs
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn size(&self) -> SparseSize {
        let mut size = SparseSize {
            nonzeros: 0,
            weights: 0,
        };
        for op in &self.ops {
            if let Op::Linear { weight, .. } | Op::Conv { weight, .. } = op {
                size.nonzeros += weight.nnz();
                size.weights += weight.rows * weight.cols;
            }
        }
        size
    }

    /// Logits `[batch][outputs]` of `images` = `[batch][inputs]`, row-major.
    pub fn forward(&self, images: &[f32]) -> Result<Vec<f32>, SparseError> {
        if self.inputs == 0 || !images.len().is_multiple_of(self.inputs) {
            return Err(SparseError::Input {
                found: images.len(),
                per_example: self.inputs,
            });
        }
        let batch = images.len() / self.inputs;
        // Feature-major in, ping-pong between two buffers, batch-major out. The buffers are
        // this thread's and kept between calls: a fresh allocation of a large batch's
        // activations costs page faults on every call (half the time of a forward pass at
        // 0–2% density, measured).
        SCRATCH.with(|scratch| {
            let (x, y) = &mut *scratch.borrow_mut();
            let mut len = images.len();
            grow(x, len);
            transpose(images, batch, self.inputs, &mut x[..len]);
            for (op, stage) in self.ops.iter().zip(&self.stages) {
                let out_len = stage.output_len() * batch;
                grow(y, out_len);
                let (input, output) = (&x[..len], &mut y[..out_len]);
                match op {
                    Op::Linear { weight, bias, relu } => {
                        csr::linear(weight, bias, input, batch, *relu, output)
                    }
                    Op::Conv {
                        weight,
                        bias,
                        geometry: [in_side, out_side, kernel, padding],
                        relu,
                    } => {
                        let g = ConvGeometry {
                            in_side: *in_side,
                            out_side: *out_side,
                            kernel: *kernel,
                            padding: *padding,
                        };
                        csr::conv(weight, bias, g, input, batch, *relu, output)
                    }
                    Op::MaxPool2 { channels, side } => {
                        csr::max_pool2(*channels, *side, input, batch, output)
                    }
                }
                std::mem::swap(x, y);
                len = out_len;
            }
            let mut logits = vec![0.0; batch * self.outputs];
            transpose(&x[..len], self.outputs, batch, &mut logits);
            Ok(logits)
        })
    }

    /// The network as safetensors: per weighted stage `<weight>/indptr`, `/indices` (U32)
    /// and `/values` (F32), biases at their paths, and in the metadata the format, the
    /// stages (so the file runs without the model's code) and the provenance.
    pub fn to_safetensors(&self, provenance: &Provenance) -> Vec<u8> {
        let mut owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (op, stage) in self.ops.iter().zip(&self.stages) {
            let (Op::Linear {
                weight: csr, bias, ..
            }
            | Op::Conv {
                weight: csr, bias, ..
            }) = op
            else {
                continue;
            };
            let path = stage.weight().unwrap_or_default();
            owned.push((
                format!("{path}/indptr"),
                Dtype::U32,
                vec![csr.indptr.len()],
                u32s(&csr.indptr),
            ));
            owned.push((
                format!("{path}/indices"),
                Dtype::U32,
                vec![csr.nnz()],
                u32s(&csr.indices),
            ));
            owned.push((
                format!("{path}/values"),
                Dtype::F32,
                vec![csr.nnz()],
                f32s(&csr.values),
            ));
            if let Some(b) = stage.bias() {
                owned.push((b.to_string(), Dtype::F32, vec![bias.len()], f32s(bias)));
            }
        }
        let views = owned.iter().map(|(name, dtype, shape, bytes)| {
            let view =
                TensorView::new(*dtype, shape.clone(), bytes).expect("sizes match by construction");
            (name.as_str(), view)
        });
        let metadata = [
            (FORMAT_KEY.to_string(), "csr".to_string()),
            (
                STAGES_KEY.to_string(),
                serde_json::to_string(&self.stages).expect("stages serialise"),
            ),
            (
                PROVENANCE_KEY.to_string(),
                serde_json::to_string(provenance).expect("provenance serialises"),
            ),
        ];
        safetensors::serialize(views, Some(metadata.into_iter().collect()))
            .expect("names are unique by construction")
    }

    /// Reads [`Self::to_safetensors`]'s file, checking every array against its stage.
    pub fn from_safetensors(bytes: &[u8]) -> Result<(SparseNet, Provenance), SparseError> {
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let tensors = SafeTensors::deserialize(bytes)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        let get = |key: &str| {
            metadata
                .get(key)
                .ok_or_else(|| SparseError::Missing(format!("`{key}` metadata")))
        };
        if get(FORMAT_KEY)? != "csr" {
            return Err(SparseError::Format(format!(
                "format is `{}`, not csr",
                get(FORMAT_KEY)?
            )));
        }
        let stages: Vec<Stage> = serde_json::from_str(get(STAGES_KEY)?)
            .map_err(|e| SparseError::Format(format!("stages: {e}")))?;
        check_chain(&stages)?;
        let provenance: Provenance = serde_json::from_str(get(PROVENANCE_KEY)?)
            .map_err(|e| SparseError::Format(format!("provenance: {e}")))?;
        let mut arrays: BTreeMap<String, (Dtype, Vec<u8>)> = BTreeMap::new();
        for (name, view) in tensors.tensors() {
            arrays.insert(name, (view.dtype(), view.data().to_vec()));
        }
        let mut take = |name: &str, dtype: Dtype| -> Result<Vec<u8>, SparseError> {
            match arrays.remove(name) {
                Some((d, bytes)) if d == dtype => Ok(bytes),
                Some((d, _)) => Err(SparseError::Format(format!(
                    "{name} is {d:?}, not {dtype:?}"
                ))),
                None => Err(SparseError::Missing(name.into())),
            }
        };
        let u32s = |b: Vec<u8>| {
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<u32>>()
        };
        let f32s = |b: Vec<u8>| {
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
        };
        let mut ops = Vec::new();
        for stage in &stages {
            let (rows, cols) = match stage {
                Stage::Linear {
                    inputs, outputs, ..
                } => (*outputs, *inputs),
                Stage::Conv {
                    in_channels,
                    out_channels,
                    kernel,
                    ..
                } => (*out_channels, in_channels * kernel[0] * kernel[1]),
                Stage::MaxPool2 {
                    channels,
                    input_side,
                } => {
                    ops.push(Op::MaxPool2 {
                        channels: *channels,
                        side: *input_side,
                    });
                    continue;
                }
            };
            let path = stage.weight().unwrap_or_default().to_string();
            let csr = Csr {
                rows,
                cols,
                indptr: u32s(take(&format!("{path}/indptr"), Dtype::U32)?),
                indices: u32s(take(&format!("{path}/indices"), Dtype::U32)?),
                values: f32s(take(&format!("{path}/values"), Dtype::F32)?),
            };
            csr.validate().map_err(|source| SparseError::Csr {
                path: path.to_string(),
                source,
            })?;
            let bias = match stage.bias() {
                Some(b) => f32s(take(b, Dtype::F32)?),
                None => vec![0.0; rows],
            };
            if bias.len() != rows {
                return Err(SparseError::Format(format!(
                    "{path}: {} biases for {rows} units",
                    bias.len()
                )));
            }
            ops.push(match stage {
                Stage::Linear { relu, .. } => Op::Linear {
                    weight: csr,
                    bias,
                    relu: *relu,
                },
                Stage::Conv {
                    kernel,
                    padding,
                    input_side,
                    relu,
                    ..
                } => Op::Conv {
                    weight: csr,
                    bias,
                    geometry: [*input_side, stage.output_side(), *kernel, *padding],
                    relu: *relu,
                },
                Stage::MaxPool2 { .. } => unreachable!("pools were handled above"),
            });
        }
        if let Some(extra) = arrays.keys().next() {
            return Err(SparseError::Format(format!("unexpected tensor {extra}")));
        }
        Ok((Self::from_ops(stages, ops)?, provenance))
    }
}

thread_local! {
    /// The forward pass's two activation buffers, per thread.
    static SCRATCH: std::cell::RefCell<(Vec<f32>, Vec<f32>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// Makes `buffer` at least `len` long (every kernel writes all of its output, so old values
/// need no clearing).
fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

/// `to[c][r] = from[r][c]` for a `rows × cols` matrix, in tiles of 16 × 16 so both sides
/// stay in cache (a plain loop is bound by cache misses on one side at batch 1,000).
fn transpose(from: &[f32], rows: usize, cols: usize, to: &mut [f32]) {
    // Eight source rows at a time: eight sequential read streams, one contiguous 8-value
    // write per column.
    const BLOCK: usize = 8;
    let full = rows - rows % BLOCK;
    for r0 in (0..full).step_by(BLOCK) {
        let block: [&[f32]; BLOCK] =
            std::array::from_fn(|i| &from[(r0 + i) * cols..(r0 + i + 1) * cols]);
        for c in 0..cols {
            let out: &mut [f32; BLOCK] = (&mut to[c * rows + r0..c * rows + r0 + BLOCK])
                .try_into()
                .expect("BLOCK values");
            for i in 0..BLOCK {
                out[i] = block[i][c];
            }
        }
    }
    for r in full..rows {
        for c in 0..cols {
            to[c * rows + r] = from[r * cols + c];
        }
    }
}
