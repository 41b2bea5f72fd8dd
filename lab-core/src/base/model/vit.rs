//! A small vision transformer for 28×28×1 images: 7×7 patches (16 tokens), a linear patch
//! embedding with learned position embeddings, pre-norm blocks of multi-head self-attention
//! and a GELU MLP, then a layer norm, mean pooling over tokens and a linear head.
//!
//! Prunable (the lab's default rule: `weight` of a Linear or Conv): the patch embedding, the
//! query/key/value/output projections, both MLP layers and the head. Position embeddings and
//! layer norms are never pruned. The non-linearities (softmax, GELU, layer norm) are smooth, so
//! [`Gates`] has nothing to freeze and the exact Hessian-vector products of [`crate::methods::pai::hvp`] hold.
//! Dropout is off: training stays a function of the seeds.

use burn::module::Module;
use burn::nn::attention::{MhaInput, MultiHeadAttention, MultiHeadAttentionConfig};
use burn::nn::{Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::gelu;
use burn::tensor::{Device, Tensor};

use super::classifier::Classifier;
use super::gates::Gates;
use crate::base::data::IMAGE_SIDE;

/// Shape of a [`Vit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VitShape {
    /// Side of a square patch; must divide 28.
    pub patch: usize,
    pub width: usize,
    pub heads: usize,
    pub depth: usize,
    pub mlp_width: usize,
}

impl VitShape {
    /// The lab's MNIST ViT: 7×7 patches, width 64, 4 heads, 2 blocks, MLP 128 (≈ 70K weights).
    pub const MNIST_TINY: VitShape = VitShape {
        patch: 7,
        width: 64,
        heads: 4,
        depth: 2,
        mlp_width: 128,
    };

    fn tokens(self) -> usize {
        (IMAGE_SIDE / self.patch).pow(2)
    }
}

/// One pre-norm transformer block.
#[derive(Module, Debug)]
pub struct Block {
    pub norm1: LayerNorm,
    pub attention: MultiHeadAttention,
    pub norm2: LayerNorm,
    pub mlp_in: Linear,
    pub mlp_out: Linear,
}

impl Block {
    fn new(shape: VitShape, device: &Device) -> Self {
        Self {
            norm1: LayerNormConfig::new(shape.width).init(device),
            attention: MultiHeadAttentionConfig::new(shape.width, shape.heads)
                .with_dropout(0.0)
                .init(device),
            norm2: LayerNormConfig::new(shape.width).init(device),
            mlp_in: LinearConfig::new(shape.width, shape.mlp_width).init(device),
            mlp_out: LinearConfig::new(shape.mlp_width, shape.width).init(device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let attended = self
            .attention
            .forward(MhaInput::self_attn(self.norm1.forward(x.clone())))
            .context;
        let x = x + attended;
        let hidden = gelu(self.mlp_in.forward(self.norm2.forward(x.clone())));
        x + self.mlp_out.forward(hidden)
    }
}

/// A vision transformer on flattened 28×28 images.
#[derive(Module, Debug)]
pub struct Vit {
    pub patch_embedding: Linear,
    /// One learned vector per patch position (an Embedding, so that the seeded
    /// initialisation draws it and pruning leaves it alone).
    pub position: Embedding,
    pub blocks: Vec<Block>,
    pub norm: LayerNorm,
    pub head: Linear,
    patch: usize,
}

impl Vit {
    pub fn new(shape: VitShape, classes: usize, device: &Device) -> Self {
        assert!(
            IMAGE_SIDE.is_multiple_of(shape.patch),
            "patch side must divide 28"
        );
        Self {
            patch_embedding: LinearConfig::new(shape.patch * shape.patch, shape.width).init(device),
            position: EmbeddingConfig::new(shape.tokens(), shape.width).init(device),
            blocks: (0..shape.depth)
                .map(|_| Block::new(shape, device))
                .collect(),
            norm: LayerNormConfig::new(shape.width).init(device),
            head: LinearConfig::new(shape.width, classes).init(device),
            patch: shape.patch,
        }
    }

    /// `[batch, 784]` → `[batch, tokens, patch²]`, patches in row-major order.
    pub fn patches(&self, images: Tensor<2>) -> Tensor<3> {
        let [batch, _] = images.dims();
        let (p, n) = (self.patch, IMAGE_SIDE / self.patch);
        images
            .reshape([batch, n, p, n, p])
            .swap_dims(2, 3)
            .reshape([batch, n * n, p * p])
    }
}

impl Classifier for Vit {
    fn forward_gated(&self, images: Tensor<2>, _gates: &mut Gates) -> Tensor<2> {
        let tokens = self.patch_embedding.forward(self.patches(images));
        let position = self.position.weight.val().unsqueeze::<3>();
        let mut x = tokens + position;
        for block in &self.blocks {
            x = block.forward(x);
        }
        let pooled: Tensor<2> = self.norm.forward(x).mean_dim(1).squeeze_dim(1);
        self.head.forward(pooled)
    }
}
