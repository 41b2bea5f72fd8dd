//! Exact Hessian-vector products on the networks the lab runs (a ReLU MLP, a conv net with
//! max-pool), against an independent f64 reference: gradients written out by hand, and H·v
//! as a central difference at a step so small that no ReLU gate or pool argmax flips (checked).
//! GraSP's Hg and ProsPr's meta-gradient are both checked this way.

mod common;

use common::reference::{Net, Params, agreement, axpy, dot, norm, to_f64};
use lab_core::base::backend::BackendKind;
use lab_core::base::data::Split;
use lab_core::base::mask::Mask;
use lab_core::base::model::{Classifier, ModelKind, Net as LabNet, init_model};
use lab_core::base::params::{HostTensor, Weights, read_weights};
use lab_core::base::rng::Rng;
use lab_core::block_on;
use lab_core::burn::tensor::Device;
use lab_core::methods::pai::hvp::LossBatch;
use lab_core::methods::pai::{
    GRASP_TEMPERATURE, balanced_sample, hessian_gradient, prospr_meta_gradient,
};
use lab_core::pruning::prune::{PruneScope, to_density};

fn device() -> Device {
    BackendKind::Ndarray.device().unwrap().autodiff()
}

/// Standardised inputs and labels of `indices`, in f64, computed here (not by the lab).
fn examples(split: &Split, indices: &[usize]) -> (Vec<Vec<f64>>, Vec<usize>) {
    let table = split.pixels.table();
    let inputs = indices
        .iter()
        .map(|&i| {
            split
                .image(i)
                .iter()
                .map(|&p| f64::from(table[p as usize]))
                .collect()
        })
        .collect();
    (
        inputs,
        indices.iter().map(|&i| split.labels[i] as usize).collect(),
    )
}

fn only(params: &Params, mask: &Mask) -> Params {
    mask.layers
        .iter()
        .map(|l| (l.name.clone(), params[&l.name].clone()))
        .collect()
}

fn as_f32(params: &Params, weights_like: &Weights) -> Weights {
    params
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                HostTensor {
                    shape: weights_like[k].shape.clone(),
                    values: v.iter().map(|&x| x as f32).collect(),
                },
            )
        })
        .collect()
}

/// Keeps the weights with the highest `score`; returns the share of `a`'s kept weights `b`
/// keeps too.
fn overlap(mask: &Mask, a: &Weights, b: &Weights, density: f64) -> f64 {
    let (ma, mb) = (
        to_density(mask, a, density, PruneScope::Global),
        to_density(mask, b, density, PruneScope::Global),
    );
    let both: usize = ma
        .layers
        .iter()
        .zip(&mb.layers)
        .map(|(x, y)| {
            x.keep
                .iter()
                .zip(&y.keep)
                .filter(|(p, q)| **p && **q)
                .count()
        })
        .sum();
    both as f64 / ma.remaining() as f64
}

/// GraSP's Hg on `model` against the reference: returns (cosine, relative error).
fn check_grasp<M: Classifier>(
    model: &M,
    net: Net,
    per_class: usize,
    temperature: f64,
) -> (f64, f64) {
    let device = device();
    let split = &common::mnist().train;
    let sample = balanced_sample(split, per_class, 0);
    let batch = LossBatch::new(split, &sample, temperature, &device);
    let mask = Mask::dense_for(model);
    let (g, hg) = block_on(hessian_gradient(model, &mask, &batch, 1e-2)).unwrap();

    let weights = block_on(read_weights(model)).unwrap();
    let net = net.with_shapes(&weights);
    let theta = to_f64(&weights);
    let (x, y) = examples(split, &sample);
    let (_, g_ref, pattern) = net.loss_and_gradient(&theta, &x, &y, temperature, None);
    let (cos_g, err_g) = agreement(&to_f64(&g), &only(&g_ref, &mask));
    assert!(
        cos_g > 0.99999 && err_g < 1e-4,
        "gradient: cos {cos_g}, error {err_g}"
    );

    // The reference H·v: an unfrozen f64 central difference that flips no gate.
    let v = only(&g_ref, &mask);
    let difference = |step: f64| {
        let epsilon = step / norm(&v);
        let (_, plus, p_plus) =
            net.loss_and_gradient(&axpy(&theta, &v, epsilon), &x, &y, temperature, None);
        let (_, minus, p_minus) =
            net.loss_and_gradient(&axpy(&theta, &v, -epsilon), &x, &y, temperature, None);
        let flips = pattern.flips(&p_plus) + pattern.flips(&p_minus);
        let hv: Params = mask
            .layers
            .iter()
            .map(|l| {
                let d = plus[&l.name]
                    .iter()
                    .zip(&minus[&l.name])
                    .map(|(a, b)| (a - b) / (2.0 * epsilon))
                    .collect();
                (l.name.clone(), d)
            })
            .collect();
        (hv, flips)
    };
    let (reference, flips) = difference(1e-7);
    assert_eq!(
        flips, 0,
        "the reference step flipped gates: choose a smaller one"
    );

    // The case is one where gates matter: the old, unfrozen difference at GraSP's step flips
    // gates and is far from the reference.
    let (unfrozen, old_flips) = difference(1e-2);
    let (old_cos, _) = agreement(&unfrozen, &reference);
    println!("unfrozen central difference at step 1e-2: {old_flips} flips, cosine {old_cos:.3}");

    let (cos, err) = agreement(&to_f64(&hg), &reference);
    println!("exact Hg (T = {temperature}): cosine {cos:.6}, relative error {err:.2e}");
    let scores = |hv: &Weights| -> Weights {
        hv.iter()
            .map(|(k, t)| {
                let values = t
                    .values
                    .iter()
                    .zip(&weights[k].values)
                    .map(|(h, w)| h * w)
                    .collect();
                (
                    k.clone(),
                    HostTensor {
                        shape: t.shape.clone(),
                        values,
                    },
                )
            })
            .collect()
    };
    let shared = overlap(
        &mask,
        &scores(&hg),
        &scores(&as_f32(&reference, &weights)),
        0.1,
    );
    println!(
        "10%-density GraSP masks, exact vs reference: {:.4} of weights shared",
        shared
    );
    assert!(shared > 0.99, "GraSP masks differ: {shared}");
    assert!(
        old_flips > 0 && old_cos < 0.95,
        "this case does not discriminate: {old_flips} flips, cos {old_cos}"
    );
    (cos, err)
}

