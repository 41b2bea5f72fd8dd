//! Floor 5: what is shown: IMP's charts, one method's results on another's charts, the paper's
//! reproduction over seeds, benchmarks and the notebook display.

pub mod bench;
pub mod charts;
pub mod comparison;
#[cfg(all(feature = "evcxr", feature = "native"))]
pub mod notebook;
pub mod registry;
pub mod reproduce;
