//! Pruning at initialisation (PaI): score every prunable weight before training, keep the
//! highest scores.
//!
//! - **SNIP** (Lee et al. 2019): |∂L/∂θ ⊙ θ| on a class-balanced batch.
//! - **GraSP** (Wang et al. 2020): S = −θ ⊙ Hg; the paper removes the weights of *largest* S,
//!   so the score we keep by is θ ⊙ Hg. burn has no double-backward: Hg comes from a central
//!   difference of gradients, (g(θ + εg) − g(θ − εg)) / 2ε with ε = `grasp_step` / ‖g‖.
//! - **SynFlow** (Tanaka et al. 2020): data-free. θ → |θ|, input all ones, R = Σ outputs,
//!   score |∂R/∂θ ⊙ θ|; applied iteratively on an exponential density schedule.
//! - **Magnitude** |θ| and **Random** (seeded uniform scores).
//!
//! Any score can be applied in one shot or iteratively (`iterations` > 1): step k prunes to
//! density `target^(k/n)`, rescoring the masked network each time.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{CLASSES, IMAGE_SIZE, Split};
use crate::mask::{Mask, apply_mask};
use crate::model::Classifier;
use crate::params::{HostTensor, PathTracker, Weights, map_param_value, read_weights};
use crate::prune::{PruneScope, magnitudes, to_density};
use crate::rng::Rng;
use crate::train::{batch_tensors, cross_entropy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    Snip,
    Grasp,
    Synflow,
    Magnitude,
    Random,
}

impl Score {
    pub const ALL: [Score; 5] = [
        Score::Snip,
        Score::Grasp,
        Score::Synflow,
        Score::Magnitude,
        Score::Random,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Score::Snip => "snip",
            Score::Grasp => "grasp",
            Score::Synflow => "synflow",
            Score::Magnitude => "mag",
            Score::Random => "rand",
        }
    }

    pub fn parse(name: &str) -> Option<Score> {
        match name {
            "magnitude" => Some(Score::Magnitude),
            "random" => Some(Score::Random),
            _ => Self::ALL.into_iter().find(|s| s.name() == name),
        }
    }

    /// SynFlow is iterative by design (100 rounds); the others default to one shot.
    pub fn default_iterations(self) -> usize {
        if self == Score::Synflow { 100 } else { 1 }
    }
}

/// How to prune at initialisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaiConfig {
    pub score: Score,
    /// Target density = 10^(−compression).
    pub compression: f64,
    pub scope: PruneScope,
    /// Scoring iterations on the exponential schedule (1 = one shot).
    pub iterations: usize,
    /// SNIP/GraSP batch: this many training images of each class.
    pub samples_per_class: usize,
    /// GraSP finite-difference step, relative to ‖g‖.
    pub grasp_step: f64,
    /// Seed of the random score and of the data sample.
    pub seed: u64,
}

impl PaiConfig {
    pub fn new(score: Score, compression: f64) -> Self {
        Self {
            score,
            compression,
            scope: PruneScope::Global,
            iterations: score.default_iterations(),
            samples_per_class: 10,
            grasp_step: 1e-2,
            seed: 0,
        }
    }

    pub fn density(&self) -> f64 {
        10f64.powf(-self.compression)
    }

    pub fn validate(&self) -> Result<(), String> {
        if !(self.compression.is_finite() && self.compression >= 0.0) {
            return Err(format!("compression must be ≥ 0, got {}", self.compression));
        }
        if self.iterations == 0 {
            return Err("scoring iterations must be at least 1".into());
        }
        if self.samples_per_class == 0 {
            return Err("samples_per_class must be at least 1".into());
        }
        Ok(())
    }
}

/// A class-balanced sample: the first `per_class` images of each class in a seeded order.
pub fn balanced_sample(split: &Split, per_class: usize, seed: u64) -> Vec<usize> {
    let order = Rng::for_purpose(seed, "pai-sample").permutation(split.len());
    let mut taken = [0usize; CLASSES];
    let mut out = Vec::with_capacity(per_class * CLASSES);
    for i in order {
        let class = split.labels[i] as usize;
        if taken[class] < per_class {
            taken[class] += 1;
            out.push(i);
        }
    }
    out
}

struct GradReader<'a> {
    tracker: PathTracker,
    grads: &'a GradientsParams,
    masked: &'a Mask,
    out: Vec<(String, Tensor<1>)>,
}

impl ModuleVisitor for GradReader<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let path = self.tracker.path();
        if self.masked.layer(&path).is_none() {
            return;
        }
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let n: usize = grad.dims().iter().product();
            self.out.push((path, grad.reshape([n])));
        }
    }
}

