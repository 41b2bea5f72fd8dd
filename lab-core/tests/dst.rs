//! Dynamic sparse training: the lab's optimiser against burn's, and the invariants of the
//! mask policies (static, SET, RigL, GMP) inside the one training loop, on real MNIST.

mod common;

use lab_core::base::keys::DstKeys;
use lab_core::base::mask::{LayerMask, Mask};
use lab_core::base::model::{Classifier, ModelKind, Net, init_model};
use lab_core::base::params::{HostTensor, Weights, read_weights};
use lab_core::base::store::{MemoryStore, RunStore};
use lab_core::block_on;
use lab_core::burn::optim::decay::WeightDecayConfig;
use lab_core::burn::optim::{AdamConfig, GradientsParams, SgdConfig, momentum::MomentumConfig};
use lab_core::burn::tensor::Device;
use lab_core::methods::dst::{
    Distribution, DstConfig, DstExperiment, DstPolicy, Method, random_mask, run_dst,
};
use lab_core::training::experiment::Session;
use lab_core::training::observer::Observer;
use lab_core::training::observer::RunObserver;
use lab_core::training::optim::LabOptimizer;
use lab_core::training::optim::OptimizerKind;
use lab_core::training::policy::UpdateContext;
use lab_core::training::policy::{MaskPolicy, MaskUpdate};
use lab_core::training::train::{
    Prepared, Schedule, TrainConfig, batch_tensors, cross_entropy, train_scheduled,
};

fn device() -> Device {
    lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
}

fn prepared(device: &Device) -> Prepared {
    Prepared::new(&common::mnist().subset(3000, 300, 300), device)
}

/// The lab's optimiser trains bit for bit like burn's `ModuleOptimizer` (Adam ε = 1e-8, and
/// momentum SGD), so records made before it stay valid.
#[test]
fn the_lab_optimizer_equals_burns_bit_for_bit() {
    let device = device().autodiff();
    let data = common::mnist();
    for (kind, decay) in [
        (OptimizerKind::Adam, 0.0),
        (OptimizerKind::Sgd, 0.0),
        (OptimizerKind::Adam, 1e-2),
        (OptimizerKind::Sgd, 1e-2),
    ] {
        let model: Net = init_model(ModelKind::Lenet5, 3, &device);
        let mut ours = LabOptimizer::new(kind, 0.9, decay);
        let weight_decay = (decay > 0.0).then_some(WeightDecayConfig {
            penalty: decay as f32,
        });
        let mut burns = match kind {
            OptimizerKind::Adam => AdamConfig::new()
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .init(),
            OptimizerKind::Sgd => SgdConfig::new()
                .with_momentum(Some(MomentumConfig {
                    momentum: 0.9,
                    dampening: 0.0,
                    nesterov: false,
                }))
                .with_weight_decay(weight_decay)
                .init(),
        };
        let (mut a, mut b) = (model.clone(), model);
        for step in 0..6 {
            let indices: Vec<usize> = (step * 32..step * 32 + 32).collect();
            let (x, y) = batch_tensors(&data.train, &indices, &device);
            let grads_a = GradientsParams::from_grads(
                cross_entropy(a.forward(x.clone()), y.clone()).backward(),
                &a,
            );
            let grads_b =
                GradientsParams::from_grads(cross_entropy(b.forward(x), y).backward(), &b);
            a = ours.step(0.01, a, grads_a);
            b = burns.step(0.01, b, grads_b);
        }
        let (wa, wb) = (
            block_on(read_weights(&a)).unwrap(),
            block_on(read_weights(&b)).unwrap(),
        );
        let initial = block_on(read_weights(&init_model::<Net>(
            ModelKind::Lenet5,
            3,
            &device,
        )))
        .unwrap();
        assert_ne!(wa, initial, "{kind:?}: nothing trained");
        for (path, t) in &wa {
            assert!(
                t.values
                    .iter()
                    .zip(&wb[path].values)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{kind:?} (decay {decay}): {path} differs from burn's optimiser"
            );
        }
    }
}

