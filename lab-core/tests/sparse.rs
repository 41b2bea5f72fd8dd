//! Sparse execution and structured pruning against the dense masked network (burn, NdArray):
//! the CSR forward pass, compaction, the unit-removal rule, and the sparse file format.

mod common;

use lab_core::base::mask::Mask;
use lab_core::base::mask::masked_weights;
use lab_core::base::model::{Classifier, ModelKind, Net, init_model};
use lab_core::base::params::{Weights, load_weights, read_weights};
use lab_core::base::rng::Rng;
use lab_core::base::ticket::Provenance;
use lab_core::block_on;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
use lab_core::deploy::compact::compact;
use lab_core::deploy::sparse::SparseNet;
use lab_core::pruning::granularity::UnitNorm;
use lab_core::pruning::prune::{PruneConfig, PruneScope, magnitudes, to_density};
use lab_core::pruning::units::{live_units, prune_units, unit_layers};

fn device() -> Device {
    lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
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
    stages: Vec<lab_core::base::model::Stage>,
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
fn assert_whole_units(stages: &[lab_core::base::model::Stage], mask: &Mask) {
    let live = live_units(stages, mask).unwrap();
    let dense = Mask {
        layers: mask
            .layers
            .iter()
            .map(|l| lab_core::base::mask::LayerMask::dense(&l.name, &l.shape))
            .collect(),
    };
    let rebuilt = lab_core::pruning::units::remove_units(stages, &dense, &live).unwrap();
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
            let previous = mask.clone();
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
                let scores = independent_unit_norms(&f.weights, &previous, &layer.weight, norm);
                let removed = (0..layer.units).filter(|&u| before[l][u] && !live[l][u]);
                let best_removed = removed.map(|u| scores[u]).fold(f64::NEG_INFINITY, f64::max);
                let worst_kept = (0..layer.units)
                    .filter(|&u| live[l][u])
                    .map(|u| scores[u])
                    .fold(f64::INFINITY, f64::min);
                assert!(
                    best_removed <= worst_kept,
                    "{kind:?} round {round} {}: a removed unit outscored a kept one",
                    layer.weight
                );
            }
        }
        // The output layer keeps its ten classes.
        let last = mask.layers.last().unwrap();
        assert_eq!(*last.shape.last().unwrap(), 10);
    }
}

/// Each unit's norm over the weights `mask` keeps, computed from the layouts (a column of
/// burn's linear `[in, out]`, a filter of a conv `[out, …]`), not from `unit_layers`.
fn independent_unit_norms(weights: &Weights, mask: &Mask, path: &str, norm: UnitNorm) -> Vec<f64> {
    let w = &weights[path];
    let keep = &mask.layer(path).unwrap().keep;
    let units = if w.shape.len() == 2 {
        w.shape[1]
    } else {
        w.shape[0]
    };
    (0..units)
        .map(|u| {
            let indices: Vec<usize> = if w.shape.len() == 2 {
                (0..w.shape[0]).map(|i| i * w.shape[1] + u).collect()
            } else {
                let per = w.values.len() / w.shape[0];
                (u * per..(u + 1) * per).collect()
            };
            let kept = indices
                .into_iter()
                .filter(|&i| keep[i])
                .map(|i| w.values[i] as f64);
            match norm {
                UnitNorm::L1 => kept.map(f64::abs).sum(),
                UnitNorm::L2 => kept.map(|v| v * v).sum::<f64>().sqrt(),
            }
        })
        .collect()
}

