//! A network as a straight sequence of stages (linear, convolution, max-pool), read from its
//! burn modules: the one description of its topology that structured pruning, compaction and
//! the sparse engine share. Activations flow in burn's order (channel, row, column), and a
//! convolution's output feeds the next linear layer flattened in that order.

use burn::nn::Linear;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use serde::{Deserialize, Serialize};

/// One step of a sequential network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// `y = x · W + b` with `W` of shape `[inputs, outputs]` (burn's layout).
    Linear {
        weight: String,
        bias: Option<String>,
        inputs: usize,
        outputs: usize,
        relu: bool,
    },
    /// A stride-1, undilated, ungrouped 2-d convolution, `W` of shape
    /// `[out_channels, in_channels, kernel_h, kernel_w]`, zero padding `[top, left]` (and the
    /// same at the bottom and right) on an `input_side` = `[height, width]` input.
    Conv {
        weight: String,
        bias: Option<String>,
        in_channels: usize,
        out_channels: usize,
        kernel: [usize; 2],
        padding: [usize; 2],
        input_side: [usize; 2],
        relu: bool,
    },
    /// A 2×2, stride-2 max-pool over `channels` maps of `input_side` (floor).
    MaxPool2 {
        channels: usize,
        input_side: [usize; 2],
    },
}

/// The most values a stage may hold per example (weights or activations): far above the
/// lab's networks, far below what would exhaust memory when a file lies.
pub const MAX_STAGE_VALUES: usize = 1 << 26;

/// A stage whose sizes cannot be right (as a damaged file may say).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageError {
    #[error("{what} {dims:?} is empty or too large")]
    Size {
        what: &'static str,
        dims: Vec<usize>,
    },
    #[error(
        "convolution kernel {kernel:?} with padding {padding:?} does not fit a {input_side:?} input"
    )]
    KernelFit {
        kernel: [usize; 2],
        padding: [usize; 2],
        input_side: [usize; 2],
    },
    #[error(
        "stage {stage} reads {consumed:?} (channels, sides), the stage before produces {produced:?}"
    )]
    Chain {
        stage: usize,
        produced: (usize, [usize; 2]),
        consumed: (usize, [usize; 2]),
    },
    #[error("a network starts with a weighted stage")]
    Start,
}

/// Every stage is well formed, the first has weights, and each consumes exactly what the
/// previous one produces: the same maps (channels and sides), or as many values when a
/// linear layer reads flattened maps.
pub fn check_chain(stages: &[Stage]) -> Result<(), StageError> {
    if stages.first().is_none_or(|s| s.weight().is_none()) {
        return Err(StageError::Start);
    }
    for stage in stages {
        stage.validate()?;
    }
    let flat = |(c, [h, w]): (usize, [usize; 2])| c * h * w;
    for (index, pair) in stages.windows(2).enumerate() {
        let (produced, consumed) = (pair[0].output_shape(), pair[1].input_shape());
        let fits = match pair[1] {
            Stage::Linear { .. } => flat(produced) == flat(consumed),
            _ => produced == consumed,
        };
        if !fits {
            return Err(StageError::Chain {
                stage: index + 1,
                produced,
                consumed,
            });
        }
    }
    Ok(())
}