/// Records each update and checks the loop's invariants as they happen.
struct Watch {
    initial: Mask,
    previous: Mask,
    updates: Vec<(MaskUpdate, Mask)>,
}

impl Observer for Watch {
    fn on_mask_update(&mut self, update: &MaskUpdate, mask: &Mask) {
        // Rs never decreases, and the update's counts are the masks' difference.
        if let Some((last, _)) = self.updates.last() {
            assert!(update.explored >= last.explored);
        }
        let (dropped, grown) = lab_core::training::policy::changes(&self.previous, mask);
        assert_eq!((update.dropped, update.grown), (dropped, grown));
        self.previous = mask.clone();
        self.updates.push((update.clone(), mask.clone()));
    }
}
impl RunObserver for Watch {}

/// Trains `model` from `initial` through the one training loop with `policy`.
fn train_with(
    model: Net,
    initial: &Mask,
    data: &Prepared,
    train: &TrainConfig,
    policy: &DstPolicy,
    observer: &mut dyn Observer,
) -> lab_core::training::train::TrainOutcome<Net> {
    let schedule = Schedule {
        start: 0,
        snapshot_at: None,
        checkpoint: None,
        policy: Some(policy),
    };
    block_on(train_scheduled(
        model,
        Some(initial),
        data,
        train,
        schedule,
        observer,
    ))
    .unwrap()
}

fn policy(config: DstConfig, mask: &Mask, seed: u64) -> DstPolicy {
    DstPolicy {
        densities: config.densities(mask).unwrap(),
        config,
        seed,
        initial_weights: None,
    }
}

fn run(
    method: Method,
    iterations: usize,
) -> (
    Watch,
    lab_core::training::train::TrainOutcome<Net>,
    Mask,
    DstPolicy,
) {
    let device = device().autodiff();
    let data = prepared(&device);
    let model: Net = init_model(ModelKind::Lenet300, 1, &device);
    let dense = Mask::dense_for(&model);
    let config = DstConfig::new()
        .with_method(method)
        .with_density(0.05)
        .with_update_every(10)
        .with_drop_fraction(0.3);
    let policy = policy(config, &dense, 1);
    let initial = if method == Method::Gmp {
        dense.clone()
    } else {
        random_mask(&dense, &policy.densities, 1)
    };
    let mut watch = Watch {
        initial: initial.clone(),
        previous: initial.clone(),
        updates: Vec::new(),
    };
    let train = TrainConfig::new()
        .with_iterations(iterations)
        .with_eval_every(iterations);
    let outcome = train_with(model, &initial, &data, &train, &policy, &mut watch);
    (watch, outcome, initial, policy)
}

fn counts(mask: &Mask) -> Vec<usize> {
    mask.layers.iter().map(LayerMask::remaining).collect()
}

/// SET and RigL: per-layer counts stay exact at every update, Rs is the explored count over
/// the total and never falls, dropped weights are exactly 0 at the end unless regrown, the
/// updates happen every ΔT until 75% of training.
#[test]
fn set_and_rigl_keep_exact_counts_and_track_rs() {
    for method in [Method::Set, Method::Rigl] {
        let (watch, outcome, initial, _) = run(method, 80);
        let iterations: Vec<usize> = watch.updates.iter().map(|(u, _)| u.iteration).collect();
        assert_eq!(iterations, vec![10, 20, 30, 40, 50], "{method:?}");
        let mut explored = initial.clone();
        for (update, mask) in &watch.updates {
            assert_eq!(counts(mask), counts(&watch.initial), "{method:?} counts");
            assert!(update.grown > 0 && update.grown == update.dropped);
            lab_core::training::policy::explore(&mut explored, mask);
            assert_eq!(update.explored, explored.density());
        }
        assert_eq!(outcome.explored.as_ref(), Some(&explored));
        let last = outcome.final_mask.as_ref().unwrap();
        assert_eq!(last, &watch.updates.last().unwrap().1);
        assert!(explored.remaining() > initial.remaining());
        // Every weight outside the final mask is exactly 0 (dropped ones stopped moving even
        // though their moments were non-zero when dropped).
        let weights = block_on(read_weights(&outcome.model)).unwrap();
        for layer in &last.layers {
            let values = &weights[&layer.name].values;
            for (i, &keep) in layer.keep.iter().enumerate() {
                if !keep {
                    assert_eq!(
                        values[i], 0.0,
                        "{method:?}: inactive {} [{i}] moved",
                        layer.name
                    );
                }
            }
        }
    }
}

