//! Pruning-at-initialisation invariants: SynFlow conservation, SNIP and GraSP against exact
//! values on a tiny net, exact densities, and layer-collapse detection.

mod common;

use lab_core::base::backend::BackendKind;
use lab_core::base::data::Split;
use lab_core::base::mask::{LayerMask, Mask};
use lab_core::base::model::{Classifier, Gates, ModelKind, Net, glorot_normal, init_model};
use lab_core::base::params::read_weights;
use lab_core::block_on;
use lab_core::burn::module::Module;
use lab_core::burn::nn::{Linear, LinearConfig};
use lab_core::burn::tensor::{Device, Tensor};
use lab_core::methods::pai::hvp::LossBatch;
use lab_core::methods::pai::{
    PaiConfig, Score, balanced_sample, detect_collapse, hessian_gradient, prune_at_init, score_once,
};
use lab_core::pruning::prune::PruneScope;
use lab_core::training::experiment::Session;
use lab_core::training::train::batch_tensors;

fn device() -> Device {
    BackendKind::Ndarray.device().unwrap().autodiff()
}

/// A bias-free ReLU MLP defined here, to show the scores work on any burn module.
#[derive(Module, Debug)]
struct BiasFree {
    layers: Vec<Linear>,
}

impl BiasFree {
    fn new(widths: &[usize], device: &Device) -> Self {
        let layers = widths
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).with_bias(false).init(device))
            .collect();
        glorot_normal(Self { layers }, 3)
    }
}

impl Classifier for BiasFree {
    fn forward_gated(&self, images: Tensor<2>, gates: &mut Gates) -> Tensor<2> {
        let last = self.layers.len() - 1;
        self.layers.iter().enumerate().fold(images, |x, (i, l)| {
            let y = l.forward(x);
            if i < last { gates.relu(y) } else { y }
        })
    }
}

#[test]
fn synflow_scores_are_conserved_across_layers() {
    let device = device();
    let model = BiasFree::new(&[784, 300, 100, 10], &device);
    let mask = Mask::dense_for(&model);
    let config = PaiConfig::new(Score::Synflow, 1.0);
    // Data-free: an empty training split.
    let no_data = Split::default();
    let scores = block_on(score_once(&model, &mask, &config, &no_data, &device))
        .unwrap()
        .scores;
    let sums: Vec<f64> = mask
        .layers
        .iter()
        .map(|l| scores[&l.name].values.iter().map(|&v| f64::from(v)).sum())
        .collect();
    for s in &sums {
        assert!(
            (s / sums[0] - 1.0).abs() < 1e-3,
            "per-layer SynFlow sums differ: {sums:?}"
        );
    }
}

