//! One suite of invariants, run on every compiled backend: `ndarray` always, `flex` with the
//! `flex` feature, `wgpu` with the `wgpu` feature (natively through Vulkan; on CI machines through Mesa's lavapipe).
//! GPU-path runs are kept tiny: lavapipe trains LeNet-300-100 at roughly 50 ms/step.

mod common;

use lab_core::base::keys::RunKeys;
use lab_core::base::mask::Mask;
use lab_core::base::model::{ModelKind, Net, init_model};
use lab_core::base::params::{Weights, read_weights};
use lab_core::base::store::{MemoryStore, RunStore};
use lab_core::base::ticket::Ticket;
use lab_core::block_on;
use lab_core::burn::tensor::Device;
use lab_core::methods::imp::{Control, ImpConfig, run_control, run_imp};
use lab_core::pruning::prune::{PruneConfig, expected_remaining, magnitude, random_like};
use lab_core::training::observer::RunObserver;
use lab_core::training::observer::Silent;
use lab_core::training::train::{Prepared, TrainConfig, train};

struct Quiet;
impl lab_core::training::observer::Observer for Quiet {}
impl RunObserver for Quiet {}

fn small_imp(iterations: usize, rounds: usize, eval: usize) -> ImpConfig {
    ImpConfig::new()
        .with_rounds(rounds)
        .with_train(
            TrainConfig::new()
                .with_iterations(iterations)
                .with_eval_every(iterations / 2),
        )
        .with_eval_subset(Some(eval))
}

fn prepared(device: &Device, train: usize, eval: usize) -> Prepared {
    Prepared::new(&common::mnist().subset(train, eval, eval), device)
}

/// Training with a mask leaves every pruned weight exactly 0 and moves the others.
fn pruned_weights_stay_zero(device: Device) {
    let device = device.autodiff();
    let model: Net = init_model(ModelKind::Lenet300, 1, &device);
    let theta0 = block_on(read_weights(&model)).unwrap();
    let mask = magnitude(&Mask::dense_for(&model), &theta0, &PruneConfig::default());
    let data = prepared(&device, 2000, 200);
    let config = TrainConfig::new().with_iterations(25).with_eval_every(25);
    let outcome = block_on(train(model, Some(&mask), &data, &config, None, &mut Silent)).unwrap();
    let trained = block_on(read_weights(&outcome.model)).unwrap();
    let mut moved = 0;
    for layer in &mask.layers {
        let after = &trained[&layer.name].values;
        let before = &theta0[&layer.name].values;
        for ((&keep, &a), &b) in layer.keep.iter().zip(after).zip(before) {
            if keep {
                moved += usize::from(a != b);
            } else {
                assert_eq!(a, 0.0, "pruned weight of {} moved", layer.name);
            }
        }
    }
    assert!(
        moved > mask.remaining() / 2,
        "only {moved} surviving weights trained"
    );
}

