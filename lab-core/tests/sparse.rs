//! Sparse execution and structured pruning against the dense masked network (burn, NdArray):
//! the CSR forward pass, compaction, the unit-removal rule, and the sparse file format.

mod common;

use lab_core::block_on;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
use lab_core::imp::masked_weights;
use lab_core::mask::Mask;
use lab_core::model::{Classifier, ModelKind, Net, init_model};
use lab_core::params::{Weights, load_weights, read_weights};
use lab_core::prune::{PruneConfig, PruneScope, magnitudes, to_density};
use lab_core::rng::Rng;
use lab_core::sparse::SparseNet;
use lab_core::structured::{self, UnitNorm, compact, live_units, prune_units, unit_layers};
use lab_core::ticket::Provenance;

fn device() -> Device {
    lab_core::backend::BackendKind::Ndarray.device().unwrap()
}

/// burn's logits of `net` with `weights` (already masked), `[batch][10]`.
fn dense_logits(net: &Net, weights: &Weights, images: &[f32], device: &Device) -> Vec<f32> {
    let model = load_weights(net.clone(), weights);
    let batch = images.len() / 784;
    let x = Tensor::<2>::from_data(TensorData::new(images.to_vec(), [batch, 784]), device);
    let data = block_on(model.forward(x).into_data_async()).unwrap();
    data.convert::<f32>().try_into_vec::<f32>().unwrap()
}

fn random_images(batch: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..batch * 784).map(|_| rng.normal() as f32).collect()
}

fn real_images(batch: usize) -> Vec<f32> {
    let test = &common::mnist().test;
    test.standardised(&(0..batch).collect::<Vec<_>>())
}

fn assert_close(found: &[f32], expected: &[f32], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    for (i, (a, b)) in found.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
            "{what}: logit {i} is {a}, the dense masked net gives {b}"
        );
    }
}

struct Fixture {
    net: Net,
    weights: Weights,
    stages: Vec<lab_core::model::Stage>,
}

fn fixture(kind: ModelKind, seed: u64) -> Fixture {
    let device = device();
    let net: Net = init_model(kind, seed, &device);
    let mut weights = block_on(read_weights(&net)).unwrap();
    // Non-zero biases, so a kept bias of a pruned unit would show.
    for (path, t) in weights.iter_mut() {
        if path.ends_with("bias") {
            let mut rng = Rng::new(seed ^ 0xb1a5);
            t.values
                .iter_mut()
                .for_each(|v| *v = 0.1 * rng.normal() as f32);
        }
    }
    let stages = net.stages().expect("a sequential net");
    Fixture {
        net,
        weights,
        stages,
    }
}

fn magnitude_mask(f: &Fixture, density: f64) -> Mask {
    let dense = Mask::dense_for(&f.net);
    to_density(
        &dense,
        &magnitudes(&f.weights),
        density,
        PruneScope::PerLayer,
    )
}

#[test]
fn sparse_forward_equals_the_dense_masked_forward_at_every_density() {
    let device = device();
    for kind in [ModelKind::Lenet300, ModelKind::Lenet5] {
        let f = fixture(kind, 3);
        for density in [1.0, 0.5, 0.2, 0.05, 0.01, 0.0] {
            let mask = magnitude_mask(&f, density);
            let masked = masked_weights(&f.weights, &mask);
            let sparse = SparseNet::new(&f.stages, &f.weights, &mask).unwrap();
            assert_eq!(
                sparse.size().nonzeros,
                mask.remaining(),
                "{kind:?} {density}"
            );
            for (batch, images) in [
                (1, random_images(1, 1)),
                (7, random_images(7, 2)),
                (60, real_images(60)),
            ] {
                let what = format!("{kind:?} density {density} batch {batch}");
                let expected = dense_logits(&f.net, &masked, &images, &device);
                assert_close(&sparse.forward(&images).unwrap(), &expected, &what);
            }
        }
    }
}

#[test]
fn sparse_forward_handles_empty_rows_and_whole_empty_layers() {
    let device = device();
    let f = fixture(ModelKind::Lenet300, 5);
    let mut mask = magnitude_mask(&f, 0.3);
    // Output units 0, 17 and 299 of the first layer lose every input (empty CSR rows), and
    // the second layer loses everything.
    let first = &mut mask.layers[0];
    for i in 0..784 {
        for u in [0, 17, 299] {
            first.keep[i * 300 + u] = false;
        }
    }
    mask.layers[1].keep.iter_mut().for_each(|k| *k = false);
    let sparse = SparseNet::new(&f.stages, &f.weights, &mask).unwrap();
    let images = real_images(9);
    let expected = dense_logits(&f.net, &masked_weights(&f.weights, &mask), &images, &device);
    assert_close(&sparse.forward(&images).unwrap(), &expected, "empty rows");
}

