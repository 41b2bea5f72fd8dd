//! Sparse training computes the masked-dense step: the same loss, the same gradients at kept
//! positions, the same optimiser update, for linear layers, convolutions and max-pools, at
//! every density down to a fully pruned layer; a whole training reaches the dense
//! training's accuracy; checkpoints know their kernel.

mod common;

use lab_core::base::backend::BackendKind;
use lab_core::base::data::Mnist;
use lab_core::base::mask::Mask;
use lab_core::base::model::{Classifier, ModelKind, Net, StageError, init_model};
use lab_core::base::params::{Weights, read_weights};
use lab_core::base::rng::Rng;
use lab_core::block_on;
use lab_core::training::observer::Silent;
use lab_core::training::optim::OptimizerKind;
use lab_core::training::sparse::{Kernel, SparseTrainError, SparseTrainer};
use lab_core::training::train::{
    Prepared, Stepper, TrainConfig, TrainOutcome, batch_tensors, cross_entropy, train,
};

fn net(kind: ModelKind, seed: u64, device: &burn::tensor::Device) -> Net {
    init_model::<Net>(kind, seed, device)
}

/// A mask keeping a random `keep` share of every prunable weight tensor.
fn random_mask(model: &Net, keep: f64, seed: u64) -> Mask {
    let mut mask = Mask::dense_for(model);
    let mut rng = Rng::for_purpose(seed, "test-mask");
    for layer in &mut mask.layers {
        for k in &mut layer.keep {
            *k = rng.uniform() < keep;
        }
    }
    mask
}

/// The largest |a − b| of each tensor, relative to the largest |b| of that tensor (so a
/// gradient near 0 is judged on its tensor's scale, as a summation order moves it).
fn max_relative_difference(a: &Weights, b: &Weights) -> f64 {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    a.iter()
        .map(|(path, t)| {
            let reference = &b[path].values;
            assert_eq!(t.shape, b[path].shape, "{path}");
            let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            let worst = t
                .values
                .iter()
                .zip(reference)
                .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
            f64::from(worst) / f64::from(scale).max(1e-12)
        })
        .fold(0.0, f64::max)
}

/// The weights of `weights` that `mask` covers, 0 where it prunes.
fn masked(mut weights: Weights, mask: &Mask) -> Weights {
    for layer in &mask.layers {
        if let Some(t) = weights.get_mut(&layer.name) {
            for (v, &keep) in t.values.iter_mut().zip(&layer.keep) {
                if !keep {
                    *v = 0.0;
                }
            }
        }
    }
    weights
}

/// 60 real MNIST training images.
fn batch_indices() -> Vec<usize> {
    let n = common::mnist().train.len();
    (0..60).map(|i| i * 37 % n).collect()
}

/// The masks of the correctness checks: densities 1, 0.5, 0.1, 0.02, 0.005, and 10% with
/// the second weight tensor fully pruned (every unit above it sees only its bias).
fn masks(model: &Net) -> Vec<(String, Mask)> {
    let mut cases: Vec<(String, Mask)> = [1.0, 0.5, 0.1, 0.02, 0.005]
        .iter()
        .map(|&d| (format!("density {d}"), random_mask(model, d, 7)))
        .collect();
    let mut cut = random_mask(model, 0.1, 8);
    cut.layers[1].keep.iter_mut().for_each(|k| *k = false);
    cases.push(("layer 1 fully pruned".into(), cut));
    cases
}

/// One step of the masked-dense path on NdArray: the loss before it, the dense gradient of
/// every weight the mask covers (biases: seen through an SGD step of rate 1) and the
/// updated weights.
fn dense_step(kind: ModelKind, mask: &Mask, config: &TrainConfig) -> (f32, Weights, Weights) {
    let device = BackendKind::Ndarray.device().unwrap().autodiff();
    let (mut stepper, model) = Stepper::new(net(kind, 0, &device), Some(mask), config, &device);
    let (images, labels) = batch_tensors(&common::mnist().train, &batch_indices(), &device);
    let loss = cross_entropy(model.forward(images.clone()), labels.clone())
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap()[0];
    let (stepped, gradients) =
        block_on(stepper.step_reading_gradient(model, images, labels, config.learning_rate, mask))
            .unwrap();
    (loss, gradients, block_on(read_weights(&stepped)).unwrap())
}

