//! Floor 1: what everything may use. Errors any module may raise, rng, backends, the record store
//! and every record key and run name, parameters by path, masks, tickets, data and the model
//! registry, and the chart primitive.

pub mod backend;
pub mod chart;
pub mod csr;
pub mod data;
pub mod error;
pub mod keys;
pub mod mask;
pub mod model;
pub mod naming;
pub mod params;
pub mod rng;
pub mod similarity;
pub mod store;
pub mod ticket;
