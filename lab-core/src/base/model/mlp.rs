//! Fully connected networks; LeNet-300-100 is `[784, 300, 100, 10]`.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use super::classifier::Classifier;
use super::gates::Gates;
use super::stages::{Stage, linear_stage};

/// A ReLU multi-layer perceptron on flattened images.
#[derive(Module, Debug)]
pub struct Mlp {
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// `widths` = input, hidden…, output (LeNet-300-100: `[784, 300, 100, 10]`).
    pub fn new(widths: &[usize], device: &Device) -> Self {
        let layers = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect();
        Self { layers }
    }

    /// The layers as stages (`layers.<i>`), ReLU after all but the last.
    pub fn stages(&self) -> Vec<Stage> {
        let last = self.layers.len().saturating_sub(1);
        self.layers
            .iter()
            .enumerate()
            .map(|(i, layer)| linear_stage(&format!("layers.{i}"), layer, i < last))
            .collect()
    }

    /// The widths `[input, hidden…, output]`.
    pub fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.layers.iter().map(|l| l.weight.dims()[0]).collect();
        widths.extend(self.layers.last().map(|l| l.weight.dims()[1]));
        widths
    }
}

impl Classifier for Mlp {
    fn stages(&self) -> Option<Vec<Stage>> {
        Some(Mlp::stages(self))
    }

    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers
            .iter()
            .enumerate()
            .fold(images, |x, (i, layer)| {
                let y = layer.forward(x);
                if i < last { gates.relu(y) } else { y }
            })
    }
}