#[test]
fn global_unit_pruning_uses_one_threshold_on_scores_relative_to_each_layer() {
    let f = fixture(ModelKind::Lenet5, 23);
    let config = PruneConfig {
        scope: PruneScope::Global,
        rate: 0.3,
        ..PruneConfig::default()
    };
    let layers = unit_layers(&f.stages);
    let dense = Mask::dense_for(&f.net);
    let mask = prune_units(&f.stages, &dense, &f.weights, UnitNorm::L1, &config).unwrap();
    assert_whole_units(&f.stages, &mask);
    let live = live_units(&f.stages, &mask).unwrap();
    let total: usize = layers.iter().map(|l| l.units).sum();
    let removed: usize = live.iter().map(|l| l.iter().filter(|&&a| !a).count()).sum();
    assert_eq!(removed, (0.3 * total as f64).round() as usize);
    // Relative scores (unit norm / its layer's mean): every removed one at most every kept one.
    let (mut best_removed, mut worst_kept) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut layers_cut = 0;
    for (l, layer) in layers.iter().enumerate() {
        let scores = independent_unit_norms(&f.weights, &dense, &layer.weight, UnitNorm::L1);
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        for (u, score) in scores.iter().enumerate() {
            let relative = score / mean;
            if live[l][u] {
                worst_kept = worst_kept.min(relative)
            } else {
                best_removed = best_removed.max(relative)
            }
        }
        layers_cut += usize::from(live[l].iter().any(|&a| !a));
    }
    assert!(best_removed <= worst_kept, "{best_removed} > {worst_kept}");
    // Relative scores spread the cut over the layers instead of emptying the small fan-in ones.
    assert!(layers_cut >= 3, "only {layers_cut} layers lost units");
    assert!(live.iter().all(|l| l.iter().filter(|&&a| a).count() > 1));
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
    use lab_core::base::ticket::Ticket;
    use lab_core::deploy::export::{ExportFormat, export, load};
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

/// `bytes` re-written with `edit` applied to its metadata and tensors.
fn rewrite(
    bytes: &[u8],
    edit: impl FnOnce(
        &mut std::collections::HashMap<String, String>,
        &mut Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)>,
    ),
) -> Vec<u8> {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut metadata: std::collections::HashMap<String, String> = header
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut tensors: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                view.dtype(),
                view.shape().to_vec(),
                view.data().to_vec(),
            )
        })
        .collect();
    edit(&mut metadata, &mut tensors);
    let views = tensors.iter().map(|(name, dtype, shape, data)| {
        (
            name.as_str(),
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), data).unwrap(),
        )
    });
    safetensors::serialize(views, Some(metadata.into_iter().collect())).unwrap()
}

#[test]
fn damaged_files_are_errors_not_panics() {
    use lab_core::base::ticket::Ticket;
    use lab_core::deploy::export::{ExportFormat, export, load};
    let device = device();
    let f = fixture(ModelKind::Lenet5, 29);
    let mask = magnitude_mask(&f, 0.2);
    let ticket = Ticket {
        mask: mask.clone(),
        weights: f.weights.clone(),
        provenance: Provenance {
            model: "lenet5".into(),
            dataset: "mnist".into(),
            round: 2,
            rewind: "init".into(),
            seed: 29,
            run: "imp-test".into(),
            weights_remaining: mask.density(),
            stream: String::new(),
        },
    };
    // A conv net exported and loaded in every format gives the masked network's logits.
    let images = real_images(4);
    let reference = dense_logits(&f.net, &masked_weights(&f.weights, &mask), &images, &device);
    let csr = export(&ticket, ExportFormat::Csr, &device).unwrap();
    let compact = export(&ticket, ExportFormat::Compact, &device).unwrap();
    for bytes in [&csr, &compact] {
        let logits = block_on(load(bytes, &device).unwrap().logits(&images, &device)).unwrap();
        assert_close(&logits, &reference, "lenet5 file");
    }
    let stages = |edit: &dyn Fn(&mut serde_json::Value)| {
        rewrite(&csr, |metadata, _| {
            let mut value: serde_json::Value = serde_json::from_str(&metadata["stages"]).unwrap();
            edit(&mut value);
            metadata.insert("stages".into(), value.to_string());
        })
    };
    let damaged = [
        (
            "a padding of a million",
            stages(&|v| v[0]["Conv"]["padding"] = serde_json::json!([1_000_000, 2])),
        ),
        (
            "a kernel wider than its input",
            stages(&|v| v[2]["Conv"]["kernel"] = serde_json::json!([99, 5])),
        ),
        (
            "a chain that does not fit",
            stages(&|v| v[4]["Linear"]["inputs"] = serde_json::json!(401)),
        ),
        (
            "stages that are not JSON",
            rewrite(&csr, |m, _| {
                m.insert("stages".into(), "[{".into());
            }),
        ),
        (
            "a column out of range",
            rewrite(&csr, |_, t| {
                let indices = t
                    .iter_mut()
                    .find(|(n, ..)| n == "fcs.0.weight/indices")
                    .unwrap();
                indices.3[..4].copy_from_slice(&400u32.to_le_bytes());
            }),
        ),
        (
            "a short bias",
            rewrite(&csr, |_, t| {
                let bias = t.iter_mut().find(|(n, ..)| n == "fcs.1.bias").unwrap();
                bias.2 = vec![83];
                bias.3.truncate(83 * 4);
            }),
        ),
        (
            "units beyond the model",
            rewrite(&compact, |m, _| {
                m.insert("units".into(), "[6, 16, 120, 85]".into());
            }),
        ),
        (
            "too few units",
            rewrite(&compact, |m, _| {
                m.insert("units".into(), "[6, 16]".into());
            }),
        ),
        (
            "an unknown format",
            rewrite(&csr, |m, _| {
                m.insert("format".into(), "coo".into());
            }),
        ),
    ];
    for (what, bytes) in damaged {
        assert!(load(&bytes, &device).is_err(), "{what} was accepted");
    }
}