fn sparse_trainer(kind: ModelKind, mask: &Mask, config: &TrainConfig) -> SparseTrainer {
    let device = BackendKind::Ndarray.device().unwrap();
    let model = net(kind, 0, &device);
    let weights = block_on(read_weights(&model)).unwrap();
    let stages = model.stages().unwrap();
    SparseTrainer::new(&stages, &weights, Some(mask), &config.optimizer()).unwrap()
}

fn one_step_matches(kind: ModelKind) {
    let device = BackendKind::Ndarray.device().unwrap();
    let model = net(kind, 0, &device);
    let split = &common::mnist().train;
    let indices = batch_indices();
    let images = split.standardised(&indices);
    let labels: Vec<u8> = indices.iter().map(|&i| split.labels[i]).collect();
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::Adam] {
        // SGD at rate 1: the update is the gradient itself, biases included, and weight
        // decay adds exactly θ·λ. Adam without decay: a decayed gradient near 0 (θ·λ ≈ −g)
        // would be a gradient within summation noise of 0, where Adam's sign flips.
        let (rate, decay) = match optimizer {
            OptimizerKind::Sgd => (1.0, 1e-4),
            OptimizerKind::Adam => (1.2e-3, 0.0),
        };
        let config = TrainConfig::new()
            .with_optimizer(optimizer)
            .with_learning_rate(rate)
            .with_momentum(0.0)
            .with_weight_decay(decay);
        for (case, mask) in masks(&model) {
            let what = format!("{}, {optimizer:?}, {case}", kind.name());
            let (dense_loss, dense_gradients, dense_updated) = dense_step(kind, &mask, &config);
            let mut sparse = sparse_trainer(kind, &mask, &config);
            let loss = sparse.loss_and_gradients(&images, &labels).unwrap();
            assert!(
                (loss - dense_loss).abs() <= 1e-5 * dense_loss.abs(),
                "{what}: loss {loss} against {dense_loss}"
            );
            // The dense gradient of the covered weights, at kept positions.
            let all_gradients = sparse.gradients();
            let gradients: Weights = all_gradients
                .clone()
                .into_iter()
                .filter(|(path, _)| mask.layer(path).is_some())
                .collect();
            let gap = max_relative_difference(&gradients, &masked(dense_gradients, &mask));
            assert!(gap <= 1e-5, "{what}: gradients differ by {gap:e}");
            sparse.apply(config.learning_rate);
            let updated = sparse.weights();
            match optimizer {
                OptimizerKind::Sgd => {
                    let gap = max_relative_difference(&updated, &dense_updated);
                    assert!(gap <= 1e-5, "{what}: updated weights differ by {gap:e}");
                }
                // Adam's first step is lr·g/(|g| + ε): where |g| is within summation noise
                // of 0, its sign and so its update can differ; elsewhere it must agree.
                OptimizerKind::Adam => {
                    let (gap, noisy) = adam_gap(&updated, &dense_updated, &all_gradients, rate);
                    assert!(gap <= 1e-5, "{what}: updated weights differ by {gap:e}");
                    assert!(noisy <= 10, "{what}: {noisy} weights with gradients near 0");
                }
            }
        }
    }
}

