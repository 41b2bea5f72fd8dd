//! Adam and momentum SGD with their state kept by parameter path, so a mask policy can zero
//! the state of single weights (dynamic sparse training: a dropped weight must not keep
//! moving on its old moments, a grown weight must start from zero moments).
//!
//! burn's `ModuleOptimizer` keeps its state private and keyed by parameter id; this one does
//! the same arithmetic, op for op in the same order (burn-optim 0.22's `AdaptiveMomentum`
//! and `Momentum`), so it trains bit for bit like burn's (tested) and records made with
//! burn's optimiser stay valid.

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};

use serde::{Deserialize, Serialize};

use crate::base::error::DeviceError;
use crate::base::mask::DeviceMask;
use crate::base::params::{FloatParam, HostTensor, PathMapper, PathTracker, Weights, map_paths};

/// Adam's constants (burn's defaults but ε = 1e-8, as TensorFlow and PyTorch).
const BETA_1: f32 = 0.9;
const BETA_2: f32 = 0.999;
const EPSILON: f32 = 1e-8;

/// The state of one parameter, flattened: Adam's first and second moments, or SGD's
/// velocity ([`moment_names`]).
type Moments = Vec<Tensor<1>>;

pub(crate) fn moment_names(kind: OptimizerKind) -> &'static [&'static str] {
    match kind {
        OptimizerKind::Adam => &["first", "second"],
        OptimizerKind::Sgd => &["velocity"],
    }
}

/// An optimiser whose state is addressable by parameter path.
#[derive(Clone)]
pub struct LabOptimizer {
    kind: OptimizerKind,
    /// SGD's momentum.
    momentum: f32,
    /// Coupled L2 penalty: λ·θ is added to the gradient (burn's and PyTorch's `weight_decay`).
    weight_decay: f32,
    /// Steps taken (Adam's bias correction; the same for every parameter).
    time: usize,
    state: HashMap<String, Moments>,
}

/// The optimiser state on the host: the step count and each moment tensor, named
/// `<parameter path>/<moment>`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptimizerState {
    pub time: usize,
    pub tensors: Weights,
}

impl LabOptimizer {
    pub fn new(kind: OptimizerKind, momentum: f64, weight_decay: f64) -> Self {
        Self {
            kind,
            momentum: momentum as f32,
            weight_decay: weight_decay as f32,
            time: 0,
            state: HashMap::new(),
        }
    }

    /// The kind, SGD's momentum and the weight decay (for the host-side sparse trainer).
    pub(crate) fn settings(&self) -> (OptimizerKind, f32, f32) {
        (self.kind, self.momentum, self.weight_decay)
    }

    /// One update of every parameter that has a gradient in `grads`.
    pub fn step<M: Module>(
        &mut self,
        learning_rate: f64,
        model: M,
        mut grads: GradientsParams,
    ) -> M {
        self.time += 1;
        let updater = Updater {
            optimizer: self,
            grads: &mut grads,
            learning_rate,
        };
        map_paths(model, updater).0
    }

    /// Multiplies the state of the masked parameters by the mask: the moments of pruned
    /// weights become exactly 0 (and stay 0 while their gradients are masked).
    pub fn mask_state(&mut self, mask: &DeviceMask) {
        for (path, moments) in self.state.iter_mut() {
            if let Some(keep) = mask.flat(path) {
                for moment in moments.iter_mut() {
                    *moment = moment.clone() * keep.clone();
                }
            }
        }
    }

    /// The state read back to the host (for checkpoints).
    pub async fn read_state(&self) -> Result<OptimizerState, DeviceError> {
        let mut tensors = Weights::new();
        for (path, moments) in &self.state {
            for (name, tensor) in moment_names(self.kind).iter().zip(moments) {
                let values = tensor
                    .clone()
                    .into_data_async()
                    .await
                    .map_err(|e| DeviceError::new("optimizer state", e))?
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| DeviceError::new("optimizer state", e))?;
                tensors.insert(
                    format!("{path}/{name}"),
                    HostTensor {
                        shape: vec![values.len()],
                        values,
                    },
                );
            }
        }
        Ok(OptimizerState {
            time: self.time,
            tensors,
        })
    }

    /// Restores state read by [`Self::read_state`]; `None` if it is not this optimiser's
    /// (another kind, or a moment missing).
    pub fn load_state(&mut self, state: &OptimizerState, device: &Device) -> Option<()> {
        let upload = |host: &HostTensor| {
            Tensor::<1>::from_data(TensorData::new(host.values.clone(), [host.len()]), device)
        };
        let mut paths: BTreeMap<&str, BTreeMap<&str, &HostTensor>> = BTreeMap::new();
        for (key, tensor) in &state.tensors {
            let (path, moment) = key.rsplit_once('/')?;
            paths.entry(path).or_default().insert(moment, tensor);
        }
        let mut restored = HashMap::new();
        for (path, moments) in paths {
            let names = moment_names(self.kind);
            if moments.len() != names.len() {
                return None;
            }
            let tensors = names
                .iter()
                .map(|name| moments.get(name).map(|t| upload(t)))
                .collect::<Option<Moments>>()?;
            restored.insert(path.to_string(), tensors);
        }
        self.state = restored;
        self.time = state.time;
        Some(())
    }

    /// burn-optim's `AdaptiveMomentum::transform` and `Adam::step`, op for op.
    fn adam<const D: usize>(
        &self,
        learning_rate: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<(Tensor<D>, Tensor<D>)>,
    ) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
        let (first, second) = match state {
            Some((first, second)) => (
                first
                    .mul_scalar(BETA_1)
                    .add(grad.clone().mul_scalar(1.0 - BETA_1)),
                second
                    .mul_scalar(BETA_2)
                    .add(grad.square().mul_scalar(1.0 - BETA_2)),
            ),
            None => (
                grad.clone().mul_scalar(1.0 - BETA_1),
                grad.square().mul_scalar(1.0 - BETA_2),
            ),
        };
        let step = AdamStep::at(self.time, learning_rate);
        let update = first
            .clone()
            .mul_scalar(step.combined_factor)
            .div(second.clone().sqrt().add_scalar(step.epsilon));
        (tensor - update.mul_scalar(learning_rate), first, second)
    }

    /// burn-optim's `Momentum::transform` (no dampening, no Nesterov) and `Sgd::step`.
    fn sgd<const D: usize>(
        &self,
        learning_rate: f64,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> (Tensor<D>, Tensor<D>) {
        // Keep in step with `sgd_velocity`, the same arithmetic on one element.
        let velocity = match velocity {
            Some(velocity) => grad
                .mul_scalar(1.0 - 0.0f64)
                .add(velocity.mul_scalar(self.momentum)),
            None => grad,
        };
        (
            tensor - velocity.clone().mul_scalar(learning_rate),
            velocity,
        )
    }
}