#[test]
fn n_of_m_masks_keep_the_largest_n_of_every_m_consecutive_inputs() {
    use lab_core::pruning::prune::{n_of_m, random_n_of_m};
    for kind in [ModelKind::Lenet300, ModelKind::Lenet5] {
        let f = fixture(kind, 19);
        let dense = Mask::dense_for(&f.net);
        let mask = n_of_m(&dense, &magnitudes(&f.weights), 2, 4);
        let random = random_n_of_m(&dense, 19, "control", 2, 4);
        for (layer, random_layer) in mask.layers.iter().zip(&random.layers) {
            let w = &f.weights[&layer.name].values;
            // Groups run along the reduction dimension: down a column of burn's linear
            // [in, out]; across input channels at a fixed (filter, tap) of a conv [o, c, kh, kw].
            let groups: Vec<Vec<usize>> = match layer.shape[..] {
                [i, o] => (0..o)
                    .flat_map(|u| {
                        (0..i)
                            .step_by(4)
                            .map(move |s| (s..(s + 4).min(i)).map(|k| k * o + u).collect())
                    })
                    .collect(),
                [o, c, kh, kw] => {
                    let taps = kh * kw;
                    if c < 4 {
                        // Fewer channels than a group: the layer stays dense (ASP's rule).
                        assert_eq!(layer.remaining(), layer.total(), "{}", layer.name);
                        continue;
                    }
                    (0..o)
                        .flat_map(|u| {
                            (0..taps).flat_map(move |t| {
                                (0..c).step_by(4).map(move |s| {
                                    (s..(s + 4).min(c))
                                        .map(|ch| (u * c + ch) * taps + t)
                                        .collect()
                                })
                            })
                        })
                        .collect()
                }
                _ => unreachable!(),
            };
            let mut expected_kept = 0;
            for group in &groups {
                let kept: Vec<usize> = group.iter().copied().filter(|&k| layer.keep[k]).collect();
                assert_eq!(
                    kept.len(),
                    group.len().min(2),
                    "{} group {group:?}",
                    layer.name
                );
                assert_eq!(
                    group.iter().filter(|&&k| random_layer.keep[k]).count(),
                    group.len().min(2)
                );
                // Every kept weight outweighs every removed one of its group.
                let smallest_kept = kept
                    .iter()
                    .map(|&k| w[k].abs())
                    .fold(f32::INFINITY, f32::min);
                for &k in group.iter().filter(|&&k| !layer.keep[k]) {
                    assert!(
                        w[k].abs() <= smallest_kept,
                        "{}: a removed weight outweighs a kept one",
                        layer.name
                    );
                }
                expected_kept += group.len().min(2);
            }
            assert_eq!(layer.remaining(), expected_kept, "{}", layer.name);
        }
        // Half of every layer whose unit inputs divide by 4 (all of LeNet-300-100's).
        if kind == ModelKind::Lenet300 {
            assert_eq!(mask.remaining() * 2, mask.total());
        }
        // The random control differs from the magnitude mask, with the same pattern.
        assert_ne!(random, mask);
        // A second round changes nothing: the pattern is reached at once.
        assert_eq!(n_of_m(&mask, &magnitudes(&f.weights), 2, 4), mask);
    }
    let config = PruneConfig {
        granularity: lab_core::pruning::granularity::Granularity::NOfM { n: 4, m: 4 },
        ..PruneConfig::default()
    };
    assert!(config.validate().is_err());
    assert_eq!(
        lab_core::pruning::granularity::Granularity::parse("2:4"),
        Some(lab_core::pruning::granularity::Granularity::NOfM { n: 2, m: 4 })
    );
}
