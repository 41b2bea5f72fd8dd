//! The follow-up analyses on real MNIST: linear mode connectivity (the ends of the line are
//! the two trained copies exactly; a network split from itself has no barrier; tickets keep
//! their mask along the line; records are read back), early-bird tickets, weight
//! histograms and ticket transfer.

mod common;

use lab_core::analyses::early_bird::{
    Criterion, Draw, EarlyBirdExperiment, Retrain, run_early_bird,
};
use lab_core::analyses::histogram::imp_round_histograms;
use lab_core::analyses::lmc::{LmcExperiment, run_lmc};
use lab_core::analyses::transfer::{TransferExperiment, run_transfer};
use lab_core::base::keys::AnalysisKeys;
use lab_core::base::keys::RunKeys;
use lab_core::base::mask::Mask;
use lab_core::base::model::{ModelKind, Net};
use lab_core::base::store::{MemoryStore, RunStore};
use lab_core::base::ticket::Ticket;
use lab_core::block_on;
use lab_core::burn::tensor::Device;
use lab_core::methods::imp::{Control, ImpConfig, run_imp};
use lab_core::training::experiment::Session;
use lab_core::training::observer::RunObserver;
use lab_core::training::observer::{Observer, Silent};
use lab_core::training::result::RoundResult;
use lab_core::training::train::{Prepared, TrainConfig};

fn device() -> Device {
    lab_core::base::backend::BackendKind::Ndarray
        .device()
        .unwrap()
}

fn prepared(device: &Device) -> Prepared {
    Prepared::new(&common::mnist().subset(2000, 300, 300), device)
}

fn experiment() -> LmcExperiment {
    LmcExperiment::new()
        .with_model(ModelKind::Lenet300)
        .with_train(TrainConfig::new().with_iterations(60).with_eval_every(30))
        .with_points(5)
}

#[test]
fn the_line_ends_at_the_two_trained_copies_exactly() {
    let device = device();
    let data = prepared(&device);
    let mut store = MemoryStore::default();
    let result = block_on(run_lmc::<Net>(
        &experiment(),
        20,
        &data,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut Silent),
    ))
    .unwrap();
    assert_eq!(result.path.len(), 5);
    // α = 0 and α = 1, evaluated from interpolated weights, equal the copies' own last
    // evaluation from their training runs, to the last bit.
    assert_eq!(result.path[0].point, result.copies[0]);
    assert_eq!(result.path[4].point, result.copies[1]);
    // Two data orders give two different networks.
    assert_ne!(result.copies[0], result.copies[1]);
    assert!(result.error_barrier >= 0.0);
    // A rerun reads the record back: it trains nothing. (serde_json without
    // `float_roundtrip` may move a read-back f64 by its last bit.)
    let mut steps = CountSteps(0);
    let again = block_on(run_lmc::<Net>(
        &experiment(),
        20,
        &data,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut steps),
    ))
    .unwrap();
    assert_eq!(steps.0, 0);
    assert_eq!(again.path.len(), result.path.len());
    assert!((again.error_barrier - result.error_barrier).abs() < 1e-12);
}

/// Counts training steps.
struct CountSteps(usize);
impl Observer for CountSteps {
    fn on_step(&mut self, _: usize, _: usize) {
        self.0 += 1;
    }
}
impl RunObserver for CountSteps {}

#[test]
fn a_network_split_from_itself_has_no_barrier() {
    let device = device();
    let data = prepared(&device);
    let same = experiment().with_copy_seeds(Some([7, 7]));
    for k in [0, 30] {
        let result = block_on(run_lmc::<Net>(
            &same,
            k,
            &data,
            &mut Session::new(
                device.clone(),
                "ndarray",
                &mut MemoryStore::default(),
                &mut Silent,
            ),
        ))
        .unwrap();
        assert_eq!(result.copies[0], result.copies[1], "k = {k}");
        for p in &result.path {
            assert_eq!(p.point, result.copies[0], "k = {k}, α = {}", p.alpha);
        }
        assert_eq!(result.error_barrier, 0.0);
        assert_eq!(result.loss_barrier, 0.0);
    }
}

