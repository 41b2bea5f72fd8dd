//! Models: LeNet-300-100, a LeNet-5-style conv net, Conv-2/4/6 and a small ViT, all for
//! 28×28×1 inputs, in one registry ([`ModelKind::spec`]).
//!
//! Everything else in the lab is generic over any [`Classifier`]: a burn [`Module`] with a
//! forward pass from flattened images to logits.

pub mod classifier;
pub mod conv;
pub mod gates;
pub mod init;
pub mod mlp;
pub mod stages;
pub mod vit;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

pub use classifier::Classifier;
pub use conv::ConvNet;
pub use gates::Gates;
pub use init::{glorot_normal, glorot_normal_stream};
pub use mlp::Mlp;
pub use stages::{Stage, StageError, check_chain};
pub use vit::{Vit, VitShape};

/// A classifier the lab can build from a [`ModelKind`]. The lab's own models are all one
/// type, [`Net`]; a model of your own implements this to run through the same experiments.
pub trait Architecture: Classifier {
    /// Builds the (uninitialised) architecture, or `None` if `kind` is not of this type.
    fn build(kind: ModelKind, device: &Device) -> Option<Self>;
}

// ---------------------------------------------------------------------------------------
// The registry. Adding a model touches only this section: a variant of `ModelKind`, its row
// in `ModelKind::ALL` and `ModelKind::spec`, and, for a new kind of network, a variant of
// `Net`. The CLI's `--model`, the notebooks and the page's model list all read it from here.
// ---------------------------------------------------------------------------------------

/// The models of the lab, sized for 28×28×1 images and 10 classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    #[default]
    Lenet300,
    Lenet5,
    Conv2,
    Conv4,
    Conv6,
    Vit,
}

/// Per-round pruning rates by parameter-path glob pattern, first match wins.
pub type PruneRates = &'static [(&'static str, f64)];

/// What the lab knows about a model: its name, what it is, how to build it, and the pruning
/// rates its sources suggest per layer (glob patterns over parameter paths, first match
/// wins; a layer no rule names gets [`crate::pruning::prune::PruneConfig`]'s rates).
#[derive(Debug, Clone, Copy)]
pub struct ModelSpec {
    pub kind: ModelKind,
    /// Command-line and record name.
    pub name: &'static str,
    pub summary: &'static str,
    pub build: fn(&Device) -> Net,
    pub prune_rates: PruneRates,
}

impl ModelKind {
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Lenet300,
        ModelKind::Lenet5,
        ModelKind::Conv2,
        ModelKind::Conv4,
        ModelKind::Conv6,
        ModelKind::Vit,
    ];

    pub fn spec(self) -> ModelSpec {
        let (name, summary, build, prune_rates): (_, _, fn(&Device) -> Net, PruneRates) = match self
        {
            ModelKind::Lenet300 => (
                "lenet300",
                "LeNet-300-100: 784-300-100-10, ReLU (Frankle & Carbin 2019)",
                |d| Net::Mlp(Mlp::new(&[784, 300, 100, 10], d)),
                &[],
            ),
            ModelKind::Lenet5 => (
                "lenet5",
                "LeNet-5 adapted to 28×28: 6@5×5, pool, 16@5×5, pool, 120-84-10",
                |d| Net::Conv(ConvNet::lenet5(d)),
                &[],
            ),
            ModelKind::Conv2 => (
                "conv2",
                "Conv-2: 2×64@3×3, pool, 256-256-10 (Frankle & Carbin 2019)",
                |d| Net::Conv(ConvNet::conv_family(1, d)),
                &[],
            ),
            ModelKind::Conv4 => (
                "conv4",
                "Conv-4: Conv-2 then 2×128@3×3, pool, 256-256-10",
                |d| Net::Conv(ConvNet::conv_family(2, d)),
                &[],
            ),
            ModelKind::Conv6 => (
                "conv6",
                "Conv-6: Conv-4 then 2×256@3×3, pool, 256-256-10",
                |d| Net::Conv(ConvNet::conv_family(3, d)),
                &[],
            ),
            ModelKind::Vit => (
                "vit",
                "ViT: 7×7 patches, width 64, 4 heads, 2 pre-norm blocks, MLP 128",
                |d| Net::Vit(Vit::new(VitShape::MNIST_TINY, 10, d)),
                // Low for the embedding and the head, medium for attention, high for the MLPs.
                &[
                    ("patch_embedding.*", 0.1),
                    ("head.*", 0.1),
                    ("*.attention.*", 0.15),
                    ("*.mlp_*", 0.2),
                ],
            ),
        };
        ModelSpec {
            kind: self,
            name,
            summary,
            build,
            prune_rates,
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }

    pub fn parse(name: &str) -> Option<ModelKind> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }
}

/// Every network of the registry as one burn module, so that the lab's loops are compiled
/// once for all of them. Parameter paths are those of the inner network (`layers.0.weight`):
/// [`crate::base::params::PathTracker`] leaves the variant out.
// A network is built a few times per run, never in a hot loop: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Net {
    Mlp(Mlp),
    Conv(ConvNet),
    Vit(Vit),
}

impl Classifier for Net {
    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2> {
        match self {
            Net::Mlp(net) => net.forward_gated(images, gates),
            Net::Conv(net) => net.forward_gated(images, gates),
            Net::Vit(net) => net.forward_gated(images, gates),
        }
    }

    fn stages(&self) -> Option<Vec<Stage>> {
        Net::stages(self)
    }
}

impl Net {
    /// The network as a sequence of stages, or `None` if it is not sequential (the ViT's
    /// residual blocks): what structured pruning, compaction and the sparse engine need.
    pub fn stages(&self) -> Option<Vec<Stage>> {
        match self {
            Net::Mlp(net) => Some(net.stages()),
            Net::Conv(net) => net.stages(),
            Net::Vit(_) => None,
        }
    }

    /// The same architecture with other unit counts: `units` lists, for every weighted stage
    /// but the last, its units (neurons or filters), as [`Self::stages`] orders them. The
    /// inputs and the output classes stay.
    pub fn with_units(&self, units: &[usize], device: &Device) -> Option<Net> {
        match self {
            Net::Mlp(net) => {
                let widths = net.widths();
                let (first, last) = (widths.first()?, widths.last()?);
                let mut new = vec![*first];
                new.extend(units);
                new.push(*last);
                Some(Net::Mlp(Mlp::new(&new, device)))
            }
            Net::Conv(net) => Some(Net::Conv(net.with_units(units, device))),
            Net::Vit(_) => None,
        }
    }
}

impl Architecture for Net {
    fn build(kind: ModelKind, device: &Device) -> Option<Self> {
        Some((kind.spec().build)(device))
    }
}

// ---------------------------------------------------------------------------------------

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