/// IMP on real MNIST: the ticket is θ0 ⊙ mask exactly, counts follow the documented rule,
/// accuracy is high, and the controls behave as defined.
fn imp_round_trip(device: Device, iterations: usize, train_size: usize) {
    let config = small_imp(iterations, 2, 1000).with_train_subset(Some(train_size));
    let data = prepared(&device, train_size, 1000);
    let mut store = MemoryStore::default();
    let results = block_on(run_imp::<Net>(
        &config, &data, &device, &mut store, &mut Quiet,
    ))
    .unwrap();
    assert_eq!(results.len(), 2);
    // Early stop is the first minimum of the recorded validation loss, and its accuracy is
    // read at that point.
    for r in &results {
        let best = r
            .curve
            .iter()
            .reduce(|best, p| {
                if p.validation_loss < best.validation_loss {
                    p
                } else {
                    best
                }
            })
            .unwrap();
        assert_eq!(r.early_stop_iteration, best.iteration, "round {}", r.round);
        assert_eq!(r.test_accuracy, best.test_accuracy);
        assert_eq!(r.validation_loss, best.validation_loss);
    }
    for r in &results {
        assert!(
            r.test_accuracy > 0.90,
            "round {} test accuracy {}",
            r.round,
            r.test_accuracy
        );
    }
    // Round 1 keeps exactly the expected counts per layer.
    let expected = [
        expected_remaining(235_200, 0.2, 1),
        expected_remaining(30_000, 0.2, 1),
        expected_remaining(1_000, 0.1, 1),
    ];
    let kept: Vec<usize> = results[1]
        .layers
        .iter()
        .map(|l| l.remaining_weights)
        .collect();
    assert_eq!(kept, expected);

    // The round-1 ticket is θ0 on the survivors and 0 elsewhere, bit for bit.
    let keys = RunKeys {
        run: config.run_name(),
    };
    let ticket = Ticket::from_safetensors(&store.read(&keys.ticket(1)).unwrap()).unwrap();
    let theta0: Weights = block_on(read_weights(&init_model::<Net>(
        ModelKind::Lenet300,
        config.seed,
        &device.clone().autodiff(),
    )))
    .unwrap();
    for layer in &ticket.mask.layers {
        let values = &ticket.weights[&layer.name].values;
        for ((&keep, &v), &v0) in layer
            .keep
            .iter()
            .zip(values)
            .zip(&theta0[&layer.name].values)
        {
            assert_eq!(v, if keep { v0 } else { 0.0 });
        }
    }
    assert_eq!(ticket.weights["layers.0.bias"], theta0["layers.0.bias"]);

    // Random reinit: same mask, different values. Random prune: same counts, other mask.
    let reinit = block_on(run_control::<Net>(
        &config,
        Control::Reinit,
        None,
        &data,
        &device,
        &mut store,
        &mut Quiet,
    ))
    .unwrap();
    let random = block_on(run_control::<Net>(
        &config,
        Control::RandomPrune,
        None,
        &data,
        &device,
        &mut store,
        &mut Quiet,
    ))
    .unwrap();
    assert_eq!(reinit[1].layers, results[1].layers);
    for (a, b) in random[1].layers.iter().zip(&results[1].layers) {
        assert_eq!(a.remaining_weights, b.remaining_weights);
    }
    // What each control trained from is recorded; compare it with the ticket, position by
    // position. Reinit: the ticket's mask on fresh weights (not θ0).
    let start = |name: &str| {
        Ticket::from_safetensors(&store.read(&keys.control_start(name, 1)).unwrap()).unwrap()
    };
    let reinit_start = start("reinit");
    assert_eq!(
        reinit_start.mask, ticket.mask,
        "reinit must keep the ticket's mask"
    );
    for layer in &ticket.mask.layers {
        let fresh = &reinit_start.weights[&layer.name].values;
        let same_as_theta0 = layer
            .keep
            .iter()
            .zip(fresh)
            .zip(&theta0[&layer.name].values)
            .filter(|((keep, a), b)| **keep && a == b)
            .count();
        assert_eq!(same_as_theta0, 0, "reinit reused θ0 in {}", layer.name);
    }
    assert_ne!(
        start("reinit").weights["layers.0.weight"],
        Ticket::from_safetensors(&store.read(&keys.control_start("reinit", 0)).unwrap())
            .unwrap()
            .weights["layers.0.weight"],
        "each round's reinit draws its own weights"
    );
    // Random pruning: the ticket's per-layer counts at other positions, on θ0 bit for bit.
    let random_start = start("random-prune");
    for (random_layer, ticket_layer) in random_start.mask.layers.iter().zip(&ticket.mask.layers) {
        assert_eq!(random_layer.remaining(), ticket_layer.remaining());
        let shared = random_layer
            .keep
            .iter()
            .zip(&ticket_layer.keep)
            .filter(|(a, b)| **a && **b)
            .count();
        // A uniform draw shares about density² of the positions; the ticket's own mask all.
        let expected = ticket_layer.density().powi(2) * ticket_layer.total() as f64;
        assert!(
            (shared as f64) < expected + 0.05 * ticket_layer.total() as f64,
            "random pruning reused the ticket's positions in {}: {shared} shared",
            ticket_layer.name
        );
        let values = &random_start.weights[&random_layer.name].values;
        for ((&keep, &v), &v0) in random_layer
            .keep
            .iter()
            .zip(values)
            .zip(&theta0[&random_layer.name].values)
        {
            assert_eq!(v, if keep { v0 } else { 0.0 });
        }
    }
}