#[test]
fn a_ticket_is_split_at_its_rewinding_point_with_its_mask() {
    let device = device();
    let data = prepared(&device);
    let mut store = MemoryStore::default();
    let ticket = experiment().with_ticket_round(2);
    let result = block_on(run_lmc::<Net>(
        &ticket,
        20,
        &data,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut Silent),
    ))
    .unwrap();
    // Round 2 of IMP at 20% per round (10% for the output layer).
    assert!(
        (result.weights_remaining - 0.64).abs() < 0.01,
        "{}",
        result.weights_remaining
    );
    let round = result.ticket.as_ref().expect("the IMP round's result");
    assert_eq!(round.round, 2);
    assert_eq!(round.weights_remaining, result.weights_remaining);
    // The IMP run rewound to k = 20 is in the same store, round 2 finished.
    let imp = ticket.imp_config(20);
    assert!(store.exists(&format!("{}/round-02/result.json", imp.run_name())));
    assert_eq!(result.path[0].point, result.copies[0]);
    assert_eq!(result.path[4].point, result.copies[1]);
    // The random-pruning control of the same round: the same sparsity, trained by IMP's
    // control branch (its record), split at the same k.
    let control = block_on(run_lmc::<Net>(
        &ticket.clone().with_branch(Some(Control::RandomPrune)),
        20,
        &data,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut Silent),
    ))
    .unwrap();
    assert_eq!(control.weights_remaining, result.weights_remaining);
    assert_eq!(control.label, "random-prune round 2");
    assert!(store.exists(&keys_result(&imp.run_name(), "random-prune", 2)));
    assert_ne!(control.copies, result.copies);
}

fn keys_result(run: &str, branch: &str, round: usize) -> String {
    RunKeys { run: run.into() }.result(Some(branch), round)
}

fn eb_experiment() -> EarlyBirdExperiment {
    EarlyBirdExperiment::new()
        .with_train(TrainConfig::new().with_iterations(60).with_eval_every(30))
        .with_round(2)
        .with_draw_every(10)
}

/// Watching the masks does not change the dense training; every draw and the early bird
/// have exactly the IMP ticket's per-layer counts; the cost is the draw's iteration plus one
/// training.
#[test]
fn early_bird_draws_have_the_imp_counts_and_watching_changes_nothing() {
    let device = device();
    let data = prepared(&device);
    let mut store = MemoryStore::default();
    let experiment = eb_experiment();
    let criteria = [
        Criterion {
            epsilon: 1.0,
            window: 2,
        },
        Criterion {
            epsilon: 0.0,
            window: 2,
        },
    ];
    let report = block_on(run_early_bird::<Net>(
        &experiment,
        &criteria,
        &[Retrain::Init, Retrain::Continue],
        &data,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut Silent),
    ))
    .unwrap();
    // The IMP run's dense round 0 is the same training as the watched run.
    assert_eq!(
        report.dense.curve,
        block_imp_round0(&store, &experiment).curve
    );
    let iterations: Vec<usize> = report.draws.iter().map(|d| d.iteration).collect();
    assert_eq!(iterations, [10, 20, 30, 40, 50, 60]);
    let draws: Vec<Draw> = serde_json::from_slice(
        &store
            .read(&format!("{}/draws.json", experiment.run_name()))
            .unwrap(),
    )
    .unwrap();
    let imp_keys = RunKeys {
        run: experiment.imp_config().run_name(),
    };
    let imp_mask = Ticket::from_safetensors(&store.read(&imp_keys.ticket(2)).unwrap())
        .unwrap()
        .mask;
    for draw in &draws {
        for (drawn, imp) in draw.mask.layers.iter().zip(&imp_mask.layers) {
            assert_eq!(
                drawn.remaining(),
                imp.remaining(),
                "{} at {}",
                drawn.name,
                draw.iteration
            );
        }
    }
    // ε = 1 accepts the second draw (the first with a predecessor); ε = 0 never. Each
    // criterion is trained from θ0 and continued from the draw.
    let (init, continued) = (&report.tickets[0], &report.tickets[1]);
    assert_eq!(
        (init.retrain, continued.retrain),
        (Retrain::Init, Retrain::Continue)
    );
    assert_eq!(init.found_at, Some(20));
    assert_eq!(init.cost_iterations, Some(20 + 60));
    assert_eq!(continued.cost_iterations, Some(60));
    let trained = init.training.as_ref().unwrap();
    assert_eq!(trained.weights_remaining, report.imp.weights_remaining);
    // The continued ticket trains from iteration 20 on: its curve starts there.
    assert_eq!(continued.training.as_ref().unwrap().curve[0].iteration, 20);
    assert_eq!(trained.curve[0].iteration, 0);
    assert_eq!(report.tickets[2].found_at, None);
    assert_eq!(report.imp_cost_iterations, 3 * 60);
}

fn block_imp_round0(store: &MemoryStore, experiment: &EarlyBirdExperiment) -> RoundResult {
    let keys = RunKeys {
        run: experiment.imp_config().run_name(),
    };
    serde_json::from_slice(&store.read(&keys.result(None, 0)).unwrap()).unwrap()
}

