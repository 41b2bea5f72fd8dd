//! Seeded, backend-independent initialisation of any module.

use burn::module::Module;
use burn::tensor::{Tensor, TensorData};

use crate::base::params::{FloatParam, PathMapper, PathTracker, map_param_value, map_paths};
use crate::base::rng::Rng;

/// The Gaussian Glorot (Xavier normal) initialisation of the LTH paper:
/// N(0, 2 / (fan_in + fan_out)) for weights of rank ≥ 2, zeros for biases. Other parameters
/// (e.g. norm scales) keep their module's own initialisation.
///
/// Each parameter draws from its own stream `Rng::for_purpose(seed, "init/<path>")`, so the
/// values depend only on the seed and the parameter's path and shape: the same on every
/// backend, and a different seed gives the random re-initialisation control.
pub fn glorot_normal<M: Module>(module: M, seed: u64) -> M {
    glorot_normal_stream(module, seed, "init")
}

/// [`glorot_normal`] drawn from the streams `"<stream>/<path>"` instead of `"init/<path>"`:
/// independent weights under the same seed (the random-reinitialisation control).
pub fn glorot_normal_stream<M: Module>(module: M, seed: u64, stream: &str) -> M {
    map_paths(module, GlorotMapper { seed, stream }).0
}

/// (fan_in, fan_out) of a weight: burn's Linear is `[d_in, d_out]`, Conv `[c_out, c_in, k…]`.
pub fn fans(shape: &[usize]) -> (usize, usize) {
    match shape {
        [d_in, d_out] => (*d_in, *d_out),
        [c_out, c_in, kernel @ ..] => {
            let receptive: usize = kernel.iter().product();
            (c_in * receptive, c_out * receptive)
        }
        _ => (shape.iter().product(), shape.iter().product()),
    }
}

struct GlorotMapper<'a> {
    seed: u64,
    stream: &'a str,
}

impl PathMapper for GlorotMapper<'_> {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D> {
        let path = at.path();
        let is_bias = path.ends_with("bias");
        let is_weight = path.ends_with("weight") && D >= 2;
        if !is_bias && !is_weight {
            return param;
        }
        let seed = self.seed;
        let stream = self.stream;
        map_param_value(param, |tensor| {
            let dims = tensor.dims();
            let n: usize = dims.iter().product();
            let values = if is_bias {
                vec![0.0f32; n]
            } else {
                let (fan_in, fan_out) = fans(&dims);
                let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
                let mut rng = Rng::for_purpose(seed, &format!("{stream}/{path}"));
                (0..n).map(|_| (rng.normal() * std) as f32).collect()
            };
            Tensor::<1>::from_data(TensorData::new(values, [n]), &tensor.device()).reshape(dims)
        })
    }
}
