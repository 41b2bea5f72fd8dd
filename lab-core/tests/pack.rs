//! The pack: R networks trained as one give each member what it gets trained alone.

mod common;

use lab_core::base::backend::BackendKind;
use lab_core::base::mask::Mask;
use lab_core::base::model::{Mlp, ModelKind, Net, init_model};
use lab_core::base::params::read_weights;
use lab_core::base::rng::Rng;
use lab_core::block_on;
use lab_core::training::observer::Silent;
use lab_core::training::pack::{PackMember, PackedMlp, train_packed};
use lab_core::training::train::{Prepared, TrainConfig, TrainOutcome, train};

fn lenet(seed: u64, device: &burn::tensor::Device) -> Mlp {
    match init_model::<Net>(ModelKind::Lenet300, seed, device) {
        Net::Mlp(mlp) => mlp,
        _ => unreachable!("LeNet-300-100 is an MLP"),
    }
}

/// A mask keeping a random `keep` share of every weight matrix.
fn random_mask(model: &Mlp, keep: f64, seed: u64) -> Mask {
    let mut mask = Mask::dense_for(model);
    let mut rng = Rng::for_purpose(seed, "test-mask");
    for layer in &mut mask.layers {
        for k in &mut layer.keep {
            *k = rng.uniform() < keep;
        }
    }
    mask
}

fn config() -> TrainConfig {
    TrainConfig::new().with_iterations(40).with_eval_every(20)
}

/// The largest |a − b| / max(|b|, 1e-6) over every parameter.
fn max_relative_difference(a: &Mlp, b: &Mlp) -> f64 {
    let (a, b) = (
        block_on(read_weights(a)).unwrap(),
        block_on(read_weights(b)).unwrap(),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .flat_map(|(path, t)| t.values.iter().zip(&b[path].values))
        .map(|(&x, &y)| f64::from((x - y).abs()) / f64::from(y.abs()).max(1e-6))
        .fold(0.0, f64::max)
}

fn members_alone_and_packed(kind: BackendKind) -> (Vec<TrainOutcome<Mlp>>, Vec<TrainOutcome<Mlp>>) {
    let device = kind.device().unwrap();
    let data = Prepared::new(&common::mnist().limited(Some(2000), Some(300)), &device);
    let device = device.autodiff();
    // A dense member, a 20% one and a 2% one, each with its own init and data order.
    let seeds = [0u64, 1, 2];
    let masks = [None, Some(0.2), Some(0.02)];
    let members = || {
        seeds.iter().zip(masks).map(|(&seed, keep)| {
            let model = lenet(seed, &device);
            let mask = keep.map(|k| random_mask(&model, k, seed));
            PackMember {
                model,
                mask,
                data_seed: seed + 10,
            }
        })
    };
    let alone = members()
        .map(|m| {
            let config = config().with_data_seed(Some(m.data_seed));
            block_on(train(
                m.model,
                m.mask.as_ref(),
                &data,
                &config,
                None,
                &mut Silent,
            ))
            .unwrap()
        })
        .collect();
    let packed = block_on(train_packed(
        members().collect(),
        &data,
        &config(),
        &mut Silent,
    ))
    .unwrap();
    (alone, packed)
}

fn check_members_match(kind: BackendKind) {
    let (alone, packed) = members_alone_and_packed(kind);
    assert_eq!(alone.len(), packed.len());
    for (member, (a, p)) in alone.iter().zip(&packed).enumerate() {
        let difference = max_relative_difference(&p.model, &a.model);
        eprintln!(
            "{}: member {member}: largest relative weight difference {difference:e}",
            kind.name()
        );
        eprintln!(
            "  alone  {:?}",
            a.curve.iter().map(|p| p.test_accuracy).collect::<Vec<_>>()
        );
        eprintln!(
            "  packed {:?}",
            p.curve.iter().map(|p| p.test_accuracy).collect::<Vec<_>>()
        );
        assert_eq!(difference, 0.0, "member {member}'s weights");
        assert_eq!(p.curve, a.curve, "member {member}'s curve");
        assert_eq!(p.early_stop, a.early_stop);
    }
}

#[test]
fn a_packed_member_trains_bit_for_bit_as_alone_on_flex() {
    check_members_match(BackendKind::Flex);
}

#[test]
fn a_packed_member_trains_bit_for_bit_as_alone_on_ndarray() {
    check_members_match(BackendKind::Ndarray);
}

#[test]
fn a_pack_unstacks_to_its_members() {
    let device = BackendKind::Flex.device().unwrap();
    let members = [lenet(0, &device), lenet(1, &device)];
    let pack = PackedMlp::stack(&members).unwrap();
    assert_eq!(pack.members(), 2);
    for (r, m) in members.iter().enumerate() {
        assert_eq!(max_relative_difference(&pack.member(r), m), 0.0);
    }
    let odd = Mlp::new(&[784, 30, 10], &device);
    assert!(PackedMlp::stack(&[members[0].clone(), odd]).is_err());
}