#[test]
fn grasp_hessian_gradient_is_exact_on_lenet300() {
    let model: LabNet = init_model(ModelKind::Lenet300, 0, &device());
    let (cos, err) = check_grasp(&model, Net::mlp(3), 10, GRASP_TEMPERATURE);
    assert!(cos > 0.9999 && err < 1e-2, "cos {cos}, error {err}");
}

#[test]
fn grasp_hessian_gradient_is_exact_on_lenet300_without_temperature() {
    let model: LabNet = init_model(ModelKind::Lenet300, 1, &device());
    let (cos, err) = check_grasp(&model, Net::mlp(3), 10, 1.0);
    assert!(cos > 0.9999 && err < 1e-2, "cos {cos}, error {err}");
}

#[test]
fn grasp_hessian_gradient_is_exact_on_lenet5_with_max_pool() {
    let model: LabNet = init_model(ModelKind::Lenet5, 0, &device());
    let (cos, err) = check_grasp(&model, Net::lenet5(), 3, GRASP_TEMPERATURE);
    assert!(cos > 0.9999 && err < 1e-2, "cos {cos}, error {err}");
}

/// ProsPr's meta-gradient θ0 ⊙ ∂L(θ_K)/∂θ0 against directional derivatives of the whole
/// procedure (K SGD steps on every parameter, then the loss), computed by the reference.
#[test]
fn prospr_meta_gradient_matches_the_reference() {
    let device = device();
    let model: LabNet = init_model(ModelKind::Lenet300, 0, &device);
    let split = &common::mnist().train;
    let (steps, learning_rate) = (2, 0.1);
    let mut rng = Rng::new(5);
    let indices: Vec<Vec<usize>> = (0..=steps)
        .map(|_| (0..24).map(|_| rng.below(split.len())).collect())
        .collect();
    let batches: Vec<LossBatch> = indices
        .iter()
        .map(|b| LossBatch::new(split, b, 1.0, &device))
        .collect();
    let mask = Mask::dense_for(&model);
    let scores = block_on(prospr_meta_gradient(
        &model,
        &mask,
        &batches,
        learning_rate,
        1e-2,
    ))
    .unwrap();
    let scores = to_f64(&scores);

    let weights = block_on(read_weights(&model)).unwrap();
    let net = Net::mlp(3).with_shapes(&weights);
    let theta0 = to_f64(&weights);
    let data: Vec<_> = indices.iter().map(|b| examples(split, b)).collect();
    // The procedure's final loss from θ0, and every decision along the way.
    let procedure = |start: &Params| {
        let mut theta = start.clone();
        let mut patterns = Vec::new();
        for (x, y) in &data[..steps] {
            let (_, g, p) = net.loss_and_gradient(&theta, x, y, 1.0, None);
            patterns.push(p);
            theta = axpy(&theta, &g, -learning_rate);
        }
        let (x, y) = &data[steps];
        let (loss, _, p) = net.loss_and_gradient(&theta, x, y, 1.0, None);
        patterns.push(p);
        (loss, patterns)
    };
    let (_, at_theta) = procedure(&theta0);
    let mut directions: Vec<Params> = (0..3)
        .map(|_| {
            only(&theta0, &mask)
                .into_iter()
                .map(|(k, v)| {
                    (
                        k,
                        v.iter()
                            .map(|_| if rng.below(2) == 0 { -1.0 } else { 1.0 })
                            .collect(),
                    )
                })
                .collect()
        })
        .collect();
    directions.push(
        scores
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|s| s.signum()).collect()))
            .collect(),
    );
    for r in &directions {
        // Moving θ0 by t·(θ0 ⊙ r) is moving the mask c by t·r.
        let u: Params = r
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().zip(&theta0[k]).map(|(a, b)| a * b).collect(),
                )
            })
            .collect();
        let t = 1e-6 / norm(&u);
        let (plus, p_plus) = procedure(&axpy(&theta0, &u, t));
        let (minus, p_minus) = procedure(&axpy(&theta0, &u, -t));
        let flips: usize = at_theta
            .iter()
            .zip(&p_plus)
            .chain(at_theta.iter().zip(&p_minus))
            .map(|(a, b)| a.flips(b))
            .sum();
        assert_eq!(flips, 0, "the reference step flipped gates");
        let reference = (plus - minus) / (2.0 * t);
        let ours = dot(&scores, r);
        println!("directional meta-gradient: ours {ours:.6e}, reference {reference:.6e}");
        assert!(
            (ours - reference).abs() <= 1e-2 * reference.abs().max(1e-9),
            "ProsPr meta-gradient: ours {ours}, reference {reference}"
        );
    }
}