impl Stage {
    /// Checks sizes a file could get wrong before any arithmetic on them: positive, bounded,
    /// and a kernel that fits its padded input.
    pub fn validate(&self) -> Result<(), StageError> {
        let bounded = |what: &'static str, dims: &[usize]| -> Result<(), StageError> {
            let product = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
            match product {
                Some(p) if p > 0 && p <= MAX_STAGE_VALUES => Ok(()),
                _ => Err(StageError::Size {
                    what,
                    dims: dims.to_vec(),
                }),
            }
        };
        match self {
            Stage::Linear {
                inputs, outputs, ..
            } => bounded("linear layer", &[*inputs, *outputs]),
            Stage::Conv {
                in_channels,
                out_channels,
                kernel,
                padding,
                input_side,
                ..
            } => {
                bounded(
                    "convolution",
                    &[*out_channels, *in_channels, kernel[0], kernel[1]],
                )?;
                bounded(
                    "convolution input",
                    &[*in_channels, input_side[0], input_side[1]],
                )?;
                for axis in 0..2 {
                    if padding[axis] >= kernel[axis]
                        || kernel[axis] > input_side[axis] + 2 * padding[axis]
                    {
                        return Err(StageError::KernelFit {
                            kernel: *kernel,
                            padding: *padding,
                            input_side: *input_side,
                        });
                    }
                }
                bounded(
                    "convolution output",
                    &[*out_channels, self.output_side()[0], self.output_side()[1]],
                )
            }
            Stage::MaxPool2 {
                channels,
                input_side,
            } => {
                bounded("max-pool input", &[*channels, input_side[0], input_side[1]])?;
                bounded(
                    "max-pool output",
                    &[*channels, input_side[0] / 2, input_side[1] / 2],
                )
            }
        }
    }

    /// What the stage reads per example: `(channels, [height, width])`, a linear layer's
    /// inputs as `(inputs, [1, 1])`.
    pub fn input_shape(&self) -> (usize, [usize; 2]) {
        match self {
            Stage::Linear { inputs, .. } => (*inputs, [1, 1]),
            Stage::Conv {
                in_channels,
                input_side,
                ..
            } => (*in_channels, *input_side),
            Stage::MaxPool2 {
                channels,
                input_side,
            } => (*channels, *input_side),
        }
    }

    /// What the stage produces per example, as [`Self::input_shape`].
    pub fn output_shape(&self) -> (usize, [usize; 2]) {
        match self {
            Stage::Linear { outputs, .. } => (*outputs, [1, 1]),
            Stage::Conv { out_channels, .. } => (*out_channels, self.output_side()),
            Stage::MaxPool2 { channels, .. } => (*channels, self.output_side()),
        }
    }

    /// The weight's parameter path, for stages that have one.
    pub fn weight(&self) -> Option<&str> {
        match self {
            Stage::Linear { weight, .. } | Stage::Conv { weight, .. } => Some(weight),
            Stage::MaxPool2 { .. } => None,
        }
    }

    pub fn bias(&self) -> Option<&str> {
        match self {
            Stage::Linear { bias, .. } | Stage::Conv { bias, .. } => bias.as_deref(),
            Stage::MaxPool2 { .. } => None,
        }
    }

    /// Units (neurons or filters) this stage computes; 0 for a pool.
    pub fn units(&self) -> usize {
        match self {
            Stage::Linear { outputs, .. } => *outputs,
            Stage::Conv { out_channels, .. } => *out_channels,
            Stage::MaxPool2 { .. } => 0,
        }
    }

    /// Values per example this stage produces.
    pub fn output_len(&self) -> usize {
        match self {
            Stage::Linear { outputs, .. } => *outputs,
            Stage::Conv { out_channels, .. } => {
                let [h, w] = self.output_side();
                out_channels * h * w
            }
            Stage::MaxPool2 { channels, .. } => {
                let [h, w] = self.output_side();
                channels * h * w
            }
        }
    }

    /// The `[height, width]` of a convolution's or pool's output maps (`[1, 1]` for linear).
    pub fn output_side(&self) -> [usize; 2] {
        match self {
            Stage::Linear { .. } => [1, 1],
            Stage::Conv {
                kernel,
                padding,
                input_side,
                ..
            } => [
                input_side[0] + 2 * padding[0] + 1 - kernel[0],
                input_side[1] + 2 * padding[1] + 1 - kernel[1],
            ],
            Stage::MaxPool2 { input_side, .. } => [input_side[0] / 2, input_side[1] / 2],
        }
    }
}

pub(crate) fn linear_stage(path: &str, layer: &Linear, relu: bool) -> Stage {
    let [inputs, outputs] = layer.weight.dims();
    Stage::Linear {
        weight: format!("{path}.weight"),
        bias: layer.bias.as_ref().map(|_| format!("{path}.bias")),
        inputs,
        outputs,
        relu,
    }
}

/// The stage of a convolution, or `None` for one the stage model does not cover (strided,
/// dilated, grouped, asymmetric or "same" padding).
pub(crate) fn conv_stage(path: &str, conv: &Conv2d, input_side: [usize; 2]) -> Option<Stage> {
    let [out_channels, in_channels, kh, kw] = conv.weight.dims();
    let padding = match conv.padding {
        PaddingConfig2d::Valid => [0, 0],
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            [top, left]
        }
        _ => return None,
    };
    let plain = conv.stride == [1, 1] && conv.dilation == [1, 1] && conv.groups == 1;
    plain.then(|| Stage::Conv {
        weight: format!("{path}.weight"),
        bias: conv.bias.as_ref().map(|_| format!("{path}.bias")),
        in_channels,
        out_channels,
        kernel: [kh, kw],
        padding,
        input_side,
        relu: true,
    })
}