/// The largest relative difference of Adam-updated weights where the gradient is clear of 0
/// (|g| ≥ 1e-4 · the tensor's largest, or exactly 0), and how many are not and differ: those
/// may differ by Adam's step at most, 2·lr. (An output bias whose gradient is 0 in exact
/// arithmetic, a class drawn exactly 6 times in 60 under uniform logits, is 1e-9 of
/// rounding either way, and Adam's first step is lr·g/(|g| + ε).)
fn adam_gap(updated: &Weights, dense: &Weights, gradients: &Weights, rate: f64) -> (f64, usize) {
    let (mut gap, mut noisy) = (0.0f64, 0);
    for (path, t) in updated {
        let reference = &dense[path].values;
        let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let grads = Some(&gradients[path].values);
        let g_scale = grads.map_or(0.0, |g| g.iter().fold(0.0f32, |m, v| m.max(v.abs())));
        for (i, (x, y)) in t.values.iter().zip(reference).enumerate() {
            let difference = f64::from((x - y).abs());
            let clear = grads.is_none_or(|g| g[i].abs() >= 1e-4 * g_scale || g[i] == 0.0);
            if clear {
                gap = gap.max(difference / f64::from(scale).max(1e-12));
            } else {
                noisy += usize::from(difference > 1e-5 * f64::from(scale));
                assert!(
                    difference <= 2.0 * rate * 1.0001,
                    "{path}[{i}]: {difference}"
                );
            }
        }
    }
    (gap, noisy)
}

#[test]
fn one_step_of_lenet300_gives_the_masked_dense_loss_gradients_and_update() {
    one_step_matches(ModelKind::Lenet300);
}

/// Convolutions (with padding), max-pools and the flattening into linear layers.
#[test]
fn one_step_of_lenet5_gives_the_masked_dense_loss_gradients_and_update() {
    one_step_matches(ModelKind::Lenet5);
}

/// The training loop with each kernel from one θ0, mask and data order.
fn trained_both_ways(
    kind: ModelKind,
    seed: u64,
    density: f64,
    config: &TrainConfig,
    data: &Mnist,
) -> [TrainOutcome<Net>; 2] {
    let device = BackendKind::Flex.device().unwrap();
    let prepared = Prepared::new(data, &device);
    let model = net(kind, seed, &device.autodiff());
    let mask = random_mask(&model, density, seed);
    [Kernel::Dense, Kernel::Sparse].map(|kernel| {
        let config = config.clone().with_kernel(kernel);
        block_on(train(
            model.clone(),
            Some(&mask),
            &prepared,
            &config,
            None,
            &mut Silent,
        ))
        .unwrap()
    })
}

/// Adam over ten steps through the loop, where its moments carry state: still the dense
/// path's weights, for both models.
#[test]
fn ten_adam_steps_through_the_loop_stay_with_the_masked_dense_path() {
    let data = common::mnist().limited(Some(600), Some(100));
    let config = TrainConfig::new().with_iterations(10).with_eval_every(5);
    for kind in [ModelKind::Lenet300, ModelKind::Lenet5] {
        let [dense, sparse] = trained_both_ways(kind, 3, 0.05, &config, &data);
        let gap = max_relative_difference(
            &block_on(read_weights(&sparse.model)).unwrap(),
            &block_on(read_weights(&dense.model)).unwrap(),
        );
        assert!(
            gap <= 1e-4,
            "{}: after 10 Adam steps the weights differ by {gap:e}",
            kind.name()
        );
        assert_eq!(sparse.curve.len(), dense.curve.len());
    }
}

/// Trained sparse and masked dense through the loop from one θ0 and data order, 2% of the
/// weights kept: the same test accuracy within 0.3 points, on three seeds.
#[test]
fn a_sparse_training_reaches_the_dense_accuracy() {
    let data = common::mnist().limited(Some(10_000), Some(2_000));
    for seed in 0..3 {
        let config = TrainConfig::new()
            .with_iterations(1_000)
            .with_eval_every(500)
            .with_data_seed(Some(seed + 20));
        let [dense, sparse] = trained_both_ways(ModelKind::Lenet300, seed, 0.02, &config, &data);
        let (d, s) = (dense.last.test_accuracy, sparse.last.test_accuracy);
        assert!(
            (s - d).abs() <= 0.003,
            "seed {seed}: sparse {s} against dense {d}"
        );
        assert!(s > 0.5, "seed {seed}: the sparse training learned ({s})");
    }
}

