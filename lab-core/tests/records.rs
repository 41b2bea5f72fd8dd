//! Records: hash-named runs, skipping finished rounds, resuming with identical results.

mod common;

use lab_core::block_on;
use lab_core::imp::{ImpConfig, ImpObserver, RunKeys, run_imp};
use lab_core::model::Mlp;
use lab_core::record::RoundResult;
use lab_core::store::{MemoryStore, RunStore};
use lab_core::train::{Observer, Prepared, TrainConfig};

#[derive(Default)]
struct CountSteps(usize);
impl Observer for CountSteps {
    fn on_step(&mut self, _: usize, _: usize) {
        self.0 += 1;
    }
}
impl ImpObserver for CountSteps {}

fn config(rounds: usize) -> ImpConfig {
    ImpConfig::new()
        .with_rounds(rounds)
        .with_train(TrainConfig::new().with_iterations(60).with_eval_every(30))
        .with_train_subset(Some(3000))
        .with_eval_subset(Some(500))
}

fn without_timing(mut rounds: Vec<RoundResult>) -> Vec<RoundResult> {
    for r in &mut rounds {
        r.wall_seconds = 0.0;
        r.time = Default::default();
    }
    rounds
}

#[test]
fn run_names_hash_only_non_default_hyper_parameters() {
    assert_eq!(
        config(2).run_name(),
        config(5).run_name(),
        "rounds extend a run"
    );
    assert_ne!(config(2).run_name(), config(2).with_seed(1).run_name());
    let default_name = ImpConfig::new().run_name();
    assert_eq!(default_name, ImpConfig::new().with_seed(0).run_name());
    assert!(default_name.starts_with("imp-") && default_name.len() == 12);
}

#[test]
fn reruns_skip_finished_rounds_and_resume_with_the_same_results() {
    let device = lab_core::backend::BackendKind::Ndarray.device().unwrap();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);

    // Interrupted after two rounds (what a kill leaves: finished rounds only) ...
    let mut store = MemoryStore::default();
    let mut steps = CountSteps::default();
    block_on(run_imp::<Mlp>(
        &config(2),
        &data,
        &device,
        &mut store,
        &mut steps,
    ))
    .unwrap();
    assert_eq!(steps.0, 120);
    // ... and a round-2 record half written is not taken as finished.
    let keys = RunKeys {
        run: config(3).run_name(),
    };
    assert!(!store.exists(&keys.result(None, 2)));

    // The rerun trains only the missing round.
    let mut steps = CountSteps::default();
    let resumed = block_on(run_imp::<Mlp>(
        &config(3),
        &data,
        &device,
        &mut store,
        &mut steps,
    ))
    .unwrap();
    assert_eq!(steps.0, 60);

    // An uninterrupted run gives the same results.
    let mut fresh_store = MemoryStore::default();
    let fresh = block_on(run_imp::<Mlp>(
        &config(3),
        &data,
        &device,
        &mut fresh_store,
        &mut CountSteps::default(),
    ))
    .unwrap();
    assert_eq!(without_timing(resumed), without_timing(fresh));

    // Running it again does nothing.
    let mut steps = CountSteps::default();
    block_on(run_imp::<Mlp>(
        &config(3),
        &data,
        &device,
        &mut store,
        &mut steps,
    ))
    .unwrap();
    assert_eq!(steps.0, 0);
}

#[test]
fn impossible_configs_are_refused_before_any_work() {
    let device = lab_core::backend::BackendKind::Ndarray.device().unwrap();
    let data = Prepared::new(&common::mnist().subset(100, 50, 50), &device);
    let mut store = MemoryStore::default();
    for bad in [
        config(0),
        config(2).with_rewind(lab_core::imp::Rewind::Iteration(10_000)),
        config(2).with_train(TrainConfig::new().with_batch_size(0)),
        config(2).with_train(TrainConfig::new().with_learning_rate(-1.0)),
    ] {
        let err = block_on(run_imp::<Mlp>(
            &bad,
            &data,
            &device,
            &mut store,
            &mut CountSteps::default(),
        ))
        .unwrap_err();
        assert!(matches!(err, lab_core::imp::ImpError::Config(_)), "{err}");
    }
    assert!(store.entries.is_empty());
}