/// Same seed, same θ0 and the same mask; another seed, other ones.
fn seeded_masks(device: Device) {
    let mask_for = |seed| {
        let model: Net = init_model(ModelKind::Lenet300, seed, &device);
        let w = block_on(read_weights(&model)).unwrap();
        magnitude(&Mask::dense_for(&model), &w, &PruneConfig::default())
    };
    assert_eq!(mask_for(3), mask_for(3));
    assert_ne!(mask_for(3), mask_for(4));
    let reference = mask_for(3);
    assert_eq!(
        random_like(&reference, 9, "s"),
        random_like(&reference, 9, "s")
    );
    assert_ne!(random_like(&reference, 9, "s"), reference);
}

/// The conv family works with the same generic machinery.
fn conv_models_mask_and_train(device: Device) {
    let device = device.autodiff();
    let model: Net = init_model(ModelKind::Lenet5, 0, &device);
    let mask = Mask::dense_for(&model);
    let names: Vec<&str> = mask.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "convs.0.weight",
            "convs.1.weight",
            "fcs.0.weight",
            "fcs.1.weight",
            "fcs.2.weight"
        ]
    );
    let rates = PruneConfig::default().layer_rates(&mask);
    assert_eq!(rates, vec![0.1, 0.1, 0.2, 0.2, 0.1]);
    let data = prepared(&device, 600, 100);
    let config = TrainConfig::new().with_iterations(5).with_eval_every(5);
    let w = block_on(read_weights(&model)).unwrap();
    let pruned = magnitude(&mask, &w, &PruneConfig::default());
    let outcome = block_on(train(
        model,
        Some(&pruned),
        &data,
        &config,
        None,
        &mut Silent,
    ))
    .unwrap();
    assert!(outcome.last.validation_loss.is_finite());
}

/// The ViT runs IMP through the same loop as every model, each layer pruned at its type's
/// rate from the registry: per layer, exactly the counting rule's survivors after two rounds.
fn vit_imp_prunes_each_layer_type_at_its_rate(device: Device) {
    // Fallback rates unlike the model's, so a lost model rule changes the counts.
    let config = small_imp(4, 3, 100)
        .with_model(ModelKind::Vit)
        .with_train_subset(Some(240))
        .with_prune(PruneConfig {
            rate: 0.3,
            output_rate: 0.05,
            ..PruneConfig::default()
        });
    let data = prepared(&device, 240, 100);
    let mut store = MemoryStore::default();
    let results = block_on(run_imp::<Net>(
        &config, &data, &device, &mut store, &mut Quiet,
    ))
    .unwrap();
    let rate_of = |name: &str| {
        if name.starts_with("patch_embedding.") || name.starts_with("head.") {
            0.1
        } else if name.contains(".attention.") {
            0.15
        } else {
            assert!(name.contains(".mlp_"), "unexpected prunable layer {name}");
            0.2
        }
    };
    let layers = &results[2].layers;
    assert_eq!(
        layers.len(),
        1 + 2 * (4 + 2) + 1,
        "prunable layers of the ViT"
    );
    for layer in layers {
        let dense = results[0]
            .layers
            .iter()
            .find(|l| l.name == layer.name)
            .unwrap()
            .remaining_weights;
        assert_eq!(
            layer.remaining_weights,
            expected_remaining(dense, rate_of(&layer.name), 2),
            "{}",
            layer.name
        );
    }
    assert!(results.iter().all(|r| r.validation_loss.is_finite()));
    // Its ticket (LayerNorms and position embeddings included) instantiates a ViT again.
    let keys = RunKeys {
        run: config.run_name(),
    };
    let ticket = Ticket::from_safetensors(&store.read(&keys.ticket(2)).unwrap()).unwrap();
    let (model, mask) = ticket.instantiate::<Net>(ModelKind::Vit, &device).unwrap();
    assert_eq!(mask, ticket.mask);
    assert_eq!(block_on(read_weights(&model)).unwrap(), ticket.weights);
}