/// A checkpoint of a sparse run resumes sparse (to the uninterrupted run's weights, bit for
/// bit) and is refused by a dense run.
#[test]
fn the_kernel_is_part_of_what_a_checkpoint_resumes() {
    use lab_core::base::store::MemoryStore;
    use lab_core::training::checkpoint::Checkpointing;
    use lab_core::training::train::{Schedule, TrainError, train_scheduled};
    let device = BackendKind::Ndarray.device().unwrap();
    let data = Prepared::new(&common::mnist().limited(Some(600), Some(100)), &device);
    let model = net(ModelKind::Lenet300, 1, &device.autodiff());
    let mask = random_mask(&model, 0.1, 1);
    let config = TrainConfig::new()
        .with_iterations(20)
        .with_eval_every(10)
        .with_kernel(Kernel::Sparse);
    let run = |config: &TrainConfig, store: &mut MemoryStore| {
        let schedule = Schedule {
            start: 0,
            snapshot_at: None,
            // Every 5: a run of 10 leaves its checkpoint at 5 (none after the last).
            checkpoint: Some(Checkpointing {
                store,
                key: "run".into(),
                every: 5,
            }),
            policy: None,
        };
        block_on(train_scheduled(
            model.clone(),
            Some(&mask),
            &data,
            config,
            schedule,
            &mut Silent,
        ))
    };
    let whole = run(&config, &mut MemoryStore::default()).unwrap();
    let mut store = MemoryStore::default();
    run(&config.clone().with_iterations(10), &mut store).unwrap();
    let mut dense_store = store.clone();
    let resumed = run(&config, &mut store).unwrap();
    let gap = max_relative_difference(
        &block_on(read_weights(&resumed.model)).unwrap(),
        &block_on(read_weights(&whole.model)).unwrap(),
    );
    assert_eq!(
        gap, 0.0,
        "a resumed sparse run is the uninterrupted one, bit for bit"
    );
    let dense = run(&config.clone().with_kernel(Kernel::Dense), &mut dense_store);
    assert!(
        matches!(&dense, Err(TrainError::Config(e)) if e.to_string().contains("sparse kernel")),
        "a dense run must refuse a sparse checkpoint"
    );
}

#[test]
fn bad_batches_and_networks_are_refused() {
    let device = BackendKind::Ndarray.device().unwrap();
    let model = net(ModelKind::Lenet300, 0, &device);
    let mask = random_mask(&model, 0.1, 0);
    let config = TrainConfig::new();
    let mut sparse = sparse_trainer(ModelKind::Lenet300, &mask, &config);
    assert!(matches!(
        sparse.step(&[0.0; 700], &[1], 1e-3),
        Err(SparseTrainError::Batch { .. })
    ));
    assert!(matches!(
        sparse.step(&[0.0; 784], &[10], 1e-3),
        Err(SparseTrainError::Label { label: 10, .. })
    ));
    // Stages that do not chain: the middle layer left out (300 outputs into 100 inputs).
    let weights = block_on(read_weights(&model)).unwrap();
    let stages = model.stages().unwrap();
    let broken = [stages[0].clone(), stages[2].clone()];
    assert!(matches!(
        SparseTrainer::new(&broken, &weights, Some(&mask), &config.optimizer()),
        Err(SparseTrainError::Stage(StageError::Chain { stage: 1, .. }))
    ));
    // The ViT is not a sequence of stages: sparse is refused, auto trains dense; a moving
    // mask (DST) likewise; a fixed mask below the break-even density trains sparse.
    assert!(Kernel::Sparse.resolve(None, Some(&mask), false).is_err());
    assert_eq!(
        Kernel::Auto.resolve(None, Some(&mask), false).unwrap(),
        Kernel::Dense
    );
    assert!(
        Kernel::Sparse
            .resolve(Some(&stages), Some(&mask), true)
            .is_err()
    );
    assert_eq!(
        Kernel::Auto
            .resolve(Some(&stages), Some(&mask), true)
            .unwrap(),
        Kernel::Dense
    );
    assert_eq!(
        Kernel::Auto
            .resolve(Some(&stages), Some(&mask), false)
            .unwrap(),
        Kernel::Sparse
    );
    let dense_mask = Mask::dense_for(&model);
    assert_eq!(
        Kernel::Auto
            .resolve(Some(&stages), Some(&dense_mask), false)
            .unwrap(),
        Kernel::Dense
    );
}
