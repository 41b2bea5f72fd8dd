//! Records: hash-named runs, skipping finished rounds, resuming with identical results.

mod common;

use lab_core::base::keys::RunKeys;
use lab_core::base::model::Net;
use lab_core::base::store::{MemoryStore, RunStore};
use lab_core::block_on;
use lab_core::methods::imp::{ImpConfig, run_imp};
use lab_core::training::experiment::Session;
use lab_core::training::observer::Observer;
use lab_core::training::observer::RunObserver;
use lab_core::training::result::RoundResult;
use lab_core::training::train::{Prepared, TrainConfig};

#[derive(Default)]
struct CountSteps(usize);
impl Observer for CountSteps {
    fn on_step(&mut self, _: usize, _: usize) {
        self.0 += 1;
    }
}
impl RunObserver for CountSteps {}

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
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);

    // Interrupted after two rounds (what a kill leaves: finished rounds only) ...
    let mut store = MemoryStore::default();
    let mut steps = CountSteps::default();
    block_on(run_imp::<Net>(
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
    let resumed = block_on(run_imp::<Net>(
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
    let fresh = block_on(run_imp::<Net>(
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
    block_on(run_imp::<Net>(
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
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let data = Prepared::new(&common::mnist().subset(100, 50, 50), &device);
    let mut store = MemoryStore::default();
    for bad in [
        config(0),
        config(2).with_rewind(lab_core::methods::imp::Rewind::Iteration(10_000)),
        config(2).with_train(TrainConfig::new().with_batch_size(0)),
        config(2).with_train(TrainConfig::new().with_learning_rate(-1.0)),
        // Zero iterations would report the untrained network as a trained round.
        config(2).with_train(TrainConfig::new().with_iterations(0)),
    ] {
        let err = block_on(run_imp::<Net>(
            &bad,
            &data,
            &device,
            &mut store,
            &mut CountSteps::default(),
        ))
        .unwrap_err();
        assert!(
            matches!(err, lab_core::methods::imp::ImpError::Config(_)),
            "{err}"
        );
    }
    assert!(store.entries.is_empty());
}

#[test]
fn a_nan_loss_stops_training_with_a_clear_error() {
    use lab_core::base::model::{ModelKind, init_model};
    use lab_core::base::params::{load_weights, read_weights};
    use lab_core::training::observer::Silent;
    use lab_core::training::train::{TrainError, train};
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
        .autodiff();
    let data = Prepared::new(&common::mnist().subset(600, 100, 100), &device);
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
    let mut weights = block_on(read_weights(&model)).unwrap();
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
    use lab_core::base::mask::masked_weights;
    use lab_core::base::model::{ModelKind, init_model};
    use lab_core::base::params::read_weights;
    use lab_core::base::ticket::Ticket;
    use lab_core::methods::imp::Rewind;
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);
    let theta0 = block_on(read_weights(&init_model::<Net>(
        ModelKind::Lenet300,
        0,
        &device.clone().autodiff(),
    )))
    .unwrap();

    // Late rewinding to θ20: the ticket holds θ20 on the survivors, and θ20 ≠ θ0.
    let late = config(2).with_rewind(Rewind::Iteration(20));
    let mut store = MemoryStore::default();
    let mut steps = CountSteps::default();
    let late_results = block_on(run_imp::<Net>(
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
    block_on(run_imp::<Net>(
        &direct,
        &data,
        &device,
        &mut other,
        &mut CountSteps::default(),
    ))
    .unwrap();
    // (round 0 of `direct` trained exactly those 20 steps; its next mask comes from them)
    let trained20 = lab_core::base::mask::Mask::from_json(
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
    let from_theta_k = lab_core::pruning::prune::magnitude(
        &lab_core::base::mask::Mask::dense_for(&init_model::<Net>(
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
    let results = block_on(run_imp::<Net>(
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
    use lab_core::base::model::{ModelKind, init_model};
    use lab_core::training::observer::Silent;
    use lab_core::training::optim::OptimizerKind;
    use lab_core::training::train::train;
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
        .autodiff();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
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
    use lab_core::base::naming::with_defaults;
    use lab_core::methods::imp::Rewind;
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
    assert!(error.to_string().contains("train.iterashuns"), "{error}");
}

/// Replicates vary the data order with their seed; an explicit data seed overrides it, and
/// every round of a lineage uses the same order.
#[test]
fn replicate_seeds_vary_the_data_order() {
    use lab_core::base::model::{ModelKind, init_model};
    use lab_core::base::params::read_weights;
    use lab_core::training::observer::Silent;
    use lab_core::training::train::train;
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
        .autodiff();
    let data = Prepared::new(&common::mnist().subset(3000, 200, 200), &device);
    let base = TrainConfig::new().with_iterations(5).with_eval_every(5);
    let after = |config: &TrainConfig| {
        let model: Net = init_model(ModelKind::Lenet300, 0, &device);
        let outcome = block_on(train(model, None, &data, config, None, &mut Silent)).unwrap();
        block_on(read_weights(&outcome.model)).unwrap()
    };
    let seed0 = after(&base.for_replicate(0));
    let seed1 = after(&base.for_replicate(1));
    assert_ne!(
        seed0, seed1,
        "replicate seeds 0 and 1 trained on the same batches"
    );
    let pinned = base.clone().with_data_seed(Some(0)).for_replicate(1);
    assert_eq!(after(&pinned), seed0, "an explicit data seed wins");
    assert_eq!(base.data_order_seed(7), 7);

    // The report names the order; the run name of seed 1 differs from seed 0's.
    let report_seed = |seed: u64| config(1).with_seed(seed).train.data_order_seed(seed);
    assert_eq!((report_seed(0), report_seed(3)), (0, 3));
}

/// A run's records come from one backend: a rerun on another is refused with the reason.
#[test]
fn records_of_one_backend_refuse_another() {
    use lab_core::base::store::{StoreError, claim_backend};
    use lab_core::methods::imp::run_experiment;
    let mut store = MemoryStore::default();
    claim_backend(&mut store, "imp-x", "ndarray").unwrap();
    claim_backend(&mut store, "imp-x", "ndarray").unwrap();
    let err = claim_backend(&mut store, "imp-x", "wgpu").unwrap_err();
    assert!(matches!(err, StoreError::BackendMismatch { .. }), "{err}");
    assert!(err.to_string().contains("ndarray"), "{err}");

    // Through an experiment: the same config on a second backend name fails before training.
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let tiny = ImpConfig::new()
        .with_rounds(1)
        .with_train(TrainConfig::new().with_iterations(2).with_eval_every(2))
        .with_train_subset(Some(200))
        .with_eval_subset(Some(100));
    let mut store = MemoryStore::default();
    let run = |store: &mut MemoryStore, backend: &str| {
        block_on(run_experiment(
            &tiny,
            &[],
            None,
            common::mnist(),
            &mut Session::new(device.clone(), backend, store, &mut CountSteps::default()),
        ))
    };
    run(&mut store, "ndarray").unwrap();
    let err = run(&mut store, "flex").unwrap_err();
    assert!(
        err.to_string().contains("were made on the ndarray backend"),
        "{err}"
    );
}

/// Cancels after `at` iterations, like a kill between two batches.
struct StopAt {
    at: usize,
    seen: usize,
    resumed_at: Option<usize>,
    /// Sleep a second after this step (to tell one process's wall time from another's).
    sleep_at: Option<usize>,
}
impl Observer for StopAt {
    fn on_step(&mut self, iteration: usize, _: usize) {
        self.seen = iteration;
        if self.sleep_at == Some(iteration) {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
    fn on_resume(&mut self, iteration: usize) {
        self.resumed_at = Some(iteration);
    }
    fn cancelled(&self) -> bool {
        self.seen >= self.at
    }
}
impl RunObserver for StopAt {}

/// A run stopped inside a round resumes from its last checkpoint (not from the round's
/// start) and ends with exactly the numbers of an uninterrupted run: weights, optimiser
/// state, data position, curve. Late rewinding (θk inside the checkpoint) and a control too.
#[test]
fn a_run_stopped_inside_a_round_resumes_from_its_checkpoint_with_the_same_results() {
    use lab_core::base::ticket::Ticket;
    use lab_core::methods::imp::{Control, Rewind, run_control};
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let data = Prepared::new(&common::mnist().subset(3000, 500, 500), &device);
    // θk at 10 is inside the first checkpoint interval, so it must travel in the checkpoint.
    let config = config(2)
        .with_rewind(Rewind::Iteration(10))
        .with_checkpoint_every(20);
    let keys = RunKeys {
        run: config.run_name(),
    };

    let mut reference_store = MemoryStore::default();
    let reference = block_on(run_imp::<Net>(
        &config,
        &data,
        &device,
        &mut reference_store,
        &mut CountSteps::default(),
    ))
    .unwrap();
    let reference_control = block_on(run_control::<Net>(
        &config,
        Control::Reinit,
        None,
        &data,
        &device,
        &mut reference_store,
        &mut CountSteps::default(),
    ))
    .unwrap();

    let mut store = MemoryStore::default();
    // Round 0 stops at iteration 45: its checkpoint is the one of iteration 40.
    let mut stop = StopAt {
        at: 45,
        seen: 0,
        resumed_at: None,
        sleep_at: Some(30),
    };
    let err = block_on(run_imp::<Net>(
        &config, &data, &device, &mut store, &mut stop,
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("cancelled at iteration 45"),
        "{err}"
    );
    assert!(store.exists(&keys.checkpoint(None, 0)));
    assert!(!store.exists(&keys.result(None, 0)));

    let mut resumed = StopAt {
        at: usize::MAX,
        seen: 0,
        resumed_at: None,
        sleep_at: None,
    };
    let results = block_on(run_imp::<Net>(
        &config,
        &data,
        &device,
        &mut store,
        &mut resumed,
    ))
    .unwrap();
    assert_eq!(
        resumed.resumed_at,
        Some(40),
        "did not resume from the checkpoint"
    );
    // Round 0's wall time counts the stopped process's second before its checkpoint too.
    assert!(
        results[0].wall_seconds >= 1.0,
        "round 0 wall time {} s leaves out the process that was stopped",
        results[0].wall_seconds
    );
    assert_eq!(without_timing(results), without_timing(reference));
    assert!(
        !store.exists(&keys.checkpoint(None, 0)),
        "a finished round keeps no checkpoint"
    );
    let read =
        |s: &MemoryStore, key: &str| Ticket::from_safetensors(&s.read(key).unwrap()).unwrap();
    assert_eq!(
        read(&store, &keys.rewind()),
        read(&reference_store, &keys.rewind())
    );
    assert_eq!(
        read(&store, &keys.ticket(1)),
        read(&reference_store, &keys.ticket(1))
    );

    // A control (reinit) stopped twice inside its round 0.
    for at in [30, 50] {
        let mut stop = StopAt {
            at,
            seen: 0,
            resumed_at: None,
            sleep_at: None,
        };
        let control = run_control::<Net>(
            &config,
            Control::Reinit,
            None,
            &data,
            &device,
            &mut store,
            &mut stop,
        );
        assert!(block_on(control).is_err());
    }
    let mut resumed = StopAt {
        at: usize::MAX,
        seen: 0,
        resumed_at: None,
        sleep_at: None,
    };
    let control = block_on(run_control::<Net>(
        &config,
        Control::Reinit,
        None,
        &data,
        &device,
        &mut store,
        &mut resumed,
    ))
    .unwrap();
    assert_eq!(resumed.resumed_at, Some(40));
    assert_eq!(without_timing(control), without_timing(reference_control));
}

/// A report an older lab wrote (before lab-core moved into floors) names its run by the hash
/// of its config: the config read back today must name the same run, or its records would
/// not be found and a rerun would train everything again.
#[test]
fn records_made_before_the_move_are_found_after_it() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/results/dst-lenet300/methods/imp-5k/report.json"
    );
    // Read as plain JSON: that lab's rounds had fewer fields than today's.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (run, recorded) = (report["run"].as_str().unwrap(), report["config"].clone());
    // Settings added since (weight decay, say) take their defaults, which leave names alone.
    let config: ImpConfig =
        lab_core::base::naming::with_defaults(&ImpConfig::new(), recorded.clone()).unwrap();
    assert_eq!(config.run_name(), run);
    // Through the registry, as the browser and sweep files name it, from the JSON alone.
    let described =
        lab_core::report::registry::describe("imp", serde_json::json!({ "config": recorded }))
            .unwrap();
    assert_eq!(described.run_name, run);
}

/// A run made through the old entry point is read back, not retrained, when the registry
/// runs the same config by kind.
#[test]
fn a_run_by_kind_reads_back_what_the_direct_call_recorded() {
    use lab_core::training::experiment::{Data, Session};
    let device = lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap();
    let config = config(2);
    let mut store = MemoryStore::default();
    let direct = block_on(lab_core::methods::imp::run_experiment(
        &config,
        &[],
        None,
        common::mnist(),
        &mut Session::new(
            device.clone(),
            "ndarray",
            &mut store,
            &mut CountSteps::default(),
        ),
    ))
    .unwrap();
    let mut steps = CountSteps::default();
    let data = Data::one(lab_core::base::data::DatasetKind::Mnist, common::mnist());
    let by_kind = block_on(lab_core::report::registry::run_json(
        "imp",
        serde_json::json!({ "config": serde_json::to_value(&config).unwrap() }),
        &data,
        &mut Session {
            device: device.clone(),
            backend: "ndarray".into(),
            store: &mut store,
            observer: &mut steps,
        },
    ))
    .unwrap();
    assert_eq!(steps.0, 0, "finished rounds are read back");
    let by_kind: lab_core::methods::imp::ImpReport = serde_json::from_value(by_kind).unwrap();
    // The read-back rounds went through JSON, which may move a loss's last bit.
    assert_eq!(by_kind.rounds.len(), direct.rounds.len());
    for (read, made) in by_kind.rounds.iter().zip(&direct.rounds) {
        assert_eq!(read.layers, made.layers);
        assert_eq!(read.early_stop_iteration, made.early_stop_iteration);
        assert_eq!(read.test_accuracy, made.test_accuracy);
        assert!((read.validation_loss - made.validation_loss).abs() < 1e-12);
    }
    let unknown = block_on(lab_core::report::registry::run_json(
        "nope",
        serde_json::json!({}),
        &data,
        &mut Session {
            device,
            backend: "ndarray".into(),
            store: &mut store,
            observer: &mut steps,
        },
    ));
    assert!(
        unknown
            .unwrap_err()
            .to_string()
            .contains("known: imp, pai, dst")
    );
}
