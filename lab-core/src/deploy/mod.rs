//! Floor 3: running a trained ticket: the CSR sparse engine, compaction of structured tickets,
//! and dense/compact/CSR files with inference. Deploy never imports a method.

pub mod compact;
pub mod error;
pub mod export;
pub mod sparse;