/// Softmax regression 784→10 without bias: gradient and Hessian are known in closed form.
fn tiny() -> (BiasFree, Vec<Vec<f64>>, Vec<usize>, Device) {
    let device = device();
    let model = BiasFree::new(&[784, 10], &device);
    let split = &common::mnist().train;
    let sample = balanced_sample(split, 2, 0);
    let (images, _) = batch_tensors(split, &sample, &device);
    let x: Vec<f32> = images.into_data().convert::<f32>().try_into_vec().unwrap();
    let rows = x
        .chunks(784)
        .map(|r| r.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let labels = sample.iter().map(|&i| split.labels[i] as usize).collect();
    (model, rows, labels, device)
}

fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

#[test]
fn snip_and_grasp_match_closed_forms_on_softmax_regression() {
    let (model, x, y, device) = tiny();
    let w = block_on(read_weights(&model)).unwrap()["layers.0.weight"]
        .values
        .iter()
        .map(|&v| f64::from(v))
        .collect::<Vec<_>>();
    let n = x.len() as f64;
    let probs: Vec<Vec<f64>> = x
        .iter()
        .map(|row| {
            softmax(
                &(0..10)
                    .map(|o| (0..784).map(|i| row[i] * w[i * 10 + o]).sum())
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    // g = Xᵀ(P − Y)/N in W's [in, out] layout.
    let mut g = vec![0.0; 7840];
    for ((row, p), &label) in x.iter().zip(&probs).zip(&y) {
        for o in 0..10 {
            let d = p[o] - f64::from(u8::from(o == label));
            for i in 0..784 {
                g[i * 10 + o] += row[i] * d / n;
            }
        }
    }
    // Hg = Σ x ⊗ (diag(p) − ppᵀ)(gᵀx) / N.
    let mut hg = vec![0.0; 7840];
    for (row, p) in x.iter().zip(&probs) {
        let u: Vec<f64> = (0..10)
            .map(|o| (0..784).map(|i| row[i] * g[i * 10 + o]).sum())
            .collect();
        let pu: f64 = p.iter().zip(&u).map(|(a, b)| a * b).sum();
        for o in 0..10 {
            let s = p[o] * (u[o] - pu);
            for i in 0..784 {
                hg[i * 10 + o] += row[i] * s / n;
            }
        }
    }

    let mask = Mask::dense_for(&model);
    let split = &common::mnist().train;
    let mut snip = PaiConfig::new(Score::Snip, 1.0);
    snip.samples_per_class = 2;
    let scores = block_on(score_once(&model, &mask, &snip, split, &device))
        .unwrap()
        .scores;
    for (k, &s) in scores["layers.0.weight"].values.iter().enumerate() {
        let exact = (g[k] * w[k]).abs();
        assert!(
            (f64::from(s) - exact).abs() <= 1e-4 * exact.max(1e-3),
            "SNIP {k}: {s} vs {exact}"
        );
    }

    let sample = balanced_sample(split, 2, 0);
    let batch = LossBatch::new(split, &sample, 1.0, &device);
    let (_, estimated) = block_on(hessian_gradient(&model, &mask, &batch, 1e-2)).unwrap();
    let est = &estimated["layers.0.weight"].values;
    let err: f64 = est
        .iter()
        .zip(&hg)
        .map(|(&a, b)| (f64::from(a) - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let norm: f64 = hg.iter().map(|b| b * b).sum::<f64>().sqrt();
    // Stated tolerance: 2% relative L2 error of the finite-difference Hg (f32 arithmetic).
    assert!(err / norm < 0.02, "GraSP Hg relative error {}", err / norm);
}

#[test]
fn masks_hit_the_requested_density_exactly() {
    let device = device();
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
    let split = &common::mnist().train;
    for score in [Score::Magnitude, Score::Random, Score::Snip, Score::Grasp] {
        for scope in [PruneScope::Global, PruneScope::PerLayer] {
            let mut config = PaiConfig::new(score, 1.5);
            config.scope = scope;
            let mask = block_on(prune_at_init(&model, &config, split, &device))
                .unwrap()
                .mask;
            let density = config.density();
            match scope {
                PruneScope::Global => {
                    assert_eq!(
                        mask.remaining(),
                        (266_200.0 * density).round() as usize,
                        "{score:?}"
                    )
                }
                PruneScope::PerLayer => {
                    for l in &mask.layers {
                        assert_eq!(l.remaining(), (l.total() as f64 * density).round() as usize);
                    }
                }
            }
        }
    }
    // Iterative SynFlow ends on the same count.
    let mut config = PaiConfig::new(Score::Synflow, 2.0);
    config.iterations = 10;
    let mask = block_on(prune_at_init(&model, &config, split, &device))
        .unwrap()
        .mask;
    assert_eq!(mask.remaining(), (266_200.0 * 0.01f64).round() as usize);
}

#[test]
fn collapse_is_detected_on_a_cut_network_and_not_on_a_healthy_one() {
    let healthy = Mask {
        layers: vec![
            LayerMask::dense("a", &[4, 3]),
            LayerMask::dense("b", &[3, 2]),
        ],
    };
    assert!(!detect_collapse(&healthy).collapsed());

    // Every path is cut: layer a feeds only hidden unit 0, layer b reads only units 1 and 2.
    let mut cut = healthy.clone();
    cut.layers[0].keep = (0..12).map(|k| k % 3 == 0).collect();
    cut.layers[1].keep = vec![false, false, true, true, true, true];
    let c = detect_collapse(&cut);
    assert!(c.collapsed() && !c.connected && c.empty_layers.is_empty());

    let mut empty = healthy.clone();
    empty.layers[1].keep = vec![false; 6];
    assert_eq!(detect_collapse(&empty).empty_layers, vec!["b".to_string()]);

    // Conv → linear: channel 1 is cut off, but channel 0 still reaches the output.
    let mut conv = Mask {
        layers: vec![
            LayerMask::dense("conv", &[2, 1, 3, 3]),
            LayerMask::dense("fc", &[8, 2]),
        ],
    };
    conv.layers[0].keep[9..].iter_mut().for_each(|k| *k = false);
    assert!(!detect_collapse(&conv).collapsed());
    conv.layers[1].keep[..8].iter_mut().for_each(|k| *k = false); // inputs 0-3 (channel 0) cut
    assert!(detect_collapse(&conv).collapsed());
}

#[derive(Default)]
struct CountSteps(usize);
impl lab_core::training::observer::Observer for CountSteps {
    fn on_step(&mut self, _: usize, _: usize) {
        self.0 += 1;
    }
}
impl lab_core::training::observer::RunObserver for CountSteps {}

/// A PaI record keeps its ticket (θ0 ⊙ mask, the mask), the images its score saw and its
/// temperature; a rerun reads the result back without scoring or training again.
#[test]
fn pai_records_keep_the_ticket_and_read_back_without_training() {
    use lab_core::base::keys::PaiKeys;
    use lab_core::base::store::{MemoryStore, RunStore};
    use lab_core::base::ticket::Ticket;
    use lab_core::methods::pai::{PaiExperiment, run_pai};
    use lab_core::training::train::{Prepared, TrainConfig};
    let device = BackendKind::Ndarray.device().unwrap();
    let data = Prepared::new(&common::mnist().subset(2000, 200, 200), &device);
    let experiment = PaiExperiment {
        pai: PaiConfig::new(Score::Grasp, 1.0),
        train: TrainConfig::new().with_iterations(20).with_eval_every(10),
        train_subset: Some(2000),
        eval_subset: Some(200),
        ..PaiExperiment::default()
    };
    let mut store = MemoryStore::default();
    let mut steps = CountSteps::default();
    let run = |store: &mut MemoryStore, steps: &mut CountSteps| {
        block_on(run_pai::<Net>(
            &experiment,
            &data,
            &mut Session::new(device.clone(), "ndarray", store, steps),
        ))
        .unwrap()
    };
    let first = run(&mut store, &mut steps);
    assert_eq!(steps.0, 20);
    assert_eq!(first.temperature, Some(200.0));
    assert_eq!(first.images_seen.len(), 100, "10 images of each class");
    assert_eq!(
        first.images_seen,
        balanced_sample(&data.train, 10, 0)
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let keys = PaiKeys {
        run: experiment.run_name(),
    };
    let ticket = Ticket::from_safetensors(&store.read(&keys.ticket()).unwrap()).unwrap();
    assert!((ticket.mask.density() - 0.1).abs() < 1e-4);
    let theta0 = block_on(read_weights(&init_model::<Net>(
        ModelKind::Lenet300,
        0,
        &device.clone().autodiff(),
    )))
    .unwrap();
    for layer in &ticket.mask.layers {
        for ((&keep, &v), &v0) in layer
            .keep
            .iter()
            .zip(&ticket.weights[&layer.name].values)
            .zip(&theta0[&layer.name].values)
        {
            assert_eq!(v, if keep { v0 } else { 0.0 });
        }
    }

    let mut again = CountSteps::default();
    let second = run(&mut store, &mut again);
    assert_eq!(again.0, 0, "a finished PaI experiment was trained again");
    // Read back from its JSON record (serde_json without `float_roundtrip` may parse an f64
    // one ulp off, so compare with the record's own round trip, not with the fresh value).
    let recorded: lab_core::methods::pai::PaiResult =
        serde_json::from_slice(&store.read(&keys.result()).unwrap()).unwrap();
    assert_eq!(second, recorded);
    assert_eq!(second.images_seen, first.images_seen);
    assert_eq!(second.layers, first.layers);
}
