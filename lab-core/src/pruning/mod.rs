//! Floor 2: choosing which weights go. Magnitude and random pruning with their rates and scopes,
//! N:M groups, whole units, and one round at any granularity.

pub mod granularity;
pub mod prune;
pub mod round;
pub mod units;