/// Static sparse training never changes its mask.
#[test]
fn static_sparse_ends_with_its_start_mask() {
    let (watch, outcome, initial, _) = run(Method::Static, 30);
    assert!(watch.updates.is_empty());
    assert_eq!(outcome.final_mask, Some(initial.clone()));
    assert_eq!(outcome.explored, Some(initial));
}

/// GMP prunes on the cubic schedule and reaches each layer's target at 75% of training.
#[test]
fn gmp_hits_the_target_on_schedule() {
    let (watch, outcome, _, policy) = run(Method::Gmp, 100);
    // Start 10, end 75, every 10: 10, 20, …, 70 and the end itself.
    let iterations: Vec<usize> = watch.updates.iter().map(|(u, _)| u.iteration).collect();
    assert_eq!(iterations, vec![10, 20, 30, 40, 50, 60, 70, 75]);
    for (update, mask) in &watch.updates {
        assert_eq!(update.grown, 0);
        for (layer, &target) in mask.layers.iter().zip(&policy.densities) {
            let expected = policy.config.gmp_density_at(target, update.iteration, 100);
            assert_eq!(
                layer.remaining(),
                lab_core::methods::dst::density::layer_count(layer.total(), expected)
            );
        }
    }
    let last = outcome.final_mask.unwrap();
    for (layer, &target) in last.layers.iter().zip(&policy.densities) {
        assert_eq!(
            layer.remaining(),
            lab_core::methods::dst::density::layer_count(layer.total(), target)
        );
    }
    // Monotone: pruning never regrows.
    for pair in watch.updates.windows(2) {
        assert!(pair[1].1.is_subset_of(&pair[0].1));
    }
}

fn tensor(values: Vec<f32>) -> HostTensor {
    HostTensor {
        shape: vec![values.len()],
        values,
    }
}

/// RigL drops the smallest |w| and grows exactly the inactive weights with the largest
/// |dense gradient|; with ITOP's exploration, never-explored weights come first; SET grows
/// only among inactive weights.
#[test]
fn rigl_grows_the_largest_gradients_set_grows_at_random() {
    let mut layer = LayerMask::dense("w", &[8]);
    layer.keep = vec![true, true, true, true, false, false, false, false];
    let mask = Mask {
        layers: vec![layer],
    };
    let weights: Weights = [(
        "w".to_string(),
        tensor(vec![0.5, -0.1, 0.3, -0.9, 0.0, 0.0, 0.0, 0.0]),
    )]
    .into();
    // Active weights' gradients are small, so the just-dropped are not regrown.
    let gradient: Weights = [(
        "w".to_string(),
        tensor(vec![0.0, 0.05, 0.1, 0.0, 0.2, -3.0, 1.0, 2.5]),
    )]
    .into();
    let mut explored = mask.clone();
    explored.layers[0].keep[5] = true; // weight 5 was active before
    let config = DstConfig::new()
        .with_method(Method::Rigl)
        .with_density(0.5)
        .with_distribution(Distribution::Uniform)
        .with_drop_fraction(0.5)
        .with_drop_schedule(lab_core::methods::dst::policy::DropSchedule::Constant);
    let rigl = policy(config.clone(), &mask, 0);
    let context = UpdateContext {
        iteration: 10,
        total: 100,
        mask: &mask,
        explored: &explored,
        weights: &weights,
        gradient: Some(&gradient),
    };
    // Drop 2 of 4: |−0.1| and |0.3|; grow the 2 largest |g| among inactive: 5 (3.0), 7 (2.5).
    let next = rigl.update(&context);
    assert_eq!(
        next.layers[0].keep,
        [true, false, false, true, false, true, false, true]
    );
    // With exploration first: 5 was explored, so 7 (2.5) and 6 (1.0) win.
    let explore = policy(config.clone().with_explore_first(true), &mask, 0);
    let next = explore.update(&context);
    assert_eq!(
        next.layers[0].keep,
        [true, false, false, true, false, false, true, true]
    );
    // The candidates include the just-dropped (RigL's reference: top-k over every weight the
    // drop left inactive): with large gradients there, they come back and the mask is unchanged.
    let mut large = gradient.clone();
    large.get_mut("w").unwrap().values[1] = 9.0;
    large.get_mut("w").unwrap().values[2] = 9.0;
    let again = rigl.update(&UpdateContext {
        gradient: Some(&large),
        ..context
    });
    assert_eq!(again, mask);
    // SET: the same drops, two growths among the inactive (incl. the just-dropped), exact count.
    let set = policy(config.with_method(Method::Set), &mask, 0);
    let next = set.update(&context);
    assert_eq!(next.layers[0].remaining(), 4);
    assert!(next.layers[0].keep[0] && next.layers[0].keep[3]);
}

