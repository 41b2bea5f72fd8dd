//! Convolutional networks for 28×28×1 inputs: a LeNet-5-style net and the LTH paper's
//! Conv-2/4/6 family (blocks of two 3×3 convolutions and a 2×2 max-pool, then 256-256-10).

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};

use super::classifier::Classifier;
use super::gates::Gates;
use super::stages::{Stage, conv_stage, linear_stage};
use crate::base::data::IMAGE_SIDE;

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

impl ConvNet {
    /// The network as stages, or `None` if a convolution is not one the stages cover.
    pub fn stages(&self) -> Option<Vec<Stage>> {
        let mut stages = Vec::new();
        let mut side = [IMAGE_SIDE, IMAGE_SIDE];
        for (i, conv) in self.convs.iter().enumerate() {
            let stage = conv_stage(&format!("convs.{i}"), conv, side)?;
            side = stage.output_side();
            let channels = stage.units();
            stages.push(stage);
            if (i + 1).is_multiple_of(self.pool_every) {
                let pool = Stage::MaxPool2 {
                    channels,
                    input_side: side,
                };
                side = pool.output_side();
                stages.push(pool);
            }
        }
        let last = self.fcs.len().saturating_sub(1);
        stages.extend(
            self.fcs
                .iter()
                .enumerate()
                .map(|(i, fc)| linear_stage(&format!("fcs.{i}"), fc, i < last)),
        );
        Some(stages)
    }

    /// The same architecture with `units[i]` filters in convolution `i` (then the linear
    /// layers' widths), every kernel, padding and pool kept: the shape of a compacted net.
    /// `units` lists every convolution, then every linear layer but the last.
    pub fn with_units(&self, units: &[usize], device: &Device) -> Self {
        let mut channels = 1;
        let mut convs = Vec::new();
        for (conv, &width) in self.convs.iter().zip(units) {
            let [_, _, kh, kw] = conv.weight.dims();
            convs.push(
                Conv2dConfig::new([channels, width], [kh, kw])
                    .with_padding(conv.padding.clone())
                    .with_bias(conv.bias.is_some())
                    .init(device),
            );
            channels = width;
        }
        let [first_inputs, _] = self.fcs[0].weight.dims();
        let old_channels = self.convs.last().map_or(1, |c| c.weight.dims()[0]);
        let spatial = first_inputs / old_channels.max(1);
        let mut widths = vec![channels * spatial];
        widths.extend(&units[self.convs.len()..]);
        widths.extend(self.fcs.last().map(|fc| fc.weight.dims()[1]));
        Self {
            convs,
            fcs: linear_stack(&widths, device),
            pool: self.pool.clone(),
            pool_every: self.pool_every,
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
    fn stages(&self) -> Option<Vec<Stage>> {
        ConvNet::stages(self)
    }

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