/// Gradients of `loss` for the parameters covered by `mask`, on the host.
async fn gradients<M: Module>(model: &M, loss: Tensor<1>, mask: &Mask) -> Weights {
    let grads = GradientsParams::from_grads(loss.backward(), model);
    let mut reader = GradReader {
        tracker: PathTracker::default(),
        grads: &grads,
        masked: mask,
        out: Vec::new(),
    };
    model.visit(&mut reader);
    let mut out = Weights::new();
    for (path, tensor) in reader.out {
        let values = tensor
            .into_data_async()
            .await
            .expect("reading gradients")
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("float gradients");
        let shape = mask.layer(&path).expect("masked").shape.clone();
        out.insert(path, HostTensor { shape, values });
    }
    out
}

/// Elementwise product of two maps over the masked parameters.
fn product(a: &Weights, b: &Weights, mask: &Mask, f: impl Fn(f32, f32) -> f32) -> Weights {
    mask.layers
        .iter()
        .map(|layer| {
            let (x, y) = (&a[&layer.name], &b[&layer.name]);
            let values = x
                .values
                .iter()
                .zip(&y.values)
                .map(|(&p, &q)| f(p, q))
                .collect();
            (
                layer.name.clone(),
                HostTensor {
                    shape: layer.shape.clone(),
                    values,
                },
            )
        })
        .collect()
}

/// Mean cross-entropy of `model` on the sample (model on an autodiff device).
fn sample_loss<M: Classifier>(
    model: &M,
    split: &Split,
    sample: &[usize],
    device: &Device,
) -> Tensor<1> {
    let (images, labels) = batch_tensors(split, sample, device);
    cross_entropy(model.forward(images), labels)
}

struct AddScaled<'a> {
    tracker: PathTracker,
    direction: &'a Weights,
    scale: f32,
}

impl ModuleMapper for AddScaled<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(step) = self.direction.get(&self.tracker.path()) else {
            return param;
        };
        let scale = self.scale;
        map_param_value(param, |t| {
            let dims = t.dims();
            let delta = Tensor::<1>::from_data(
                TensorData::new(step.values.clone(), [step.len()]),
                &t.device(),
            );
            t + delta.reshape(dims).mul_scalar(scale)
        })
    }
}

/// θ + scale · direction, for the parameters in `direction`.
fn shifted<M: Module>(model: &M, direction: &Weights, scale: f32) -> M {
    model.clone().map(&mut AddScaled {
        tracker: PathTracker::default(),
        direction,
        scale,
    })
}

/// The Hessian-gradient product Hg of the sample loss, by a central difference of gradients.
pub async fn hessian_gradient<M: Classifier>(
    model: &M,
    mask: &Mask,
    split: &Split,
    sample: &[usize],
    step: f64,
    device: &Device,
) -> (Weights, Weights) {
    // Only surviving weights move: pruned ones stay 0 in θ ± εg (iterative GraSP).
    let g = crate::imp::masked_weights(
        &gradients(model, sample_loss(model, split, sample, device), mask).await,
        mask,
    );
    let norm = g
        .values()
        .flat_map(|t| &t.values)
        .map(|&v| f64::from(v).powi(2))
        .sum::<f64>()
        .sqrt();
    let epsilon = (step / norm.max(1e-12)) as f32;
    let plus = shifted(model, &g, epsilon);
    let minus = shifted(model, &g, -epsilon);
    let g_plus = gradients(&plus, sample_loss(&plus, split, sample, device), mask).await;
    let g_minus = gradients(&minus, sample_loss(&minus, split, sample, device), mask).await;
    let hg = product(&g_plus, &g_minus, mask, |p, m| (p - m) / (2.0 * epsilon));
    (g, hg)
}

struct AbsMapper;
impl ModuleMapper for AbsMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        map_param_value(param, |t| t.abs())
    }
}

/// One scoring pass of `score` on `model` (already masked), for the parameters of `mask`.
pub async fn score_once<M: Classifier>(
    model: &M,
    mask: &Mask,
    config: &PaiConfig,
    split: &Split,
    device: &Device,
) -> Weights {
    let theta = read_weights(model).await;
    match config.score {
        Score::Magnitude => magnitudes(&theta),
        Score::Random => {
            let mut rng = Rng::for_purpose(config.seed, "pai-random");
            mask.layers
                .iter()
                .map(|l| {
                    let values = (0..l.total()).map(|_| rng.uniform() as f32).collect();
                    (
                        l.name.clone(),
                        HostTensor {
                            shape: l.shape.clone(),
                            values,
                        },
                    )
                })
                .collect()
        }
        Score::Snip => {
            let sample = balanced_sample(split, config.samples_per_class, config.seed);
            let g = gradients(model, sample_loss(model, split, &sample, device), mask).await;
            product(&g, &theta, mask, |g, w| (g * w).abs())
        }
        Score::Grasp => {
            let sample = balanced_sample(split, config.samples_per_class, config.seed);
            let (_, hg) =
                hessian_gradient(model, mask, split, &sample, config.grasp_step, device).await;
            product(&hg, &theta, mask, |hg, w| hg * w)
        }
        Score::Synflow => {
            let linear = model.clone().map(&mut AbsMapper);
            let ones = Tensor::<2>::ones([1, IMAGE_SIZE], device);
            let r = linear.forward(ones).sum();
            let g = gradients(&linear, r, mask).await;
            product(&g, &magnitudes(&theta), mask, |g, w| (g * w).abs())
        }
    }
}