/// The histograms of an IMP round count every surviving weight of each stage exactly once.
#[test]
fn weight_histograms_count_every_survivor_once() {
    let device = device();
    let data = prepared(&device);
    let mut store = MemoryStore::default();
    let config = ImpConfig::new()
        .with_train(TrainConfig::new().with_iterations(40).with_eval_every(20))
        .with_rounds(3);
    block_on(run_imp::<Net>(
        &config,
        &data,
        &device,
        &mut store,
        &mut Silent,
    ))
    .unwrap();
    let run = config.run_name();
    let h = imp_round_histograms(&store, &run, 1, 50).unwrap();
    let keys = RunKeys { run: run.clone() };
    let mask = |round: usize| {
        Mask::from_json(std::str::from_utf8(&store.read(&keys.mask(round)).unwrap()).unwrap())
            .unwrap()
    };
    let (round1, round2) = (mask(1), mask(2));
    assert_eq!(h.layers.len(), round1.layers.len());
    for (layer, (m1, m2)) in h
        .layers
        .iter()
        .zip(round1.layers.iter().zip(&round2.layers))
    {
        let expected = [
            m1.remaining(),
            m2.remaining(),
            m2.remaining(),
            m2.remaining(),
        ];
        let stages: Vec<&str> = layer.stages.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages.len(), 4, "{stages:?}");
        for (stage, want) in layer.stages.iter().zip(expected) {
            assert_eq!(stage.total, want, "{} {}", layer.name, stage.stage);
            assert_eq!(
                stage.counts.iter().sum::<usize>(),
                want,
                "{} {}",
                layer.name,
                stage.stage
            );
        }
        // Magnitude pruning keeps the larger weights.
        assert!(
            layer.stages[1].mean_abs > layer.stages[0].mean_abs,
            "{}",
            layer.name
        );
    }
}

fn fashion() -> lab_core::base::data::Mnist {
    let (data, _) = lab_core::base::data::native::load(
        lab_core::base::data::DatasetKind::FashionMnist,
        &lab_core::base::data::native::DataSource::default(),
        &mut |_, _, _| {},
    )
    .expect("Fashion-MNIST: Debian's dataset-fashion-mnist (scripts/setup.sh core)");
    data
}

/// A ticket found on MNIST and trained on Fashion-MNIST keeps its mask and rewound weights
/// bit for bit; the reinit control keeps the mask only; random pruning keeps the counts only.
#[test]
fn a_transferred_ticket_keeps_its_mask_bit_for_bit() {
    let device = device();
    let source = prepared(&device);
    let target = Prepared::new(&fashion().subset(2000, 300, 300), &device);
    let mut store = MemoryStore::default();
    let experiment = TransferExperiment::new()
        .with_train(TrainConfig::new().with_iterations(40).with_eval_every(20))
        .with_rounds(3);
    let report = block_on(run_transfer::<Net>(
        &experiment,
        &source,
        &target,
        &mut Session::new(device.clone(), "ndarray", &mut store, &mut Silent),
    ))
    .unwrap();
    assert_eq!(report.rounds.len(), 2);
    let source_keys = RunKeys {
        run: experiment.imp_config(experiment.source).run_name(),
    };
    let run = experiment.run_name();
    let read = |key: &str| Ticket::from_safetensors(&store.read(key).unwrap()).unwrap();
    for round in [1, 2] {
        let ticket = read(&source_keys.ticket(round));
        let transferred =
            read(&AnalysisKeys { run: run.clone() }.branch_start(round, "transferred"));
        assert_eq!(transferred.mask, ticket.mask, "round {round}");
        assert_eq!(transferred.weights, ticket.weights, "round {round}");
        assert_eq!(transferred.provenance.dataset, "fashion-mnist");
        let reinit = read(&AnalysisKeys { run: run.clone() }.branch_start(round, "reinit"));
        assert_eq!(reinit.mask, ticket.mask);
        assert_ne!(reinit.weights, ticket.weights);
        let random = read(&AnalysisKeys { run: run.clone() }.branch_start(round, "random-prune"));
        assert_ne!(random.mask, ticket.mask);
        for (a, b) in random.mask.layers.iter().zip(&ticket.mask.layers) {
            assert_eq!(a.remaining(), b.remaining(), "{}", a.name);
        }
        let r = &report.rounds[round - 1];
        assert_eq!(r.weights_remaining, ticket.mask.density());
        assert_eq!(r.target_ticket.round, round);
    }
}