/// A DST run stopped after a checkpoint resumes with the same mask, Rs and numbers.
#[test]
fn a_stopped_dst_run_resumes_with_identical_results() {
    struct StopAt(usize);
    impl Observer for StopAt {
        fn cancelled(&self) -> bool {
            self.0 == 0
        }
        fn on_step(&mut self, _: usize, _: usize) {
            self.0 = self.0.saturating_sub(1);
        }
    }
    impl RunObserver for StopAt {}
    let device = device();
    let data = prepared(&device);
    let experiment = DstExperiment::new()
        .with_sparse(
            DstConfig::new()
                .with_method(Method::Set)
                .with_density(0.1)
                .with_update_every(10),
        )
        .with_train(TrainConfig::new().with_iterations(60).with_eval_every(20))
        .with_checkpoint_every(20);
    let run = |store: &mut MemoryStore, stop_after: usize| {
        block_on(run_dst::<Net>(
            &experiment,
            None,
            &data,
            &mut Session::new(device.clone(), "ndarray", store, &mut StopAt(stop_after)),
        ))
    };
    let mut fresh_store = MemoryStore::default();
    let fresh = run(&mut fresh_store, usize::MAX).unwrap();
    let mut store = MemoryStore::default();
    assert!(run(&mut store, 45).is_err());
    let keys = DstKeys {
        run: experiment.run_name(),
    };
    assert!(store.exists(&keys.checkpoint()));
    let resumed = run(&mut store, usize::MAX).unwrap();
    let strip = |mut r: lab_core::methods::dst::DstResult| {
        r.training.wall_seconds = 0.0;
        r.training.time = Default::default();
        r
    };
    assert_eq!(strip(resumed), strip(fresh.clone()));
    assert_eq!(store.read(&keys.mask()), fresh_store.read(&keys.mask()));
    assert!(!store.exists(&keys.checkpoint()));
}

/// A mask change zeroes the optimiser state of every weight it leaves inactive (so a weight
/// grown later starts from zero moments) and leaves the others' state alone.
#[test]
fn a_new_mask_zeroes_the_optimizer_state_of_inactive_weights() {
    let device = device().autodiff();
    let data = common::mnist();
    let model: Net = init_model(ModelKind::Lenet300, 2, &device);
    let mut optimizer = LabOptimizer::new(OptimizerKind::Adam, 0.9, 0.0);
    let indices: Vec<usize> = (0..60).collect();
    let (x, y) = batch_tensors(&data.train, &indices, &device);
    let grads = GradientsParams::from_grads(cross_entropy(model.forward(x), y).backward(), &model);
    let _ = optimizer.step(1e-3, model.clone(), grads);
    let dense = Mask::dense_for(&model);
    let policy = policy(DstConfig::new().with_density(0.1), &dense, 0);
    let mask = random_mask(&dense, &policy.densities, 5);
    optimizer.mask_state(&mask.to_device(&device));
    let state = block_on(optimizer.read_state()).unwrap();
    for layer in &mask.layers {
        for moment in ["first", "second"] {
            let values = &state.tensors[&format!("{}/{moment}", layer.name)].values;
            let mut active_nonzero = 0;
            for (i, &keep) in layer.keep.iter().enumerate() {
                if keep {
                    active_nonzero += usize::from(values[i] != 0.0);
                } else {
                    assert_eq!(values[i], 0.0, "{} {moment}[{i}]", layer.name);
                }
            }
            assert!(
                active_nonzero > layer.remaining() / 2,
                "{} {moment}: active state lost",
                layer.name
            );
        }
    }
    // Unmasked parameters (biases) keep their state.
    assert!(
        state.tensors["layers.0.bias/first"]
            .values
            .iter()
            .any(|&v| v != 0.0)
    );
}

