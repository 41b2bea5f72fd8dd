//! Sparse training on the host: the forward pass, the backward pass and the optimiser touch
//! only the kept weights of a masked network, in compressed sparse rows.
//!
//! It computes what the masked-dense step of [`crate::training::train::Stepper`] computes —
//! the same loss (mean cross-entropy), the gradient at kept positions, the same optimiser,
//! op for op ([`crate::training::optim`]) — in another summation order, so its numbers agree
//! with the dense step's to about 1e-6 relative, not bit for bit (tested in
//! `lab-core/tests/sparse_training.rs`).
//!
//! Per linear layer `z = W·a + b` (activations feature-major, `[feature][batch]`, as the
//! sparse engine keeps them, so every inner loop runs over a contiguous batch):
//! - forward: each kept weight adds `w · a[i]` to `z[j]` ([`csr::linear`]);
//! - `∂W` only at kept positions: `∂W[j][i] = ∂z[j] · a[i]`, a dot product over the batch
//!   (a sampled dense-dense product);
//! - `∂a = Wᵀ · ∂z` through the same rows, scattered; the first layer needs none; the ReLU's
//!   gate is its output's sign (burn's rule: no gradient where the output is 0).
//!
//! A convolution does the same over the runs a kept weight connects (one shifted input row
//! per output row, [`ConvGeometry::runs`]); a 2×2 max-pool sends each output's gradient to
//! the first largest of its inputs.
//!
//! Work is `~6 · kept weights · batch` flops a step (times the output map for a
//! convolution) plus a fixed cost per unit (biases, activations, pools, the softmax), so it
//! pays below a density that `lth bench --sparse-training` measures. The ViT (not a
//! sequence of stages) is refused with a clear error.

use serde::{Deserialize, Serialize};

use crate::base::csr::{self, ConvGeometry, Csr, StageWeightsError, stage_csr};
use crate::base::data::Split;
use crate::base::mask::Mask;
use crate::base::model::{Stage, StageError, check_chain};
use crate::base::params::{HostTensor, Weights};
use crate::training::optim::{
    AdamStep, LabOptimizer, OptimizerKind, OptimizerState, moment_names, sgd_velocity,
};

/// How the training loop computes a step. Like the backend, it is part of a run's identity
/// (the numbers differ in the last bits), and a checkpoint resumes only with the kernel it
/// was saved with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Kernel {
    /// Masked dense on the backend.
    #[default]
    Dense,
    /// On the host, only the kept weights ([`SparseTrainer`]).
    Sparse,
    /// Sparse where the mask's density is below [`BREAK_EVEN_DENSITY`] and the network
    /// and schedule allow it, else dense: a fixed rule, so a run's kernel follows from its
    /// config and mask alone.
    Auto,
}

/// Below this share of kept weights, `auto` trains sparse. Measured with `lth bench`
/// (2026-12-08, 2-core AMD EPYC, batch 60, Adam, against masked dense on Flex with 2
/// threads): sparse is 1.29× at 20% and 0.59× at 50% for LeNet-300-100, 2.86× at 20% and
/// 1.29× at 50% for LeNet-5; at 20% both are faster, so no slower kernel is chosen.
pub const BREAK_EVEN_DENSITY: f64 = 0.2;