/// The suite, instantiated once per backend (burn's own style): `$steps` sizes the real-MNIST
/// IMP round to the backend's speed.
macro_rules! backend_suite {
    ($name:ident, $device:expr, $steps:expr) => {
        mod $name {
            use super::*;
            fn device() -> Device {
                $device
            }
            #[test]
            fn pruned_weights_stay_zero() {
                super::pruned_weights_stay_zero(device());
            }
            #[test]
            fn imp_round_trip_on_real_mnist() {
                super::imp_round_trip(device(), $steps, 55_000);
            }
            #[test]
            fn seeded_masks() {
                super::seeded_masks(device());
            }
            #[test]
            fn conv_models_mask_and_train() {
                super::conv_models_mask_and_train(device());
            }
            #[test]
            fn vit_imp_prunes_each_layer_type_at_its_rate() {
                super::vit_imp_prunes_each_layer_type_at_its_rate(device());
            }
        }
    };
}

backend_suite!(
    ndarray,
    lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap(),
    400
);
#[cfg(feature = "flex")]
backend_suite!(
    flex,
    lab_core::base::backend::BackendKind::Flex.device().unwrap(),
    400
);
#[cfg(feature = "wgpu")]
backend_suite!(
    wgpu,
    Device::wgpu(lab_core::burn::tensor::DeviceKind::DefaultDevice),
    200
);

/// θ0 is the same on every compiled backend, bit for bit: initialisation draws from our own
/// seeded streams.
#[test]
fn init_is_backend_independent() {
    let on = |kind: lab_core::base::backend::BackendKind| {
        block_on(read_weights(&init_model::<Net>(
            ModelKind::Lenet300,
            5,
            &kind.device().unwrap(),
        )))
        .unwrap()
    };
    let reference = on(lab_core::base::backend::BackendKind::Ndarray);
    let others = lab_core::base::backend::BackendKind::available();
    assert!(others.len() > 1 || cfg!(not(any(feature = "flex", feature = "wgpu"))));
    for kind in others {
        assert_eq!(on(kind), reference, "θ0 on {}", kind.name());
    }
}

/// Conv-2/4/6 build, are masked over every conv and linear weight, and map images to logits.
#[test]
fn conv_family_shapes() {
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let images = lab_core::burn::tensor::Tensor::<2>::zeros([2, 784], &device);
    for (kind, convs) in [
        (ModelKind::Conv2, 2),
        (ModelKind::Conv4, 4),
        (ModelKind::Conv6, 6),
    ] {
        let model: Net = init_model(kind, 0, &device);
        let mask = Mask::dense_for(&model);
        assert_eq!(mask.layers.len(), convs + 3, "{kind:?}");
        use lab_core::base::model::Classifier;
        assert_eq!(model.forward(images.clone()).dims(), [2, 10]);
    }
}

/// The registry: every model builds under its own name, maps images to 10 logits, draws the
/// same θ0 from the same seed, and keeps the parameter paths it has outside [`Net`].
#[test]
fn every_registered_model_builds_and_keeps_its_paths() {
    use lab_core::base::model::{Classifier, Mlp};
    use lab_core::base::params::prunable_params;
    use lab_core::burn::tensor::Tensor;
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let images = Tensor::<2>::ones([3, 784], &device);
    for kind in ModelKind::ALL {
        assert_eq!(ModelKind::parse(kind.name()), Some(kind));
        // Configs (JSON, the page) and the CLI, tickets and lists (`name`) agree.
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        let model: Net = init_model(kind, 7, &device);
        assert_eq!(model.forward(images.clone()).dims(), [3, 10], "{kind:?}");
        let again: Net = init_model(kind, 7, &device);
        assert_eq!(
            block_on(read_weights(&model)).unwrap(),
            block_on(read_weights(&again)).unwrap(),
            "θ0 of {kind:?} is a function of the seed"
        );
        for param in prunable_params(&model) {
            assert!(
                !param.path.contains("Mlp")
                    && !param.path.contains("Conv.")
                    && !param.path.contains("Vit"),
                "{}",
                param.path
            );
        }
    }
    let bare = Mlp::new(&[784, 300, 100, 10], &device);
    let wrapped: Net = init_model(ModelKind::Lenet300, 0, &device);
    let paths = |params: Vec<lab_core::base::params::ParamInfo>| {
        params.into_iter().map(|p| p.path).collect::<Vec<_>>()
    };
    assert_eq!(
        paths(prunable_params(&wrapped)),
        paths(prunable_params(&bare))
    );
    assert_eq!(
        paths(prunable_params(&wrapped)),
        ["layers.0.weight", "layers.1.weight", "layers.2.weight"]
    );
}

