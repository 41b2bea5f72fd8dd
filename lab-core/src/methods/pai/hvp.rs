//! Gradients and exact Hessian-vector products of a classifier's loss, on any backend.
//!
//! burn has no double backward, so H·v comes from a central difference of gradients,
//! (g(θ + εv) − g(θ − εv)) / 2ε. On a ReLU or max-pool network that is only honest with the
//! network's gates frozen at θ ([`Gates`]): a gate that flips between θ − εv and θ + εv adds
//! its jump divided by 2ε. With them frozen the loss is smooth in θ, its Hessian at θ is the
//! true one, and the difference is exact up to O(ε²). GraSP (−θ ⊙ Hg) and ProsPr (reverse
//! through a few SGD steps) are both built on [`hessian_vector`].
//!
//! Only the parameters a [`Mask`] covers take part: gradients are read for them, and θ moves
//! along `v` in them alone, so the products are the Hessian's block of the prunable weights.

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::base::data::Split;
use crate::base::mask::Mask;
use crate::base::model::gates::GateMismatch;
use crate::base::model::{Classifier, Gates};
use crate::base::params::{
    FloatParam, HostTensor, PathMapper, PathTracker, Weights, map_param_value, map_paths,
    read_gradients,
};
use crate::training::train::{batch_tensors, cross_entropy};

#[derive(Debug, thiserror::Error)]
pub enum HvpError {
    #[error(transparent)]
    Device(#[from] crate::base::error::DeviceError),
    #[error(transparent)]
    Gates(#[from] GateMismatch),
    #[error("the loss is not finite ({0}): no gradient to score by")]
    NotFinite(f64),
}

/// A batch on the device and the temperature its logits are divided by (GraSP uses 200).
#[derive(Debug, Clone)]
pub struct LossBatch {
    pub images: Tensor<2>,
    pub labels: Tensor<1, Int>,
    pub temperature: f64,
}

impl LossBatch {
    /// The training images at `indices`, uploaded to `device`.
    pub fn new(split: &Split, indices: &[usize], temperature: f64, device: &Device) -> Self {
        let (images, labels) = batch_tensors(split, indices, device);
        Self {
            images,
            labels,
            temperature,
        }
    }

    /// Mean cross-entropy of `logits / temperature`, the forward pass routed through `gates`.
    pub fn loss<M: Classifier>(&self, model: &M, gates: &mut Gates) -> Tensor<1> {
        let logits = model.forward_gated(self.images.clone(), gates);
        let logits = if self.temperature == 1.0 {
            logits
        } else {
            logits.div_scalar(self.temperature)
        };
        cross_entropy(logits, self.labels.clone())
    }
}

async fn read_host(tensor: Tensor<1>) -> Result<Vec<f32>, HvpError> {
    tensor
        .into_data_async()
        .await
        .map_err(|e| crate::base::error::DeviceError::new("gradients", e))?
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| crate::base::error::DeviceError::new("gradients", e).into())
}

/// Gradients of `loss` for the parameters `mask` covers, on the host (zeros for a parameter
/// the loss does not reach).
pub async fn gradients<M: Module>(
    model: &M,
    loss: Tensor<1>,
    mask: &Mask,
) -> Result<Weights, HvpError> {
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let mut read = read_gradients(model, &grads, &|path| mask.layer(path).is_some()).await?;
    Ok(mask
        .layers
        .iter()
        .map(|layer| {
            let tensor = read.remove(&layer.name).unwrap_or_else(|| HostTensor {
                shape: layer.shape.clone(),
                values: vec![0.0; layer.total()],
            });
            (layer.name.clone(), tensor)
        })
        .collect())
}

/// The loss's gradient at θ (model on an autodiff device) and the gates of that forward pass.
pub async fn gradient_and_gates<M: Classifier>(
    model: &M,
    batch: &LossBatch,
    mask: &Mask,
) -> Result<(Weights, Gates), HvpError> {
    let mut gates = Gates::record();
    let loss = batch.loss(model, &mut gates);
    let value = read_host(loss.clone().detach()).await?;
    let value = f64::from(value.first().copied().unwrap_or(f32::NAN));
    if !value.is_finite() {
        return Err(HvpError::NotFinite(value));
    }
    Ok((gradients(model, loss, mask).await?, gates))
}

struct AddScaled<'a> {
    direction: &'a Weights,
    scale: f32,
}

impl PathMapper for AddScaled<'_> {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D> {
        let Some(step) = self.direction.get(&at.path()) else {
            return param;
        };
        let scale = self.scale;
        map_param_value(param, |t| {
            let dims = t.dims();
            let delta = Tensor::<1>::from_data(
                TensorData::new(step.values.clone(), [step.len()]),
                &t.device(),
            );
            t + delta.reshape(dims).mul_scalar(scale)
        })
    }
}

/// θ + scale · direction, for the parameters in `direction`.
pub fn shifted<M: Module>(model: &M, direction: &Weights, scale: f32) -> M {
    map_paths(model.clone(), AddScaled { direction, scale }).0
}

/// Euclidean norm of host weights, in f64.
pub fn norm(weights: &Weights) -> f64 {
    weights
        .values()
        .flat_map(|t| &t.values)
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// H·v at θ for the loss of `batch`, with `gates` (recorded at θ by [`gradient_and_gates`])
/// frozen: a central difference with θ moved by `step` in norm (ε = step / ‖v‖).
pub async fn hessian_vector<M: Classifier>(
    model: &M,
    batch: &LossBatch,
    gates: &Gates,
    v: &Weights,
    mask: &Mask,
    step: f64,
) -> Result<Weights, HvpError> {
    let length = norm(v);
    if length == 0.0 {
        return Ok(combine(v, v, |_, _| 0.0));
    }
    let epsilon = (step / length) as f32;
    let side = |sign: f32| {
        let moved = shifted(model, v, sign * epsilon);
        let mut frozen = gates.replay();
        let loss = batch.loss(&moved, &mut frozen);
        frozen.finished().map(|()| (moved, loss))
    };
    let (plus, plus_loss) = side(1.0)?;
    let (minus, minus_loss) = side(-1.0)?;
    let g_plus = gradients(&plus, plus_loss, mask).await?;
    let g_minus = gradients(&minus, minus_loss, mask).await?;
    Ok(combine(&g_plus, &g_minus, |p, m| (p - m) / (2.0 * epsilon)))
}

/// `f(a, b)` elementwise over the parameters of `a` (which `b` must also hold).
pub fn combine(a: &Weights, b: &Weights, f: impl Fn(f32, f32) -> f32) -> Weights {
    a.iter()
        .map(|(name, x)| {
            let values = match b.get(name) {
                Some(y) => x
                    .values
                    .iter()
                    .zip(&y.values)
                    .map(|(&p, &q)| f(p, q))
                    .collect(),
                None => x.values.iter().map(|&p| f(p, 0.0)).collect(),
            };
            (
                name.clone(),
                HostTensor {
                    shape: x.shape.clone(),
                    values,
                },
            )
        })
        .collect()
}
