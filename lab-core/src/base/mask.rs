//! Pruning masks over the prunable parameters of any burn module.
//!
//! A [`Mask`] lives on the host (one `keep` flag per weight, by parameter path). For training
//! it goes to the device as a [`DeviceMask`], which zeroes pruned weights once
//! ([`apply_mask`]) and then zeroes their *gradients* every step ([`mask_gradients`]): with
//! zero gradients, Adam's and momentum-SGD's moments stay zero, so a pruned weight receives an
//! update of exactly zero and stays exactly zero. Nothing re-masks weights in `forward`.

use std::collections::HashMap;

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::base::params::{
    FloatParam, ParamInfo, PathMapper, PathTracker, PathVisitor, Weights, map_param_value,
    map_paths, prunable_params, visit_paths,
};

/// The mask of one parameter tensor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMask {
    /// Parameter path, e.g. `layers.0.weight`.
    pub name: String,
    pub shape: Vec<usize>,
    /// One flag per weight, row-major; stored in JSON as a hex bit string.
    #[serde(with = "bits_hex")]
    pub keep: Vec<bool>,
}

impl LayerMask {
    pub fn dense(name: &str, shape: &[usize]) -> Self {
        Self {
            name: name.to_string(),
            shape: shape.to_vec(),
            keep: vec![true; shape.iter().product()],
        }
    }

    pub fn total(&self) -> usize {
        self.keep.len()
    }

    pub fn remaining(&self) -> usize {
        self.keep.iter().filter(|&&k| k).count()
    }

    pub fn density(&self) -> f64 {
        self.remaining() as f64 / self.total().max(1) as f64
    }
}

/// Which weights survive, for every prunable parameter of a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mask {
    pub layers: Vec<LayerMask>,
}

/// Sparsity of one layer, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerSparsity {
    pub name: String,
    pub total: usize,
    pub remaining: usize,
    /// Fraction of this layer's weights that survive.
    pub density: f64,
}

impl Mask {
    /// The all-ones mask over the default prunable parameters of `model`.
    pub fn dense_for<M: Module>(model: &M) -> Self {
        Self::dense_over(&prunable_params(model))
    }

    /// The all-ones mask over the given parameters.
    pub fn dense_over(params: &[ParamInfo]) -> Self {
        Self {
            layers: params
                .iter()
                .map(|p| LayerMask::dense(&p.path, &p.shape))
                .collect(),
        }
    }

    pub fn layer(&self, name: &str) -> Option<&LayerMask> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub fn total(&self) -> usize {
        self.layers.iter().map(LayerMask::total).sum()
    }

    pub fn remaining(&self) -> usize {
        self.layers.iter().map(LayerMask::remaining).sum()
    }

    /// Fraction of prunable weights that survive (`weights_remaining` in reports).
    pub fn density(&self) -> f64 {
        self.remaining() as f64 / self.total().max(1) as f64
    }

    pub fn sparsity_report(&self) -> Vec<LayerSparsity> {
        self.layers
            .iter()
            .map(|l| LayerSparsity {
                name: l.name.clone(),
                total: l.total(),
                remaining: l.remaining(),
                density: l.density(),
            })
            .collect()
    }

    /// True if every weight kept by `self` is kept by `other` (pruning never un-prunes).
    pub fn is_subset_of(&self, other: &Mask) -> bool {
        self.layers.len() == other.layers.len()
            && self.layers.iter().zip(&other.layers).all(|(a, b)| {
                a.name == b.name
                    && a.keep.len() == b.keep.len()
                    && a.keep.iter().zip(&b.keep).all(|(&x, &y)| !x || y)
            })
    }

    /// The classic LTH picture of the first fully connected layer: for each input pixel,
    /// how many of the layer's units still connect to it. `None` unless the first prunable
    /// parameter is a `[inputs, units]` linear weight (burn's layout), as in LeNet-300-100.
    pub fn input_connections(&self) -> Option<InputConnections> {
        let first = self.layers.first()?;
        // Only a layer that sees the 784 pixels (not, say, a ViT's 49-pixel patch embedding).
        let [inputs, units] = first.shape[..] else {
            return None;
        };
        if inputs != crate::base::data::IMAGE_SIZE {
            return None;
        }
        let counts = first
            .keep
            .chunks(units)
            .map(|row| row.iter().filter(|&&k| k).count() as u32)
            .collect();
        Some(InputConnections {
            inputs,
            units,
            counts,
        })
    }