#[test]
fn sparse_file_round_trips_exactly_and_refuses_damage() {
    let f = fixture(ModelKind::Lenet5, 7);
    let mask = magnitude_mask(&f, 0.1);
    let sparse = SparseNet::new(&f.stages, &f.weights, &mask).unwrap();
    let provenance = Provenance {
        model: "lenet5".into(),
        dataset: "mnist".into(),
        round: 3,
        rewind: "init".into(),
        seed: 7,
        run: "imp-test".into(),
        weights_remaining: mask.density(),
        stream: String::new(),
    };
    let bytes = sparse.to_safetensors(&provenance);
    let (loaded, read) = SparseNet::from_safetensors(&bytes).unwrap();
    assert_eq!(loaded, sparse);
    assert_eq!(read, provenance);
    let images = real_images(5);
    let (a, b) = (
        sparse.forward(&images).unwrap(),
        loaded.forward(&images).unwrap(),
    );
    assert_eq!(
        a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    // A truncated file and a wrong input size are errors, not panics.
    assert!(SparseNet::from_safetensors(&bytes[..bytes.len() / 2]).is_err());
    assert!(sparse.forward(&images[..100]).is_err());
}

/// Every unit is either whole (all incoming and reading weights kept) or gone (none).
fn assert_whole_units(stages: &[lab_core::model::Stage], mask: &Mask) {
    let live = live_units(stages, mask).unwrap();
    let dense = Mask {
        layers: mask
            .layers
            .iter()
            .map(|l| lab_core::mask::LayerMask::dense(&l.name, &l.shape))
            .collect(),
    };
    let rebuilt = structured::remove_units(stages, &dense, &live).unwrap();
    assert_eq!(&rebuilt, mask, "the mask is exactly its units' removal");
}

#[test]
fn structured_rounds_remove_whole_units_by_the_counting_rule() {
    for (kind, norm) in [
        (ModelKind::Lenet300, UnitNorm::L1),
        (ModelKind::Lenet5, UnitNorm::L2),
    ] {
        let f = fixture(kind, 11);
        let config = PruneConfig::default();
        let layers = unit_layers(&f.stages);
        let mut mask = Mask::dense_for(&f.net);
        let mut expected_units: Vec<usize> = layers.iter().map(|l| l.units).collect();
        for round in 1..=3 {
            let before = live_units(&f.stages, &mask).unwrap();
            mask = prune_units(&f.stages, &mask, &f.weights, norm, &config).unwrap();
            assert_whole_units(&f.stages, &mask);
            let live = live_units(&f.stages, &mask).unwrap();
            for (l, layer) in layers.iter().enumerate() {
                let rate = if layer.weight.starts_with("convs") {
                    config.conv_rate
                } else {
                    config.rate
                };
                expected_units[l] -= (expected_units[l] as f64 * rate).round() as usize;
                let kept = live[l].iter().filter(|&&a| a).count();
                assert_eq!(
                    kept, expected_units[l],
                    "{kind:?} round {round} {}",
                    layer.weight
                );
                // The removed units are the lowest-norm ones of those alive (an independent
                // computation from the dense weights: this fixture was never masked inside a
                // unit, so a unit's norm is that of its whole weight column or filter).
                let w = &f.weights[&layer.weight];
                let norm_of = |u: usize| -> f64 {
                    let values: Vec<f64> = match w.shape.len() {
                        2 => (0..w.shape[0])
                            .map(|i| w.values[i * w.shape[1] + u] as f64)
                            .collect(),
                        _ => {
                            let cols = w.values.len() / w.shape[0];
                            w.values[u * cols..(u + 1) * cols]
                                .iter()
                                .map(|&v| v as f64)
                                .collect()
                        }
                    };
                    match norm {
                        UnitNorm::L1 => values.iter().map(|v| v.abs()).sum(),
                        UnitNorm::L2 => values.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    }
                };
                let removed: Vec<usize> = (0..layer.units)
                    .filter(|&u| before[l][u] && !live[l][u])
                    .collect();
                let kept_units: Vec<usize> = (0..layer.units).filter(|&u| live[l][u]).collect();
                if l == 0 {
                    let worst_kept = kept_units
                        .iter()
                        .map(|&u| norm_of(u))
                        .fold(f64::INFINITY, f64::min);
                    let best_removed = removed
                        .iter()
                        .map(|&u| norm_of(u))
                        .fold(f64::NEG_INFINITY, f64::max);
                    assert!(
                        best_removed <= worst_kept,
                        "{kind:?} round {round}: a removed unit outscored a kept one"
                    );
                }
            }
        }
        // The output layer keeps its ten classes.
        let last = mask.layers.last().unwrap();
        assert_eq!(*last.shape.last().unwrap(), 10);
    }
}

#[test]
fn compacted_networks_give_the_masked_networks_logits() {
    let device = device();
    for (kind, scope) in [
        (ModelKind::Lenet300, PruneScope::PerLayer),
        (ModelKind::Lenet5, PruneScope::PerLayer),
        (ModelKind::Lenet300, PruneScope::Global),
    ] {
        let f = fixture(kind, 13);
        let config = PruneConfig {
            scope,
            rate: 0.5,
            conv_rate: 0.5,
            ..PruneConfig::default()
        };
        let mut mask = Mask::dense_for(&f.net);
        for _ in 0..2 {
            mask = prune_units(&f.stages, &mask, &f.weights, UnitNorm::L1, &config).unwrap();
        }
        let masked = masked_weights(&f.weights, &mask);
        let compacted = compact(&f.net, &f.weights, &mask, &device).unwrap();
        assert!(
            compacted.weights_after < compacted.weights_before / 2,
            "{kind:?}: {} of {}",
            compacted.weights_after,
            compacted.weights_before
        );
        assert_eq!(
            compacted.weights_after,
            mask.remaining(),
            "{kind:?}: a structured mask compacts to its kept weights"
        );
        let images = real_images(20);
        let expected = dense_logits(&f.net, &masked, &images, &device);
        let x = Tensor::<2>::from_data(TensorData::new(images.clone(), [20, 784]), &device);
        let found = block_on(compacted.net.forward(x).into_data_async())
            .unwrap()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .unwrap();
        assert_close(&found, &expected, &format!("{kind:?} compacted"));
    }
}

#[test]
fn export_load_infer_round_trips_every_format_exactly() {
    use lab_core::export::{ExportFormat, export, load};
    use lab_core::ticket::Ticket;
    let device = device();
    let f = fixture(ModelKind::Lenet300, 17);
    let config = PruneConfig {
        rate: 0.4,
        ..PruneConfig::default()
    };
    let mask = prune_units(
        &f.stages,
        &Mask::dense_for(&f.net),
        &f.weights,
        UnitNorm::L2,
        &config,
    )
    .unwrap();
    let ticket = Ticket {
        mask: mask.clone(),
        weights: f.weights.clone(),
        provenance: Provenance {
            model: "lenet300".into(),
            dataset: "mnist".into(),
            round: 1,
            rewind: "init".into(),
            seed: 17,
            run: "imp-test".into(),
            weights_remaining: mask.density(),
            stream: String::new(),
        },
    };
    let images = real_images(33);
    let masked = masked_weights(&f.weights, &mask);
    let reference = dense_logits(&f.net, &masked, &images, &device);
    let compacted = compact(&f.net, &f.weights, &mask, &device).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(images.clone(), [33, 784]), &device);
    let compact_reference: Vec<f32> = block_on(compacted.net.forward(x).into_data_async())
        .unwrap()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap();
    let sparse_reference = SparseNet::new(&f.stages, &f.weights, &mask)
        .unwrap()
        .forward(&images)
        .unwrap();
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for format in ExportFormat::ALL {
        let bytes = export(&ticket, format, &device).unwrap();
        let loaded = load(&bytes, &device).unwrap();
        assert_eq!(loaded.format(), format);
        assert_eq!(loaded.provenance(), &ticket.provenance);
        let logits = block_on(loaded.logits(&images, &device)).unwrap();
        // Bit for bit what the network it was written from computes.
        let expected = match format {
            ExportFormat::Dense => &reference,
            ExportFormat::Compact => &compact_reference,
            ExportFormat::Csr => &sparse_reference,
        };
        assert_eq!(bits(&logits), bits(expected), "{format:?}");
        assert_close(&logits, &reference, &format!("{format:?} vs dense"));
        assert!(load(&bytes[..bytes.len() - 4], &device).is_err());
    }
    assert_eq!(compacted.units, vec![180, 60]);
}