/// The ViT's tokens are the image's 7×7 patches in row-major order: token 4r + c holds rows
/// 7r..7r+7 and columns 7c..7c+7, each patch row-major.
#[test]
fn vit_patches_are_the_image_tiles() {
    use lab_core::base::model::{Vit, VitShape};
    use lab_core::burn::tensor::{Tensor, TensorData};
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let vit = Vit::new(VitShape::MNIST_TINY, 10, &device);
    let pixels: Vec<f32> = (0..2 * 784).map(|i| i as f32).collect();
    let images = Tensor::<2>::from_data(TensorData::new(pixels, [2, 784]), &device);
    let tokens = vit.patches(images);
    assert_eq!(tokens.dims(), [2, 16, 49]);
    let values = tokens.into_data().try_to_vec::<f32>().unwrap();
    for image in 0..2 {
        for token in 0..16 {
            let (r, c) = (token / 4, token % 4);
            for k in 0..49 {
                let (i, j) = (k / 7, k % 7);
                let pixel = image * 784 + (7 * r + i) * 28 + 7 * c + j;
                assert_eq!(values[(image * 16 + token) * 49 + k], pixel as f32);
            }
        }
    }
}

/// The model's suggested rates yield to `model_rates: false` and to global pruning; a user
/// rule that names no layer, or a per-layer rule under global pruning, is refused.
#[test]
fn model_rates_can_be_turned_off_and_bad_rules_are_refused() {
    use lab_core::pruning::prune::{LayerRate, PruneScope};
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let vit: Net = init_model(ModelKind::Vit, 0, &device);
    let mask = Mask::dense_for(&vit);
    let own = PruneConfig {
        rate: 0.3,
        output_rate: 0.05,
        model_rates: false,
        ..PruneConfig::default()
    };
    let config = ImpConfig::new()
        .with_model(ModelKind::Vit)
        .with_prune(own.clone());
    let rates = config.prune_rules().layer_rates(&mask);
    let last = rates.len() - 1;
    assert!(rates[..last].iter().all(|&r| r == 0.3), "{rates:?}");
    assert_eq!(rates[last], 0.05);
    let with_model = ImpConfig::new().with_model(ModelKind::Vit);
    assert_ne!(with_model.prune_rules().layer_rates(&mask), rates);
    assert_ne!(
        with_model.run_name(),
        ImpConfig::new()
            .with_model(ModelKind::Vit)
            .with_prune(own)
            .run_name()
    );

    let typo = PruneConfig {
        layers: vec![LayerRate::new("block.*.mlp_*", 0.5)],
        ..PruneConfig::default()
    };
    let err = typo.check_rules(&mask).unwrap_err().to_string();
    assert!(err.contains("block.*.mlp_*"), "{err}");
    let global = PruneConfig {
        scope: PruneScope::Global,
        layers: vec![LayerRate::new("head.*", 0.5)],
        ..PruneConfig::default()
    };
    assert!(global.check_rules(&mask).is_err());
    let global_vit = ImpConfig::new()
        .with_model(ModelKind::Vit)
        .with_prune(PruneConfig {
            scope: PruneScope::Global,
            ..PruneConfig::default()
        });
    assert!(
        global_vit.prune_rules().layers.is_empty(),
        "global pruning takes no model rules"
    );
    assert!(with_model.prune_rules().check_rules(&mask).is_ok());
}