impl Kernel {
    pub const ALL: [Kernel; 3] = [Kernel::Dense, Kernel::Sparse, Kernel::Auto];

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Dense => "dense",
            Kernel::Sparse => "sparse",
            Kernel::Auto => "auto",
        }
    }

    /// The kernel a training runs with: `Dense` or `Sparse`. `Sparse` where it cannot run
    /// (a network that is not sequential, a mask that moves) is an error; `Auto` falls back
    /// to dense there.
    pub fn resolve(
        self,
        stages: Option<&[Stage]>,
        mask: Option<&Mask>,
        moving_mask: bool,
    ) -> Result<Kernel, SparseTrainError> {
        let obstacle = if moving_mask {
            Some("a mask that changes during training (dynamic sparse training)".to_string())
        } else {
            match stages {
                None => Some("a network that is not a sequence of stages (the ViT)".to_string()),
                Some(stages) => check_chain(stages)
                    .err()
                    .map(|e| format!("stages that do not chain ({e})")),
            }
        };
        match (self, obstacle) {
            (Kernel::Dense, _) => Ok(Kernel::Dense),
            (Kernel::Sparse, Some(obstacle)) => Err(SparseTrainError::Unsupported(obstacle)),
            (Kernel::Sparse, None) => Ok(Kernel::Sparse),
            (Kernel::Auto, Some(_)) => Ok(Kernel::Dense),
            (Kernel::Auto, None) => Ok(match mask {
                Some(mask) if mask.density() < BREAK_EVEN_DENSITY => Kernel::Sparse,
                _ => Kernel::Dense,
            }),
        }
    }
}