/// Prunes `model` (at initialisation, on an autodiff device) to the configured density.
pub async fn prune_at_init<M: Classifier>(
    model: &M,
    config: &PaiConfig,
    split: &Split,
    device: &Device,
) -> Result<Mask, String> {
    config.validate()?;
    let target = config.density();
    let mut mask = Mask::dense_for(model);
    for k in 1..=config.iterations {
        let density = target.powf(k as f64 / config.iterations as f64);
        let masked = apply_mask(model.clone(), &mask.to_device(device));
        let scores = score_once(&masked, &mask, config, split, device).await;
        mask = to_density(&mask, &scores, density, config.scope);
    }
    Ok(mask)
}

/// How a mask disconnects a network, checked before training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collapse {
    /// Layers left with no weight at all.
    pub empty_layers: Vec<String>,
    /// Whether some output unit is still reachable from the input.
    pub connected: bool,
    /// Output units reachable from the input.
    pub reachable_outputs: usize,
}

impl Collapse {
    pub fn collapsed(&self) -> bool {
        !self.empty_layers.is_empty() || !self.connected
    }
}

/// Layer collapse for a feed-forward stack of masked layers, in order: a Linear weight is
/// `[in, out]`, a conv weight `[out, in, k…]`; from conv to linear, input unit f belongs to
/// channel `f / (features / channels)`. Reachability is traced from every input unit.
pub fn detect_collapse(mask: &Mask) -> Collapse {
    let empty_layers = mask
        .layers
        .iter()
        .filter(|l| l.remaining() == 0)
        .map(|l| l.name.clone())
        .collect();
    let mut reachable: Option<Vec<bool>> = None;
    for layer in &mask.layers {
        let (inputs, outputs) = match layer.shape.as_slice() {
            [i, o] => (*i, *o),
            [o, i, ..] => (*i, *o),
            _ => continue,
        };
        let incoming: Vec<bool> = match reachable.take() {
            None => vec![true; inputs],
            Some(previous) if previous.len() == inputs => previous,
            Some(previous) => {
                let per = inputs / previous.len().max(1);
                (0..inputs)
                    .map(|f| previous.get(f / per.max(1)).copied().unwrap_or(false))
                    .collect()
            }
        };
        let mut next = vec![false; outputs];
        match layer.shape.as_slice() {
            [_, _] => {
                for i in (0..inputs).filter(|&i| incoming[i]) {
                    for (o, reached) in next.iter_mut().enumerate() {
                        *reached |= layer.keep[i * outputs + o];
                    }
                }
            }
            _ => {
                let kernel: usize = layer.shape[2..].iter().product();
                for (o, reached) in next.iter_mut().enumerate() {
                    *reached = (0..inputs).any(|i| {
                        incoming[i]
                            && layer.keep[(o * inputs + i) * kernel..(o * inputs + i + 1) * kernel]
                                .iter()
                                .any(|&k| k)
                    });
                }
            }
        }
        reachable = Some(next);
    }
    let reachable_outputs = reachable
        .map(|r| r.iter().filter(|&&x| x).count())
        .unwrap_or(0);
    Collapse {
        empty_layers,
        connected: reachable_outputs > 0,
        reachable_outputs,
    }
}

/// A pruning-at-initialisation experiment: score, prune, check collapse, train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaiExperiment {
    pub model: crate::model::ModelKind,
    pub dataset: crate::data::DatasetKind,
    pub pai: PaiConfig,
    pub train: crate::train::TrainConfig,
    /// Seed of θ0.
    pub seed: u64,
    /// Use only the first N training examples (None = all).
    pub train_subset: Option<usize>,
    /// Evaluate on only the first N validation and test examples (None = all).
    pub eval_subset: Option<usize>,
}

/// The reference point of run names: LeNet-300-100 on MNIST, dense, the LTH training.
impl Default for PaiExperiment {
    fn default() -> Self {
        PaiExperiment {
            model: crate::model::ModelKind::Lenet300,
            dataset: crate::data::DatasetKind::Mnist,
            pai: PaiConfig::new(Score::Magnitude, 0.0),
            train: crate::train::TrainConfig::new(),
            seed: 0,
            train_subset: None,
            eval_subset: None,
        }
    }
}