    /// Uploads the mask as float 0/1 tensors.
    /// The masks of a pack's members as one: each layer `[R, …]`, member r's flags at `[r]`.
    pub fn stacked(members: &[Mask]) -> Result<Mask, String> {
        let Some(first) = members.first() else {
            return Ok(Mask { layers: Vec::new() });
        };
        let mut layers = first.layers.clone();
        for (member, mask) in members.iter().enumerate().skip(1) {
            let same = mask.layers.len() == layers.len()
                && mask
                    .layers
                    .iter()
                    .zip(&first.layers)
                    .all(|(a, b)| a.name == b.name && a.shape == b.shape);
            if !same {
                return Err(format!(
                    "member {member}'s mask covers other layers or shapes than member 0's"
                ));
            }
            for (stacked, layer) in layers.iter_mut().zip(&mask.layers) {
                stacked.keep.extend_from_slice(&layer.keep);
            }
        }
        for layer in &mut layers {
            layer.shape.insert(0, members.len());
        }
        Ok(Mask { layers })
    }

    pub fn to_device(&self, device: &Device) -> DeviceMask {
        let tensors = self
            .layers
            .iter()
            .map(|layer| {
                let values: Vec<f32> = layer.keep.iter().map(|&k| f32::from(u8::from(k))).collect();
                let n = values.len();
                (
                    layer.name.clone(),
                    Tensor::<1>::from_data(TensorData::new(values, [n]), device),
                )
            })
            .collect();
        DeviceMask { tensors }
    }
}

/// Surviving connections per input of the first layer ([`Mask::input_connections`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputConnections {
    pub inputs: usize,
    pub units: usize,
    /// One count in `0..=units` per input (row-major pixels for MNIST).
    pub counts: Vec<u32>,
}

/// A mask on a device: flat 0/1 float tensors by parameter path.
#[derive(Debug, Clone)]
pub struct DeviceMask {
    tensors: HashMap<String, Tensor<1>>,
}

impl DeviceMask {
    /// The flat 0/1 tensor of one parameter, if it is masked.
    pub fn flat(&self, path: &str) -> Option<Tensor<1>> {
        self.tensors.get(path).cloned()
    }

    fn shaped<const D: usize>(&self, path: &str, dims: [usize; D]) -> Option<Tensor<D>> {
        self.tensors
            .get(path)
            .map(|flat| flat.clone().reshape(dims))
    }
}

struct WeightMasker<'a> {
    mask: &'a DeviceMask,
}

impl PathMapper for WeightMasker<'_> {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D> {
        let path = at.path();
        let mask = self.mask;
        if !mask.tensors.contains_key(&path) {
            return param;
        }
        map_param_value(param, |tensor| {
            let keep = mask.shaped(&path, tensor.dims()).expect("checked above");
            tensor * keep
        })
    }
}

/// Zeroes the pruned weights of `model`.
pub fn apply_mask<M: Module>(model: M, mask: &DeviceMask) -> M {
    map_paths(model, WeightMasker { mask }).0
}

struct GradientMasker<'a> {
    mask: &'a DeviceMask,
    grads: &'a mut GradientsParams,
}

impl PathVisitor for GradientMasker<'_> {
    fn visit_at<const D: usize>(&mut self, at: &PathTracker, param: &FloatParam<D>) {
        let path = at.path();
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let grad = match self.mask.shaped(&path, grad.dims()) {
            Some(keep) => grad * keep,
            None => grad,
        };
        self.grads.register(param.id, grad);
    }
}

/// Zeroes the gradients of pruned weights, so the optimiser cannot move them.
pub fn mask_gradients<M: Module>(model: &M, grads: &mut GradientsParams, mask: &DeviceMask) {
    visit_paths(model, GradientMasker { mask, grads });
}