/// Adam's constants at one step, and its update of one element: the arithmetic of
/// [`LabOptimizer`]'s tensor ops, op for op, for the host-side sparse trainer.
pub(crate) struct AdamStep {
    combined_factor: f32,
    /// ε times the square root of the second moment's bias correction.
    epsilon: f32,
    learning_rate: f32,
}

impl AdamStep {
    pub(crate) fn at(time: usize, learning_rate: f64) -> Self {
        let time = time as i32;
        let bias_correction2_sqrt = (1.0 - BETA_2.powi(time)).sqrt();
        Self {
            combined_factor: bias_correction2_sqrt / (1.0 - BETA_1.powi(time)),
            epsilon: EPSILON * bias_correction2_sqrt,
            learning_rate: learning_rate as f32,
        }
    }

    /// `(value, first moment, second moment)` after one step from `previous` moments
    /// (`None` before the first step).
    pub(crate) fn apply(
        &self,
        value: f32,
        grad: f32,
        previous: Option<(f32, f32)>,
    ) -> (f32, f32, f32) {
        let (first, second) = match previous {
            Some((first, second)) => (
                first * BETA_1 + grad * (1.0 - BETA_1),
                second * BETA_2 + grad * grad * (1.0 - BETA_2),
            ),
            None => (grad * (1.0 - BETA_1), grad * grad * (1.0 - BETA_2)),
        };
        let update = first * self.combined_factor / (second.sqrt() + self.epsilon);
        (value - update * self.learning_rate, first, second)
    }
}

/// SGD's velocity of one element after a step (no dampening, no Nesterov), as
/// [`LabOptimizer`]'s tensor ops compute it.
pub(crate) fn sgd_velocity(grad: f32, velocity: Option<f32>, momentum: f32) -> f32 {
    match velocity {
        Some(velocity) => grad * (1.0 - 0.0f64) as f32 + velocity * momentum,
        None => grad,
    }
}

struct Updater<'a> {
    optimizer: &'a mut LabOptimizer,
    grads: &'a mut GradientsParams,
    learning_rate: f64,
}

impl PathMapper for Updater<'_> {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let path = at.path();
        let require_grad = tensor.is_require_grad();
        let value = tensor.inner();
        let dims = value.dims();
        let size = dims.iter().product::<usize>();
        let optimizer = &mut *self.optimizer;
        // burn's `WeightDecay::transform`; a masked weight is 0, so its decayed gradient stays 0.
        let grad = if optimizer.weight_decay > 0.0 {
            value.clone().mul_scalar(optimizer.weight_decay).add(grad)
        } else {
            grad
        };
        let state = optimizer.state.remove(&path);
        let state = state.map(|moments| {
            moments
                .into_iter()
                .map(|m| m.reshape(dims))
                .collect::<Vec<_>>()
        });
        let (updated, moments) = match optimizer.kind {
            OptimizerKind::Adam => {
                let state = state.map(|mut m| {
                    let second = m.pop().expect("two moments");
                    (m.pop().expect("two moments"), second)
                });
                let (updated, first, second) =
                    optimizer.adam(self.learning_rate, value, grad, state);
                (updated, vec![first, second])
            }
            OptimizerKind::Sgd => {
                let velocity = state.and_then(|mut m| m.pop());
                let (updated, velocity) = optimizer.sgd(self.learning_rate, value, grad, velocity);
                (updated, vec![velocity])
            }
        };
        let moments = moments.into_iter().map(|m| m.reshape([size])).collect();
        optimizer.state.insert(path, moments);
        let mut updated = Tensor::from_inner(updated);
        if require_grad {
            updated = updated.require_grad();
        }
        Param::from_mapped_value(id, updated, mapper)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    #[default]
    Adam,
    /// SGD with (heavy-ball) momentum.
    Sgd,
}

impl OptimizerKind {
    pub const ALL: [OptimizerKind; 2] = [OptimizerKind::Adam, OptimizerKind::Sgd];
}
