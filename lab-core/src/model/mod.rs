//! Models: LeNet-300-100, a LeNet-5-style conv net and Conv-2/4/6, all for 28×28×1 inputs.
//!
//! Everything else in the lab is generic over any [`Classifier`]: a burn [`Module`] with a
//! forward pass from flattened images to logits.

pub mod conv;
pub mod gates;
pub mod init;
pub mod mlp;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use conv::ConvNet;
pub use gates::Gates;
pub use init::{glorot_normal, glorot_normal_stream};
pub use mlp::Mlp;

/// A burn module that maps a batch of flattened 28×28 images `[batch, 784]` to logits.
pub trait Classifier: Module + Sized {
    /// The forward pass, with every ReLU and max-pool routed through `gates` (so the exact
    /// Hessian-vector products of [`crate::hvp`] can freeze them).
    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2>;

    fn forward(&self, images: Tensor<2>) -> Tensor<2> {
        self.forward_gated(images, &mut Gates::free())
    }
}

/// A classifier the lab can build from a [`ModelKind`].
pub trait Architecture: Classifier {
    /// Builds the (uninitialised) architecture, or `None` if `kind` is not of this type.
    fn build(kind: ModelKind, device: &Device) -> Option<Self>;
}

/// The models of the LTH paper, sized for MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// 784-300-100-10, ReLU.
    #[default]
    Lenet300,
    /// LeNet-5 adapted to 28×28.
    Lenet5,
    Conv2,
    Conv4,
    Conv6,
}

impl ModelKind {
    pub const ALL: [ModelKind; 5] = [
        ModelKind::Lenet300,
        ModelKind::Lenet5,
        ModelKind::Conv2,
        ModelKind::Conv4,
        ModelKind::Conv6,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Lenet300 => "lenet300",
            ModelKind::Lenet5 => "lenet5",
            ModelKind::Conv2 => "conv2",
            ModelKind::Conv4 => "conv4",
            ModelKind::Conv6 => "conv6",
        }
    }

    pub fn parse(name: &str) -> Option<ModelKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    pub fn is_mlp(self) -> bool {
        self == ModelKind::Lenet300
    }
}

impl Architecture for Mlp {
    fn build(kind: ModelKind, device: &Device) -> Option<Self> {
        match kind {
            ModelKind::Lenet300 => Some(Mlp::new(&[784, 300, 100, 10], device)),
            _ => None,
        }
    }
}

impl Architecture for ConvNet {
    fn build(kind: ModelKind, device: &Device) -> Option<Self> {
        match kind {
            ModelKind::Lenet5 => Some(ConvNet::lenet5(device)),
            ModelKind::Conv2 => Some(ConvNet::conv_family(1, device)),
            ModelKind::Conv4 => Some(ConvNet::conv_family(2, device)),
            ModelKind::Conv6 => Some(ConvNet::conv_family(3, device)),
            ModelKind::Lenet300 => None,
        }
    }
}

/// Builds `kind` with the seeded Gaussian Glorot initialisation θ0.
pub fn init_model<M: Architecture>(kind: ModelKind, seed: u64, device: &Device) -> M {
    init_model_stream(kind, seed, "init", device)
}

/// Builds `kind` with Glorot weights from the streams `"<stream>/<path>"` of `seed`.
pub fn init_model_stream<M: Architecture>(
    kind: ModelKind,
    seed: u64,
    stream: &str,
    device: &Device,
) -> M {
    let model = M::build(kind, device)
        .unwrap_or_else(|| panic!("{} is not built by this architecture", kind.name()));
    glorot_normal_stream(model, seed, stream)
}
