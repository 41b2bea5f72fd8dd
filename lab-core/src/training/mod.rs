//! Floor 2: the one training loop and the hooks it owns: its config and outcome, the curve types,
//! the optimiser, checkpoints, the observer, the mask-policy trait, a round's result,
//! the pack (many networks of one shape trained as one), and sparse training on the host
//! (only the kept weights computed).

pub mod checkpoint;
pub mod curve;
pub mod experiment;
pub mod observer;
pub mod optim;
pub mod pack;
pub mod policy;
pub mod result;
pub mod sparse;
pub mod train;
