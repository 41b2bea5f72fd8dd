//! The non-smooth operations of a forward pass (ReLU, max-pool), routed through one place so
//! that they can be frozen.
//!
//! A ReLU network is piecewise smooth: its Hessian at θ is the Hessian of the *same* network
//! with every ReLU gate (x > 0) and every max-pool argmax held at their values at θ. A central
//! difference of gradients at θ ± εv that lets gates flip between the two points divides each
//! flip's jump by 2ε and is wrong by O(1/ε); with the gates frozen it is exact up to O(ε²).
//! That is how [`crate::methods::pai::hvp`] computes the Hessian-vector products of GraSP and ProsPr.
//!
//! A model calls [`Gates::relu`] and [`Gates::max_pool2d`] instead of burn's functions in
//! [`super::Classifier::forward_gated`]. Smooth operations (GELU, softmax, layer norm) need no
//! gate.

use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::tensor::activation::relu;
use burn::tensor::module::{max_pool2d, max_pool2d_with_indices};
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Int, Tensor};

/// One recorded decision of a non-smooth operation, detached from autodiff.
#[derive(Debug, Clone)]
enum Frozen {
    /// 1 where the ReLU's input was positive, else 0 (flattened).
    Relu(Tensor<1>),
    /// The argmax of each pooling window, as burn's `max_pool2d_with_indices` gives it.
    Pool(Tensor<4, Int>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The ordinary forward pass.
    Free,
    /// The ordinary forward pass, keeping every decision.
    Record,
    /// Every decision replayed from a recording, in call order.
    Replay,
}

/// How a forward pass treats its ReLUs and max-pools. See the module documentation.
#[derive(Debug, Clone)]
pub struct Gates {
    mode: Mode,
    decisions: Vec<Frozen>,
    next: usize,
    /// The first replayed call that did not match the recording (then computed unfrozen).
    mismatch: Option<String>,
}

/// Why a recording cannot be replayed on a forward pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("frozen gates do not fit this forward pass: {0}")]
pub struct GateMismatch(String);

impl Gates {
    /// Plain ReLU and max-pool.
    pub fn free() -> Self {
        Self {
            mode: Mode::Free,
            decisions: Vec::new(),
            next: 0,
            mismatch: None,
        }
    }

    /// Plain ReLU and max-pool, recording each gate and argmax for [`Gates::replay`].
    pub fn record() -> Self {
        Self {
            mode: Mode::Record,
            ..Self::free()
        }
    }

    /// The recorded decisions, ready to be replayed from the first one.
    pub fn replay(&self) -> Self {
        Self {
            mode: Mode::Replay,
            decisions: self.decisions.clone(),
            next: 0,
            mismatch: None,
        }
    }

    /// Whether a replay matched its recording call for call and used every decision.
    pub fn finished(&self) -> Result<(), GateMismatch> {
        if let Some(mismatch) = &self.mismatch {
            return Err(GateMismatch(mismatch.clone()));
        }
        if self.mode == Mode::Replay && self.next != self.decisions.len() {
            return Err(GateMismatch(format!(
                "{} decisions recorded, {} replayed",
                self.decisions.len(),
                self.next
            )));
        }
        Ok(())
    }

    /// The next recorded decision, or `None` (and the mismatch noted) when the model calls
    /// more operations than it recorded: a bug in its `forward_gated`, reported by
    /// [`Gates::finished`] rather than a panic.
    fn take(&mut self, wanted: &str) -> Option<Frozen> {
        let decision = self.decisions.get(self.next).cloned();
        self.next += 1;
        let fits = matches!(
            (&decision, wanted),
            (Some(Frozen::Relu(_)), "relu") | (Some(Frozen::Pool(_)), "pool")
        );
        if !fits && self.mismatch.is_none() {
            self.mismatch = Some(format!(
                "call {} is a {wanted}, the recording has {}",
                self.next,
                match decision {
                    Some(Frozen::Relu(_)) => "a relu",
                    Some(Frozen::Pool(_)) => "a pool",
                    None => "nothing",
                }
            ));
        }
        decision.filter(|_| fits)
    }

    /// ReLU, or multiplication by the recorded 0/1 gate.
    pub fn relu<const D: usize>(&mut self, x: Tensor<D>) -> Tensor<D> {
        match self.mode {
            Mode::Free => relu(x),
            Mode::Record => {
                let dims = x.dims();
                let n: usize = dims.iter().product();
                let gate = x.clone().detach().greater_elem(0.0).float().reshape([n]);
                self.decisions.push(Frozen::Relu(gate));
                relu(x)
            }
            Mode::Replay => match self.take("relu") {
                Some(Frozen::Relu(gate)) => {
                    let dims = x.dims();
                    x * gate.reshape(dims)
                }
                _ => relu(x),
            },
        }
    }

    /// burn's [`MaxPool2d`], or a gather at the recorded argmaxes. Recording needs an
    /// unpadded pool (every pool of the lab's models); a padded one is reported by
    /// [`Gates::finished`] instead of being frozen wrongly.
    pub fn max_pool2d(&mut self, pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
        if !matches!(pool.padding, PaddingConfig2d::Valid) {
            if self.mode != Mode::Free && self.mismatch.is_none() {
                self.mismatch = Some("a padded max-pool cannot be frozen".into());
            }
            return pool.forward(x);
        }
        let options = MaxPoolOptions::new(pool.kernel_size)
            .with_stride(pool.stride)
            .with_dilation(pool.dilation)
            .with_ceil_mode(pool.ceil_mode);
        match self.mode {
            Mode::Free => max_pool2d(x, options),
            Mode::Record => {
                let (output, indices) = max_pool2d_with_indices(x, options);
                self.decisions.push(Frozen::Pool(indices));
                output
            }
            Mode::Replay => match self.take("pool") {
                Some(Frozen::Pool(indices)) => {
                    let [batch, channels, height, width] = x.dims();
                    let [_, _, out_h, out_w] = indices.dims();
                    x.reshape([batch, channels, height * width])
                        .gather(2, indices.reshape([batch, channels, out_h * out_w]))
                        .reshape([batch, channels, out_h, out_w])
                }
                _ => max_pool2d(x, options),
            },
        }
    }
}