/// RigL's growth signal is the step's dense gradient: the one a plain backward pass gives,
/// bit for bit, non-zero at inactive weights (which the optimiser never sees).
#[test]
fn the_update_step_reads_the_dense_gradient() {
    let device = device().autodiff();
    let data = common::mnist();
    let model: Net = init_model(ModelKind::Lenet300, 2, &device);
    let dense = Mask::dense_for(&model);
    let policy = policy(DstConfig::new().with_density(0.1), &dense, 0);
    let mask = random_mask(&dense, &policy.densities, 5);
    let (mut stepper, model) =
        lab_core::training::train::Stepper::new(model, Some(&mask), &TrainConfig::new(), &device);
    let indices: Vec<usize> = (0..60).collect();
    let (x, y) = batch_tensors(&data.train, &indices, &device);
    let reference = GradientsParams::from_grads(
        cross_entropy(model.forward(x.clone()), y.clone()).backward(),
        &model,
    );
    let reference = block_on(lab_core::base::params::read_gradients(
        &model,
        &reference,
        &|p| mask.layer(p).is_some(),
    ))
    .unwrap();
    let (_, read) = block_on(stepper.step_reading_gradient(model, x, y, 1e-3, &mask)).unwrap();
    assert_eq!(read, reference);
    let layer = &mask.layers[1];
    let inactive_nonzero = layer
        .keep
        .iter()
        .zip(&read[&layer.name].values)
        .filter(|&(&k, &g)| !k && g != 0.0)
        .count();
    assert!(
        inactive_nonzero > (layer.total() - layer.remaining()) / 2,
        "{inactive_nonzero}"
    );
}

/// Early stop chooses among networks at the final density: from GMP's last pruning on, and
/// anywhere when the density never changes (static, SET, RigL).
#[test]
fn early_stop_waits_for_the_final_density() {
    let update = |iteration, density| MaskUpdate {
        iteration,
        density,
        explored: 1.0,
        dropped: 0,
        grown: 0,
    };
    let gmp = [update(10, 0.8), update(20, 0.4), update(30, 0.1)];
    assert_eq!(lab_core::methods::dst::settled_iteration(1.0, &gmp), 30);
    let set = [update(10, 0.1), update(20, 0.1)];
    assert_eq!(lab_core::methods::dst::settled_iteration(0.1, &set), 0);
    assert_eq!(lab_core::methods::dst::settled_iteration(0.1, &[]), 0);
    // A run on real MNIST: GMP's reported early stop is at or after its end (75%).
    let device = device();
    let data = prepared(&device);
    let experiment = DstExperiment::new()
        .with_sparse(
            DstConfig::new()
                .with_method(Method::Gmp)
                .with_density(0.05)
                .with_update_every(10),
        )
        .with_train(TrainConfig::new().with_iterations(80).with_eval_every(10));
    let result = block_on(run_dst::<Net>(
        &experiment,
        None,
        &data,
        &mut Session::new(
            device.clone(),
            "ndarray",
            &mut MemoryStore::default(),
            &mut Watch {
                initial: Mask { layers: vec![] },
                previous: Mask::dense_for(&init_model::<Net>(ModelKind::Lenet300, 0, &device)),
                updates: Vec::new(),
            },
        ),
    ))
    .unwrap();
    assert!(
        result.training.early_stop_iteration >= 60,
        "{}",
        result.training.early_stop_iteration
    );
    let density: f64 = result.training.weights_remaining;
    assert!((density - 0.05).abs() < 1e-3);
}