#[test]
fn a_nan_loss_stops_training_with_a_clear_error() {
    use lab_core::model::{ModelKind, init_model};
    use lab_core::params::{load_weights, read_weights};
    use lab_core::train::{Silent, TrainError, train};
    let device = lab_core::backend::BackendKind::Ndarray
        .device()
        .unwrap()
        .autodiff();
    let data = Prepared::new(&common::mnist().subset(600, 100, 100), &device);
    let model: Mlp = init_model(ModelKind::Lenet300, 0, &device);
    let mut weights = block_on(read_weights(&model));
    weights.get_mut("layers.1.weight").unwrap().values[7] = f32::NAN;
    let model = load_weights(model, &weights);
    let config = TrainConfig::new().with_iterations(20).with_eval_every(10);
    let err = block_on(train(model, None, &data, &config, None, &mut Silent)).unwrap_err();
    assert!(
        matches!(err, TrainError::Diverged { iteration: 0, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("diverged"));
}

#[test]
fn late_rewinding_and_fine_tuning_start_where_they_should() {
    use lab_core::imp::Rewind;
    use lab_core::imp::masked_weights;
    use lab_core::model::{ModelKind, init_model};
    use lab_core::params::read_weights;
    use lab_core::ticket::Ticket;
    let device = lab_core::backend::BackendKind::Ndarray.device().unwrap();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);
    let theta0 = block_on(read_weights(&init_model::<Mlp>(
        ModelKind::Lenet300,
        0,
        &device.clone().autodiff(),
    )));

    // Late rewinding to θ20: the ticket holds θ20 on the survivors, and θ20 ≠ θ0.
    let late = config(2).with_rewind(Rewind::Iteration(20));
    let mut store = MemoryStore::default();
    let mut steps = CountSteps::default();
    let late_results = block_on(run_imp::<Mlp>(
        &late, &data, &device, &mut store, &mut steps,
    ))
    .unwrap();
    // Round 0 trains 60 steps; round 1 resumes the schedule at 20 and trains the other 40.
    assert_eq!(steps.0, 60 + 40);
    assert_eq!(late_results[1].curve[0].iteration, 20);
    assert_eq!(late_results[1].curve.last().unwrap().iteration, 60);
    let keys = RunKeys {
        run: late.run_name(),
    };
    let theta_k = Ticket::from_safetensors(&store.read(&keys.rewind()).unwrap())
        .unwrap()
        .weights;
    assert_ne!(theta_k["layers.0.weight"], theta0["layers.0.weight"]);
    let ticket = Ticket::from_safetensors(&store.read(&keys.ticket(1)).unwrap()).unwrap();
    assert_eq!(ticket.weights, masked_weights(&theta_k, &ticket.mask));
    assert_eq!(ticket.provenance.rewind, "iteration-20");

    // θk is θ0 trained for k steps: the same as the first 20 steps of a plain run.
    let mut direct =
        config(1).with_train(TrainConfig::new().with_iterations(20).with_eval_every(20));
    direct.train.data_seed = late.train.data_seed;
    let mut other = MemoryStore::default();
    block_on(run_imp::<Mlp>(
        &direct,
        &data,
        &device,
        &mut other,
        &mut CountSteps::default(),
    ))
    .unwrap();
    // (round 0 of `direct` trained exactly those 20 steps; its next mask comes from them)
    let trained20 = lab_core::mask::Mask::from_json(
        &String::from_utf8(
            other
                .read(
                    &RunKeys {
                        run: direct.run_name(),
                    }
                    .mask(1),
                )
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let from_theta_k = lab_core::prune::magnitude(
        &lab_core::mask::Mask::dense_for(&init_model::<Mlp>(
            ModelKind::Lenet300,
            0,
            &device.clone().autodiff(),
        )),
        &theta_k,
        &late.prune,
    );
    assert_eq!(trained20, from_theta_k);

    // Fine-tuning: round 1 starts from round 0's trained weights (masked), not from θ0.
    let fine = config(2).with_rewind(Rewind::FineTune);
    let mut store = MemoryStore::default();
    let results = block_on(run_imp::<Mlp>(
        &fine,
        &data,
        &device,
        &mut store,
        &mut CountSteps::default(),
    ))
    .unwrap();
    let keys = RunKeys {
        run: fine.run_name(),
    };
    assert!(store.exists(&keys.trained(0)) && !store.exists(&keys.ticket(1)));
    // Starting from trained weights, round 1's first evaluation is already far above chance.
    assert!(
        results[1].curve[0].test_accuracy > 0.8,
        "{:?}",
        results[1].curve[0]
    );
    assert!(results[0].curve[0].test_accuracy < 0.3);
}

#[test]
fn sgd_with_momentum_and_warmup_learns() {
    use lab_core::model::{ModelKind, init_model};
    use lab_core::train::{OptimizerKind, Silent, train};
    let device = lab_core::backend::BackendKind::Ndarray
        .device()
        .unwrap()
        .autodiff();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);
    let model: Mlp = init_model(ModelKind::Lenet300, 0, &device);
    let config = TrainConfig::new()
        .with_optimizer(OptimizerKind::Sgd)
        .with_learning_rate(0.05)
        .with_warmup_iterations(20)
        .with_iterations(100)
        .with_eval_every(50);
    let outcome = block_on(train(model, None, &data, &config, None, &mut Silent)).unwrap();
    assert!(outcome.last.test_accuracy > 0.8, "{:?}", outcome.last);
    assert!(outcome.last.validation_loss < outcome.curve[0].validation_loss / 3.0);
}

#[test]
fn partial_json_configs_fill_in_defaults_and_refuse_unknown_settings() {
    use lab_core::imp::Rewind;
    use lab_core::record::with_defaults;
    let default = ImpConfig::new();
    let config: ImpConfig = with_defaults(
        &default,
        serde_json::json!({ "rounds": 3, "train": { "iterations": 40 }, "eval_subset": 500 }),
    )
    .unwrap();
    assert_eq!(config.rounds, 3);
    assert_eq!(config.train.iterations, 40);
    assert_eq!(config.eval_subset, Some(500));
    assert_eq!(config.train.batch_size, default.train.batch_size);
    assert_eq!(config.prune, default.prune);

    // Enum variants replace each other, with or without data.
    let late: ImpConfig = with_defaults(
        &default,
        serde_json::json!({ "rewind": { "iteration": 7 } }),
    )
    .unwrap();
    assert_eq!(late.rewind, Rewind::Iteration(7));
    let fraction: ImpConfig =
        with_defaults(&late, serde_json::json!({ "rewind": { "fraction": 0.1 } })).unwrap();
    assert_eq!(fraction.rewind, Rewind::Fraction(0.1));

    let error = with_defaults(
        &default,
        serde_json::json!({ "train": { "iterashuns": 5 } }),
    )
    .unwrap_err();
    assert!(error.contains("train.iterashuns"), "{error}");
}
