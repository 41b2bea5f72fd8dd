//! Floor 3: the methods, each with its report: IMP with rewinding and controls, pruning at
//! initialisation (with the exact Hessian-vector products), dynamic sparse training. No method
//! imports another.

pub mod dst;
pub mod imp;
pub mod pai;
