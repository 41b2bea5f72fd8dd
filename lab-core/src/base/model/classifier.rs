//! What every network of the lab is: a burn module from a batch of flattened images to
//! logits, with its ReLUs and max-pools routed through gates.

use burn::module::Module;
use burn::tensor::Tensor;

use super::gates::Gates;
use super::stages::Stage;

/// A burn module that maps a batch of flattened 28×28 images `[batch, 784]` to logits.
pub trait Classifier: Module + Sized {
    /// The forward pass, with every ReLU and max-pool routed through `gates` (so the exact
    /// Hessian-vector products of [`crate::methods::pai::hvp`] can freeze them).
    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2>;

    fn forward(&self, images: Tensor<2>) -> Tensor<2> {
        self.forward_gated(images, &mut Gates::free())
    }

    /// The network as a sequence of stages, if it is one (structured pruning and the sparse
    /// kernels need it).
    fn stages(&self) -> Option<Vec<Stage>> {
        None
    }
}
