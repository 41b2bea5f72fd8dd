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
