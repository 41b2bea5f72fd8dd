//! Floor 4: the follow-up analyses over the methods: linear mode connectivity, early-bird
//! tickets, transfer, weight histograms, mask overlap. No analysis imports another; they share
//! `error`.

pub mod early_bird;
pub mod error;
pub mod histogram;
pub mod lmc;
pub mod overlap;
pub mod transfer;