/// A grown connection starts at 0, or (`GrowInit::Initial`) at its θ0 value: with a learning
/// rate of 1e-30, too small to move any weight measurably, the final weights show what
/// growth wrote.
#[test]
fn grown_connections_start_from_zero_or_theta0() {
    let device = device().autodiff();
    let data = prepared(&device);
    for grow_init in [
        lab_core::methods::dst::GrowInit::Zero,
        lab_core::methods::dst::GrowInit::Initial,
    ] {
        let model: Net = init_model(ModelKind::Lenet300, 4, &device);
        let theta0 = block_on(read_weights(&model)).unwrap();
        let dense = Mask::dense_for(&model);
        let config = DstConfig::new()
            .with_method(Method::Set)
            .with_density(0.05)
            .with_update_every(10)
            .with_end_fraction(1.0)
            .with_grow_init(grow_init);
        let mut policy = policy(config, &dense, 4);
        policy.initial_weights = Some(theta0.clone());
        let initial = random_mask(&dense, &policy.densities, 4);
        let train = TrainConfig::new()
            .with_iterations(20)
            .with_eval_every(20)
            .with_learning_rate(1e-30);
        let outcome = train_with(
            model,
            &initial,
            &data,
            &train,
            &policy,
            &mut lab_core::training::observer::Silent,
        );
        let last = outcome.final_mask.unwrap();
        let weights = block_on(read_weights(&outcome.model)).unwrap();
        let mut grown = 0;
        for (before, after) in initial.layers.iter().zip(&last.layers) {
            let values = &weights[&after.name].values;
            for (i, (&is, &was)) in after.keep.iter().zip(&before.keep).enumerate() {
                let expected = if is && !was {
                    grown += 1;
                    match grow_init {
                        lab_core::methods::dst::GrowInit::Zero => 0.0,
                        lab_core::methods::dst::GrowInit::Initial => theta0[&after.name].values[i],
                    }
                } else if is {
                    theta0[&after.name].values[i]
                } else {
                    continue;
                };
                // 1e-30 per step may move a weight at 0 off it, never by more.
                assert!(
                    (values[i] - expected).abs() < 1e-20,
                    "{grow_init:?} {} [{i}]: {} vs {expected}",
                    after.name,
                    values[i]
                );
            }
        }
        assert!(grown > 1000, "{grown}");
    }
}

/// With weight decay (λ·θ added to the gradient) a pruned weight still stays exactly 0, and
/// the surviving weights end smaller than without it.
#[test]
fn weight_decay_keeps_pruned_weights_at_zero_and_shrinks_the_rest() {
    let device = device().autodiff();
    let data = prepared(&device);
    let model: Net = init_model(ModelKind::Lenet300, 6, &device);
    let dense = Mask::dense_for(&model);
    let mask = random_mask(&dense, &policy(DstConfig::new(), &dense, 0).densities, 6);
    let norm = |decay: f64| {
        let train = TrainConfig::new()
            .with_iterations(30)
            .with_eval_every(30)
            .with_weight_decay(decay);
        let outcome = block_on(lab_core::training::train::train(
            model.clone(),
            Some(&mask),
            &data,
            &train,
            None,
            &mut lab_core::training::observer::Silent,
        ))
        .unwrap();
        let weights = block_on(read_weights(&outcome.model)).unwrap();
        let mut sum = 0.0f64;
        for layer in &mask.layers {
            for (&keep, &w) in layer.keep.iter().zip(&weights[&layer.name].values) {
                if keep {
                    sum += f64::from(w * w);
                } else {
                    assert_eq!(w, 0.0, "decay {decay}: pruned {} moved", layer.name);
                }
            }
        }
        sum
    };
    assert!(norm(0.5) < norm(0.0));
}