impl PaiExperiment {
    pub fn run_name(&self) -> String {
        crate::record::run_name("pai", self, &PaiExperiment::default())
    }
}

/// What `lth pai` reports, per experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaiResult {
    pub score: String,
    pub compression: f64,
    /// Fraction of prunable weights remaining (10^−compression up to rounding).
    pub weights_remaining: f64,
    pub collapse: Collapse,
    pub layers: Vec<crate::record::LayerReport>,
    /// The pruned network's training; `None` when the mask collapsed the network.
    pub training: Option<crate::record::RoundResult>,
}

impl PaiResult {
    /// Test accuracy at early stop; chance (10%) for a collapsed network.
    pub fn test_accuracy(&self) -> f64 {
        self.training.as_ref().map_or(0.1, |t| t.test_accuracy)
    }
}

/// Runs (or reads back from `store`) one PaI experiment.
pub async fn run_pai<M: crate::model::Architecture>(
    experiment: &PaiExperiment,
    data: &crate::train::Prepared,
    device: &Device,
    store: &mut dyn crate::store::RunStore,
    observer: &mut dyn crate::imp::ImpObserver,
) -> Result<PaiResult, String> {
    experiment.pai.validate()?;
    experiment.train.validate()?;
    if experiment.train_subset == Some(0) || experiment.eval_subset == Some(0) {
        return Err("train_subset and eval_subset must be at least 1".into());
    }
    let key = format!("{}/result.json", experiment.run_name());
    if let Some(done) = crate::store::read_json::<PaiResult>(store, &key) {
        return done;
    }
    crate::store::write_json(
        store,
        &format!("{}/config.json", experiment.run_name()),
        experiment,
    )?;
    let device = device.clone().autodiff();
    let model: M = crate::model::init_model(experiment.model, experiment.seed, &device);
    let mask = prune_at_init(&model, &experiment.pai, &data.train, &device).await?;
    let collapse = detect_collapse(&mask);
    let training = if collapse.collapsed() {
        None
    } else {
        let started = web_time::Instant::now();
        let outcome =
            crate::train::train(model, Some(&mask), data, &experiment.train, None, observer)
                .await
                .map_err(|e| e.to_string())?;
        let trained = crate::params::read_weights(&outcome.model).await;
        observer.on_trained(0, &mask, &trained);
        Some(crate::record::RoundResult::from_training(
            0,
            &mask,
            &outcome,
            started.elapsed().as_secs_f64(),
        ))
    };
    let result = PaiResult {
        score: experiment.pai.score.name().into(),
        compression: experiment.pai.compression,
        weights_remaining: mask.density(),
        collapse,
        layers: crate::record::layer_report(&mask),
        training,
    };
    crate::store::write_json(store, &key, &result)?;
    Ok(result)
}

/// Test accuracy vs compression, one line per score (collapsed masks at chance, 10%).
pub fn sweep_chart(results: &[PaiResult]) -> crate::plot::Chart {
    let mut scores: Vec<&str> = Vec::new();
    for r in results {
        if !scores.contains(&r.score.as_str()) {
            scores.push(&r.score);
        }
    }
    crate::plot::Chart {
        title: "Pruning at initialisation: test accuracy at early stop".into(),
        x_label: "compression C (density 10^-C)".into(),
        y_label: "test accuracy (%)".into(),
        log_x: false,
        legend_top: true,
        series: scores
            .iter()
            .map(|&score| crate::plot::Series {
                label: score.to_string(),
                points: results
                    .iter()
                    .filter(|r| r.score == score)
                    .map(|r| {
                        let y = 100.0 * r.test_accuracy();
                        (r.compression, y, y, y)
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// Markdown: per score and compression, accuracy, collapse, and each layer's density.
pub fn sweep_table(results: &[PaiResult]) -> String {
    let Some(first) = results.first() else {
        return String::new();
    };
    let mut out = String::from("| score | C | % remaining | test acc % | collapsed |");
    for l in &first.layers {
        out += &format!(" {} % |", l.name);
    }
    out += "\n|---|---:|---:|---:|---|";
    out += &"---:|".repeat(first.layers.len());
    out += "\n";
    for r in results {
        out += &format!(
            "| {} | {:.2} | {:.3} | {} | {} |",
            r.score,
            r.compression,
            100.0 * r.weights_remaining,
            r.training
                .as_ref()
                .map_or("(chance)".to_string(), |t| format!(
                    "{:.2}",
                    100.0 * t.test_accuracy
                )),
            if r.collapse.collapsed() { "yes" } else { "no" }
        );
        for l in &r.layers {
            out += &format!(" {:.3} |", 100.0 * l.remaining);
        }
        out += "\n";
    }
    out
}
