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

// The floors, from the ground up. A module imports only from its own floor's folder or from
// floors below it (`tests/layers.rs` checks this on every `use crate::` path):
pub mod analyses; // LMC, early-bird, transfer, histograms, overlap (never each other)
pub mod base; // errors, rng, backends, store, record keys and names, params, masks, tickets, data, models, charts
pub mod deploy; // the sparse engine, compaction, export and inference (never a method)
pub mod methods; // IMP, pruning at initialisation, dynamic sparse training (never each other)
pub mod pruning; // magnitude, N:M and unit pruning, scoring rules, rounds
pub mod report; // IMP charts, comparisons, the reproduction, benchmarks, notebook display
pub mod training; // the loop and its hooks: config, curves, optimiser, checkpoints, observer, mask policy, pack, sparse steps

pub use burn;

/// Runs a future to completion on this thread (native only; browsers await instead).
#[cfg(feature = "native")]
pub use pollster::block_on;