mod bits_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(keep: &[bool], serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(keep.len().div_ceil(4));
        for nibble in keep.chunks(4) {
            let value = nibble
                .iter()
                .enumerate()
                .fold(0u32, |acc, (i, &k)| acc | (u32::from(k) << (3 - i)));
            out.push(char::from_digit(value, 16).expect("a nibble"));
        }
        serializer.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<bool>, D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut keep = Vec::with_capacity(text.len() * 4);
        for c in text.chars() {
            let value = c
                .to_digit(16)
                .ok_or_else(|| serde::de::Error::custom("mask bits must be hex"))?;
            keep.extend((0..4).map(|i| value & (1 << (3 - i)) != 0));
        }
        Ok(keep)
    }
}

/// Restores the exact flag count after hex decoding (which pads to a multiple of 4).
pub fn fix_lengths(mut mask: Mask) -> Mask {
    for layer in &mut mask.layers {
        layer.keep.truncate(layer.shape.iter().product());
    }
    mask
}

impl Mask {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a mask serialises")
    }

    pub fn from_json(text: &str) -> Result<Mask, serde_json::Error> {
        let mask: Mask = serde_json::from_str(text)?;
        for layer in &mask.layers {
            let expected: usize = layer.shape.iter().product();
            if layer.keep.len() < expected || layer.keep.len() > expected + 3 {
                return Err(serde::de::Error::custom(format!(
                    "mask of {} has {} flags for shape {:?}",
                    layer.name,
                    layer.keep.len(),
                    layer.shape
                )));
            }
        }
        Ok(fix_lengths(mask))
    }
}

/// Zeroes the masked-out entries of host weights.
pub fn masked_weights(weights: &Weights, mask: &Mask) -> Weights {
    let mut out = weights.clone();
    for layer in &mask.layers {
        if let Some(tensor) = out.get_mut(&layer.name) {
            for (value, &keep) in tensor.values.iter_mut().zip(&layer.keep) {
                if !keep {
                    *value = 0.0;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn input_connections_count_surviving_units_per_input() {
        use super::{LayerMask, Mask};
        // 784 inputs × 2 units (burn's [inputs, units] layout): input 1 keeps one unit, input 2
        // none, the others both.
        let mut first = LayerMask::dense("layers.0.weight", &[784, 2]);
        first.keep[2] = false;
        first.keep[4] = false;
        first.keep[5] = false;
        let second = LayerMask::dense("layers.1.weight", &[2, 10]);
        let mask = Mask {
            layers: vec![first, second],
        };
        let picture = mask.input_connections().expect("a linear first layer");
        assert_eq!((picture.inputs, picture.units), (784, 2));
        assert_eq!(picture.counts[..4], [2, 1, 0, 2]);
        // A first layer that does not see the pixels (a ViT's patch embedding) has no picture.
        let patches = Mask {
            layers: vec![LayerMask::dense("patch_embedding.weight", &[49, 64])],
        };
        assert!(patches.input_connections().is_none());
        let conv = Mask {
            layers: vec![LayerMask::dense("convs.0.weight", &[6, 1, 5, 5])],
        };
        assert!(conv.input_connections().is_none());
    }

    use super::*;

    #[test]
    fn json_round_trip_keeps_exact_flags() {
        let mut layer = LayerMask::dense("a.weight", &[3, 3]);
        layer.keep[0] = false;
        layer.keep[8] = false;
        let mask = Mask {
            layers: vec![layer],
        };
        let back = Mask::from_json(&mask.to_json()).unwrap();
        assert_eq!(back, mask);
        assert_eq!(back.remaining(), 7);
    }

    #[test]
    fn subset_relation() {
        let dense = Mask {
            layers: vec![LayerMask::dense("w", &[4])],
        };
        let mut pruned = dense.clone();
        pruned.layers[0].keep[1] = false;
        assert!(pruned.is_subset_of(&dense));
        assert!(!dense.is_subset_of(&pruned));
    }
}
