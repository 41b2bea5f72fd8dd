//! # lab-core: the science of LTH Lab
//!
//! Lottery Ticket Hypothesis experiments on burn: MNIST-format data, models, masks over any
//! burn `Module`, training, iterative magnitude pruning with (late) rewinding and its
//! controls, tickets, records and charts.
//!
//! burn 0.22 erases the backend behind [`burn::tensor::Device`]: every function here takes
//! tensors and modules on *any* device (NdArray, wgpu/Vulkan, WebGPU), and the training loop
//! is `async` so the same code runs natively, in notebooks and in browsers. File-system
//! access lives behind the `native` feature.

pub mod backend;
pub mod bench;
pub mod checkpoint;
pub mod data;
pub mod dst;
pub mod early_bird;
pub mod error;
pub mod export;
pub mod histogram;
pub mod hvp;
pub mod imp;
pub mod lmc;
pub mod mask;
pub mod model;
#[cfg(all(feature = "evcxr", feature = "native"))]
pub mod notebook;
pub mod optim;
pub mod overlap;
pub mod pai;
pub mod params;
pub mod plot;
pub mod prune;
pub mod record;
pub mod reproduce;
pub mod rng;
pub mod sparse;
pub mod store;
pub mod structured;
pub mod ticket;
pub mod train;
pub mod transfer;

pub use burn;

/// Runs a future to completion on this thread (native only; browsers await instead).
#[cfg(feature = "native")]
pub use pollster::block_on;
