//! Shared helpers for lab-core's integration tests.
#![allow(dead_code)]

pub mod reference;

use std::sync::OnceLock;

use lab_core::base::data::native::{DataSource, load};
use lab_core::base::data::{DatasetKind, Mnist};

/// The real MNIST (found as the CLI finds it: LTH_DATA, data/, the checkout's ../shared/).
pub fn mnist() -> &'static Mnist {
    static DATA: OnceLock<Mnist> = OnceLock::new();
    DATA.get_or_init(|| {
        let (data, _) = load(
            DatasetKind::Mnist,
            &DataSource::default(),
            &mut |_, _, _| {},
        )
        .expect("real MNIST: put it in ../shared/mnist or set LTH_DATA");
        data
    })
}