/// What the sparse trainer cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SparseTrainError {
    #[error("sparse training cannot take {0}")]
    Unsupported(String),
    #[error(transparent)]
    Stage(#[from] StageError),
    #[error(transparent)]
    Weights(#[from] StageWeightsError),
    #[error("a batch of {images} values and {labels} labels: not {per_example} values per label")]
    Batch {
        images: usize,
        labels: usize,
        per_example: usize,
    },
    #[error("label {label} is not one of the {classes} classes")]
    Label { label: u8, classes: usize },
    #[error("the optimiser state of the checkpoint does not fit this network: {0}")]
    State(String),
}

/// The optimiser state of one tensor (kept weights or a bias): Adam's two moments or SGD's
/// velocity, none before the first step (the dense optimiser has none then either).
#[derive(Debug, Clone, Default)]
struct Moments {
    /// Whether a step has run (a fully pruned layer's moments are empty but started).
    started: bool,
    first: Vec<f32>,
    second: Vec<f32>,
}

/// A linear or convolutional stage's parameters, gradients and optimiser state.
#[derive(Debug, Clone)]
struct Weighted {
    weight_path: String,
    bias_path: Option<String>,
    /// Rows are outputs (units or output channels). A linear layer's is `Wᵀ` of burn's
    /// `[inputs, outputs]`; a convolution's is burn's `[out, in·kh·kw]` as it stands.
    weight: Csr,
    /// Where the stage is a convolution, its geometry.
    conv: Option<ConvGeometry>,
    bias: Vec<f32>,
    weight_grad: Vec<f32>,
    bias_grad: Vec<f32>,
    weight_state: Moments,
    bias_state: Moments,
}

impl Weighted {
    /// The dense index (burn's layout) of CSR entry (row, col).
    fn dense_index(&self, row: usize, col: usize) -> usize {
        match self.conv {
            Some(_) => row * self.weight.cols + col,
            None => col * self.weight.rows + row,
        }
    }

    /// Values at the kept positions, in burn's dense layout (0 elsewhere).
    fn scatter(&self, kept: &[f32]) -> Vec<f32> {
        let w = &self.weight;
        let mut dense = vec![0.0; w.rows * w.cols];
        for row in 0..w.rows {
            for k in w.indptr[row] as usize..w.indptr[row + 1] as usize {
                dense[self.dense_index(row, w.indices[k] as usize)] = kept[k];
            }
        }
        dense
    }

    /// The values of a dense tensor (burn's layout) at the kept positions, in CSR order.
    fn gather(&self, dense: &[f32]) -> Vec<f32> {
        let w = &self.weight;
        let mut kept = Vec::with_capacity(w.nnz());
        for row in 0..w.rows {
            for k in w.indptr[row] as usize..w.indptr[row + 1] as usize {
                kept.push(dense[self.dense_index(row, w.indices[k] as usize)]);
            }
        }
        kept
    }

    /// burn's shape of the weight.
    fn shape(&self, stage: &Stage) -> Vec<usize> {
        match stage {
            Stage::Conv {
                in_channels,
                out_channels,
                kernel,
                ..
            } => vec![*out_channels, *in_channels, kernel[0], kernel[1]],
            _ => vec![self.weight.cols, self.weight.rows],
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Weighted(Box<Weighted>),
    MaxPool2 { channels: usize, side: [usize; 2] },
}

/// A sequential network (linear layers, convolutions, max-pools) trained on its kept
/// weights only.
#[derive(Debug, Clone)]
pub struct SparseTrainer {
    stages: Vec<Stage>,
    ops: Vec<Op>,
    optimizer: OptimizerKind,
    momentum: f32,
    weight_decay: f32,
    /// Steps taken (Adam's bias correction).
    time: usize,
    /// The input and every stage's output, feature-major, for the last batch.
    activations: Vec<Vec<f32>>,
    /// `∂loss/∂` the output of the stage being differentiated, and of the one below it.
    delta: Vec<f32>,
    below: Vec<f32>,
}

impl SparseTrainer {
    /// The network of `stages` with `weights`, keeping what `mask` keeps (a weight the mask
    /// does not cover is kept), trained with `optimizer`'s settings from a fresh state (a
    /// resumed run loads its state with [`Self::load_optimizer_state`]).
    pub fn new(
        stages: &[Stage],
        weights: &Weights,
        mask: Option<&Mask>,
        optimizer: &LabOptimizer,
    ) -> Result<Self, SparseTrainError> {
        check_chain(stages)?;
        let mut ops = Vec::with_capacity(stages.len());
        for stage in stages {
            ops.push(match (stage, stage_csr(stage, weights, mask)?) {
                (_, None) => {
                    let (channels, side) = stage.input_shape();
                    Op::MaxPool2 { channels, side }
                }
                (stage, Some((weight, bias))) => {
                    let conv = match stage {
                        Stage::Conv {
                            kernel,
                            padding,
                            input_side,
                            ..
                        } => Some(ConvGeometry {
                            in_side: *input_side,
                            out_side: stage.output_side(),
                            kernel: *kernel,
                            padding: *padding,
                        }),
                        _ => None,
                    };
                    Op::Weighted(Box::new(Weighted {
                        weight_path: stage.weight().unwrap_or_default().to_string(),
                        bias_path: stage.bias().map(str::to_string),
                        weight_grad: vec![0.0; weight.nnz()],
                        bias_grad: vec![0.0; bias.len()],
                        weight,
                        conv,
                        bias,
                        weight_state: Moments::default(),
                        bias_state: Moments::default(),
                    }))
                }
            });
        }
        let (kind, momentum, weight_decay) = optimizer.settings();
        Ok(Self {
            activations: vec![Vec::new(); stages.len() + 1],
            stages: stages.to_vec(),
            ops,
            optimizer: kind,
            momentum,
            weight_decay,
            time: 0,
            delta: Vec::new(),
            below: Vec::new(),
        })
    }

    fn weighted(&self) -> impl Iterator<Item = &Weighted> {
        self.ops.iter().filter_map(|op| match op {
            Op::Weighted(w) => Some(w.as_ref()),
            Op::MaxPool2 { .. } => None,
        })
    }

    /// The optimiser state as the dense optimiser keeps it (`<path>/<moment>`, flattened,
    /// 0 at pruned weights), for checkpoints; empty before the first step.
    pub fn optimizer_state(&self) -> OptimizerState {
        let mut tensors = Weights::new();
        let names = moment_names(self.optimizer);
        let mut insert = |key: String, values: Vec<f32>| {
            let shape = vec![values.len()];
            tensors.insert(key, HostTensor { shape, values });
        };
        for layer in self.weighted() {
            let (weights, biases) = (&layer.weight_state, &layer.bias_state);
            if !weights.started {
                continue;
            }
            for (name, moment) in names.iter().zip([&weights.first, &weights.second]) {
                insert(
                    format!("{}/{name}", layer.weight_path),
                    layer.scatter(moment),
                );
            }
            if let Some(path) = &layer.bias_path {
                for (name, moment) in names.iter().zip([&biases.first, &biases.second]) {
                    insert(format!("{path}/{name}"), moment.clone());
                }
            }
        }
        OptimizerState {
            time: self.time,
            tensors,
        }
    }

    /// Restores [`Self::optimizer_state`] (or the dense optimiser's, which is the same).
    pub fn load_optimizer_state(&mut self, state: &OptimizerState) -> Result<(), SparseTrainError> {
        let names = moment_names(self.optimizer);
        let read = |path: &str, len: usize| -> Result<Option<Vec<Vec<f32>>>, SparseTrainError> {
            let found: Vec<&HostTensor> = names
                .iter()
                .filter_map(|name| state.tensors.get(&format!("{path}/{name}")))
                .collect();
            if found.is_empty() {
                return Ok(None);
            }
            if found.len() != names.len() {
                return Err(SparseTrainError::State(format!("{path} lacks a moment")));
            }
            found
                .into_iter()
                .map(|t| match t.values.len() == len {
                    true => Ok(t.values.clone()),
                    false => Err(SparseTrainError::State(format!(
                        "{path} has {} values, not {len}",
                        t.values.len()
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some)
        };
        for op in &mut self.ops {
            let Op::Weighted(layer) = op else { continue };
            let len = layer.weight.rows * layer.weight.cols;
            if let Some(moments) = read(&layer.weight_path, len)? {
                let kept = moments.iter().map(|m| layer.gather(m)).collect();
                layer.weight_state = moments_of(kept);
            }
            if let Some(path) = &layer.bias_path
                && let Some(moments) = read(path, layer.weight.rows)?
            {
                layer.bias_state = moments_of(moments);
            }
        }
        self.time = state.time;
        Ok(())
    }

    /// Values per input example (784 for MNIST).
    pub fn inputs(&self) -> usize {
        let (channels, [h, w]) = self.stages[0].input_shape();
        channels * h * w
    }

    /// Logits per example.
    pub fn outputs(&self) -> usize {
        self.stages.last().map_or(0, Stage::output_len)
    }

    /// Kept weights, over all stages.
    pub fn kept(&self) -> usize {
        self.weighted().map(|l| l.weight.nnz()).sum()
    }

    /// Every stage's output for `images` = `[batch][inputs]` row-major.
    fn forward(&mut self, images: &[f32], batch: usize) {
        let inputs = self.inputs();
        let first = &mut self.activations[0];
        first.resize(images.len(), 0.0);
        transpose(images, batch, inputs, first);
        for (l, (op, stage)) in self.ops.iter().zip(&self.stages).enumerate() {
            let (done, rest) = self.activations.split_at_mut(l + 1);
            let (input, output) = (&done[l], &mut rest[0]);
            output.resize(stage.output_len() * batch, 0.0);
            let relu = relu_of(stage);
            match op {
                Op::Weighted(w) => match w.conv {
                    Some(g) => csr::conv(&w.weight, &w.bias, g, input, batch, relu, output),
                    None => csr::linear(&w.weight, &w.bias, input, batch, relu, output),
                },
                Op::MaxPool2 { channels, side } => {
                    csr::max_pool2(*channels, *side, input, batch, output)
                }
            }
        }
    }

    /// Mean cross-entropy of the batch, with the gradient of every kept weight and bias left
    /// for [`Self::apply`]. `images` = `[labels.len()][inputs]` row-major.
    pub fn loss_and_gradients(
        &mut self,
        images: &[f32],
        labels: &[u8],
    ) -> Result<f32, SparseTrainError> {
        let batch = self.check_batch(images, labels)?;
        self.forward(images, batch);
        let classes = self.outputs();
        let mut delta = std::mem::take(&mut self.delta);
        delta.resize(classes * batch, 0.0);
        let loss = softmax_cross_entropy(
            &self.activations[self.stages.len()],
            labels,
            classes,
            &mut delta,
        );
        let mut below = std::mem::take(&mut self.below);
        for l in (0..self.stages.len()).rev() {
            // `delta` is ∂loss/∂(stage l's output); through its ReLU (burn's rule: no
            // gradient where the output is 0) it becomes ∂loss/∂(its pre-activation).
            if relu_of(&self.stages[l]) {
                for (g, &a) in delta.iter_mut().zip(&self.activations[l + 1]) {
                    if a <= 0.0 {
                        *g = 0.0;
                    }
                }
            }
            let input = &self.activations[l];
            let needs_input_grad = l > 0;
            if needs_input_grad {
                below.clear();
                below.resize(input.len(), 0.0);
            }
            match &mut self.ops[l] {
                Op::MaxPool2 { channels, side } => {
                    csr::max_pool2_backward(*channels, *side, input, &delta, batch, &mut below)
                }
                Op::Weighted(layer) => {
                    let below = needs_input_grad.then_some(below.as_mut_slice());
                    match layer.conv {
                        Some(g) => conv_backward(layer, g, input, &delta, batch, below),
                        None => linear_backward(layer, input, &delta, batch, below),
                    }
                }
            }
            if needs_input_grad {
                std::mem::swap(&mut delta, &mut below);
            }
        }
        self.delta = delta;
        self.below = below;
        Ok(loss)
    }

    /// One optimiser update of the kept weights and biases from the last gradients: the
    /// dense optimiser's arithmetic, element for element.
    pub fn apply(&mut self, learning_rate: f64) {
        self.time += 1;
        let step = AdamStep::at(self.time, learning_rate);
        let (kind, momentum, decay) = (self.optimizer, self.momentum, self.weight_decay);
        for op in &mut self.ops {
            let Op::Weighted(layer) = op else { continue };
            let layer = layer.as_mut();
            let updates = [
                (
                    &mut layer.weight.values,
                    &mut layer.weight_grad,
                    &mut layer.weight_state,
                ),
                (&mut layer.bias, &mut layer.bias_grad, &mut layer.bias_state),
            ];
            for (values, grads, state) in updates {
                if decay > 0.0 {
                    for (g, &v) in grads.iter_mut().zip(values.iter()) {
                        *g += v * decay; // θ·λ + g, as the dense optimiser (addition commutes exactly)
                    }
                }
                update(kind, &step, momentum, learning_rate, values, grads, state);
            }
        }
    }

    /// Forward, backward and the optimiser update; returns the batch's loss.
    pub fn step(
        &mut self,
        images: &[f32],
        labels: &[u8],
        learning_rate: f64,
    ) -> Result<f32, SparseTrainError> {
        let loss = self.loss_and_gradients(images, labels)?;
        self.apply(learning_rate);
        Ok(loss)
    }

    /// Mean cross-entropy and accuracy on `split`, `chunk` examples a forward pass, through
    /// the sparse forward pass (what the loop evaluates with, with this kernel).
    pub fn evaluate(
        &mut self,
        split: &Split,
        chunk: usize,
    ) -> Result<(f64, f64), SparseTrainError> {
        let classes = self.outputs();
        let (mut loss, mut correct) = (0.0f64, 0usize);
        let indices: Vec<usize> = (0..split.len()).collect();
        let mut scratch = std::mem::take(&mut self.below);
        for part in indices.chunks(chunk.max(1)) {
            let images = split.standardised(part);
            let labels: Vec<u8> = part.iter().map(|&i| split.labels[i]).collect();
            let batch = self.check_batch(&images, &labels)?;
            self.forward(&images, batch);
            let logits = &self.activations[self.stages.len()];
            scratch.resize(classes * batch, 0.0);
            let mean = softmax_cross_entropy(logits, &labels, classes, &mut scratch);
            loss += f64::from(mean) * batch as f64;
            for (b, &label) in labels.iter().enumerate() {
                // The first largest logit, as argmax.
                let mut best = 0;
                for c in 1..classes {
                    if logits[c * batch + b] > logits[best * batch + b] {
                        best = c;
                    }
                }
                correct += usize::from(best == usize::from(label));
            }
        }
        self.below = scratch;
        let n = split.len().max(1) as f64;
        Ok((loss / n, correct as f64 / n))
    }

    /// Every weight and bias in burn's layout, pruned weights 0.
    pub fn weights(&self) -> Weights {
        self.dense(|layer| (&layer.weight.values, &layer.bias))
    }

    /// The last gradients in burn's layout, 0 at pruned weights (what the masked-dense step
    /// feeds its optimiser, before weight decay).
    pub fn gradients(&self) -> Weights {
        self.dense(|layer| (&layer.weight_grad, &layer.bias_grad))
    }

    fn dense(&self, pick: impl Fn(&Weighted) -> (&Vec<f32>, &Vec<f32>)) -> Weights {
        let mut out = Weights::new();
        let weighted = self
            .stages
            .iter()
            .zip(&self.ops)
            .filter_map(|(s, op)| match op {
                Op::Weighted(w) => Some((s, w.as_ref())),
                Op::MaxPool2 { .. } => None,
            });
        for (stage, layer) in weighted {
            let (values, bias) = pick(layer);
            out.insert(
                layer.weight_path.clone(),
                HostTensor {
                    shape: layer.shape(stage),
                    values: layer.scatter(values),
                },
            );
            if let Some(path) = &layer.bias_path {
                out.insert(
                    path.clone(),
                    HostTensor {
                        shape: vec![layer.weight.rows],
                        values: bias.clone(),
                    },
                );
            }
        }
        out
    }

    fn check_batch(&self, images: &[f32], labels: &[u8]) -> Result<usize, SparseTrainError> {
        let per_example = self.inputs();
        if labels.is_empty() || images.len() != labels.len() * per_example {
            return Err(SparseTrainError::Batch {
                images: images.len(),
                labels: labels.len(),
                per_example,
            });
        }
        let classes = self.outputs();
        if let Some(&label) = labels.iter().find(|&&l| usize::from(l) >= classes) {
            return Err(SparseTrainError::Label { label, classes });
        }
        Ok(labels.len())
    }
}

fn relu_of(stage: &Stage) -> bool {
    match stage {
        Stage::Linear { relu, .. } | Stage::Conv { relu, .. } => *relu,
        Stage::MaxPool2 { .. } => false,
    }
}

/// A linear layer's gradients from `delta` = ∂z `[outputs][batch]`: ∂b, ∂W at the kept
/// positions (dot products over the batch) and, if asked, ∂x into `below`.
fn linear_backward(
    layer: &mut Weighted,
    input: &[f32],
    delta: &[f32],
    batch: usize,
    mut below: Option<&mut [f32]>,
) {
    let w = &layer.weight;
    for j in 0..w.rows {
        let dz = &delta[j * batch..(j + 1) * batch];
        layer.bias_grad[j] = dz.iter().sum();
        for k in w.indptr[j] as usize..w.indptr[j + 1] as usize {
            let i = w.indices[k] as usize;
            layer.weight_grad[k] = dot(dz, &input[i * batch..(i + 1) * batch]);
            if let Some(below) = below.as_deref_mut() {
                axpy(&mut below[i * batch..(i + 1) * batch], w.values[k], dz);
            }
        }
    }
}

/// A convolution's gradients from `delta` = ∂z `[out_channels][oh][ow][batch]`, through the
/// runs of [`ConvGeometry::runs`] that the forward pass adds.
fn conv_backward(
    layer: &mut Weighted,
    g: ConvGeometry,
    input: &[f32],
    delta: &[f32],
    batch: usize,
    mut below: Option<&mut [f32]>,
) {
    let w = &layer.weight;
    let taps = g.kernel[0] * g.kernel[1];
    let (in_map, out_map) = g.map_lens(batch);
    for o in 0..w.rows {
        let dz = &delta[o * out_map..(o + 1) * out_map];
        layer.bias_grad[o] = dz.iter().sum();
        for k in w.indptr[o] as usize..w.indptr[o + 1] as usize {
            let col = w.indices[k] as usize;
            let channel = col / taps;
            let map = &input[channel * in_map..(channel + 1) * in_map];
            let mut grad = 0.0;
            g.runs(col, batch, |to, from, len| {
                grad += dot(&dz[to..to + len], &map[from..from + len]);
            });
            layer.weight_grad[k] = grad;
            if let Some(below) = below.as_deref_mut() {
                let value = w.values[k];
                let map = &mut below[channel * in_map..(channel + 1) * in_map];
                g.runs(col, batch, |to, from, len| {
                    axpy(&mut map[from..from + len], value, &dz[to..to + len]);
                });
            }
        }
    }
}

/// Adam's two moments or SGD's one (`second` left empty).
fn moments_of(mut moments: Vec<Vec<f32>>) -> Moments {
    let first = moments.remove(0);
    let second = moments.pop().unwrap_or_default();
    Moments {
        started: true,
        first,
        second,
    }
}

/// The optimiser's update of one tensor, element by element as the dense optimiser's
/// tensor ops compute it.
fn update(
    kind: OptimizerKind,
    step: &AdamStep,
    momentum: f32,
    learning_rate: f64,
    values: &mut [f32],
    grads: &[f32],
    state: &mut Moments,
) {
    let fresh = !state.started;
    state.started = true;
    match kind {
        OptimizerKind::Adam => {
            if fresh {
                state.first = vec![0.0; values.len()];
                state.second = vec![0.0; values.len()];
            }
            for (((v, &g), m1), m2) in values
                .iter_mut()
                .zip(grads)
                .zip(state.first.iter_mut())
                .zip(state.second.iter_mut())
            {
                let previous = (!fresh).then_some((*m1, *m2));
                let (value, first, second) = step.apply(*v, g, previous);
                (*v, *m1, *m2) = (value, first, second);
            }
        }
        OptimizerKind::Sgd => {
            if fresh {
                state.first = vec![0.0; values.len()];
            }
            let lr = learning_rate as f32;
            for ((v, &g), velocity) in values.iter_mut().zip(grads).zip(state.first.iter_mut()) {
                *velocity = sgd_velocity(g, (!fresh).then_some(*velocity), momentum);
                *v -= *velocity * lr;
            }
        }
    }
}

/// Mean cross-entropy of `logits` = `[classes][batch]` against `labels`, and its gradient
/// with respect to the logits into `delta` (same layout): `(softmax − one-hot) / batch`.
fn softmax_cross_entropy(logits: &[f32], labels: &[u8], classes: usize, delta: &mut [f32]) -> f32 {
    let batch = labels.len();
    let mut total = 0.0f32;
    for (b, &label) in labels.iter().enumerate() {
        let at = |c: usize| c * batch + b;
        let max = (0..classes)
            .map(|c| logits[at(c)])
            .fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = (0..classes).map(|c| (logits[at(c)] - max).exp()).sum();
        let log_sum = sum.ln();
        total -= logits[at(usize::from(label))] - max - log_sum;
        for c in 0..classes {
            let p = (logits[at(c)] - max - log_sum).exp();
            let target = if c == usize::from(label) { 1.0 } else { 0.0 };
            delta[at(c)] = (p - target) / batch as f32;
        }
    }
    total / batch as f32
}

/// `Σ a·b` with eight partial sums, so it vectorises.
#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for lane in 0..8 {
            sums[lane] += x[lane] * y[lane];
        }
    }
    let mut rest = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        rest += x * y;
    }
    ((sums[0] + sums[1]) + (sums[2] + sums[3])) + ((sums[4] + sums[5]) + (sums[6] + sums[7])) + rest
}

/// `y += a·x`.
#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// `out[c][r] = x[r][c]` for `x` = `[rows][cols]`.
fn transpose(x: &[f32], rows: usize, cols: usize, out: &mut [f32]) {
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = x[r * cols + c];
        }
    }
}
