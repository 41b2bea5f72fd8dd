//! Convolutional networks for 28×28×1 inputs: a LeNet-5-style net and the LTH paper's
//! Conv-2/4/6 family (blocks of two 3×3 convolutions and a 2×2 max-pool, then 256-256-10).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::{Classifier, Gates};
use crate::data::IMAGE_SIDE;

/// Convolution stages, each followed by ReLU and a 2×2 max-pool when `pooled`, then a
/// ReLU MLP head.
#[derive(Module, Debug)]
pub struct ConvNet {
    pub convs: Vec<Conv2d>,
    pub fcs: Vec<Linear>,
    pool: MaxPool2d,
    /// Number of convolutions before each pool, e.g. `[2, 2]` for Conv-4.
    pool_every: usize,
}

impl ConvNet {
    /// LeNet-5 adapted to 28×28: 6@5×5 (same padding), pool, 16@5×5, pool, 120, 84, 10.
    pub fn lenet5(device: &Device) -> Self {
        let convs = vec![
            Conv2dConfig::new([1, 6], [5, 5])
                .with_padding(PaddingConfig2d::Explicit(2, 2, 2, 2))
                .init(device),
            Conv2dConfig::new([6, 16], [5, 5]).init(device),
        ];
        Self {
            convs,
            fcs: linear_stack(&[16 * 5 * 5, 120, 84, 10], device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            pool_every: 1,
        }
    }

    /// Conv-2, Conv-4 or Conv-6 (`blocks` = 1, 2 or 3) of Frankle & Carbin, 3×3 same convs
    /// with 64, 128, 256 channels per block, then 256-256-10.
    pub fn conv_family(blocks: usize, device: &Device) -> Self {
        let mut convs = Vec::new();
        let mut channels = 1;
        let mut side = IMAGE_SIDE;
        for block in 0..blocks {
            let width = 64 << block;
            for _ in 0..2 {
                convs.push(
                    Conv2dConfig::new([channels, width], [3, 3])
                        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                        .init(device),
                );
                channels = width;
            }
            side /= 2;
        }
        Self {
            convs,
            fcs: linear_stack(&[channels * side * side, 256, 256, 10], device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            pool_every: 2,
        }
    }
}

fn linear_stack(widths: &[usize], device: &Device) -> Vec<Linear> {
    widths
        .windows(2)
        .map(|w| LinearConfig::new(w[0], w[1]).init(device))
        .collect()
}

impl Classifier for ConvNet {
    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2> {
        let [batch, _] = images.dims();
        let mut x: Tensor<4> = images.reshape([batch, 1, IMAGE_SIDE, IMAGE_SIDE]);
        for (i, conv) in self.convs.iter().enumerate() {
            x = gates.relu(conv.forward(x));
            if (i + 1).is_multiple_of(self.pool_every) {
                x = gates.max_pool2d(&self.pool, x);
            }
        }
        let mut y: Tensor<2> = x.flatten(1, 3);
        let last = self.fcs.len() - 1;
        for (i, fc) in self.fcs.iter().enumerate() {
            y = fc.forward(y);
            if i < last {
                y = gates.relu(y);
            }
        }
        y
    }
}
