//! Pruning at initialisation (PaI): score every prunable weight before training, keep the
//! highest scores.
//!
//! - **SNIP** (Lee et al. 2019): |∂L/∂θ ⊙ θ| on a class-balanced batch.
//! - **GraSP** (Wang et al. 2020): S = −θ ⊙ Hg on logits divided by a temperature T (200 in
//!   the reference code); the paper removes the weights of *largest* S, so the score we keep
//!   by is θ ⊙ Hg. Hg is exact: [`crate::methods::pai::hvp`] freezes the ReLU gates and max-pool argmaxes.
//! - **ProsPr** (Alizadeh et al. 2022): |θ0 ⊙ ∂L(θ_K)/∂θ0|, the meta-gradient of the loss after
//!   K SGD steps with respect to a mask on the weights, reversed through the steps with the
//!   same exact Hessian-vector products.
//! - **SynFlow** (Tanaka et al. 2020): data-free. θ → |θ|, input all ones, R = Σ outputs,
//!   score |∂R/∂θ ⊙ θ|; applied iteratively on an exponential density schedule.
//! - **Magnitude** |θ| and **Random** (seeded uniform scores).
//!
//! Any score can be applied in one shot or iteratively (`iterations` > 1): step k prunes to
//! density `target^(k/n)`, rescoring the masked network each time.

use burn::module::{ModuleMapper, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::base::data::{CLASSES, IMAGE_SIZE, Split};
pub mod hvp;

use crate::base::data::DatasetKind;
use crate::base::error::ConfigError;
use crate::base::keys::PaiKeys;
use crate::base::mask::{Mask, apply_mask};
use crate::base::model::Classifier;
use crate::base::model::Net;
use crate::base::params::{HostTensor, Weights, map_param_value, read_weights};
use crate::base::rng::Rng;
use crate::methods::pai::hvp::{
    HvpError, LossBatch, combine, gradient_and_gates, gradients, hessian_vector, shifted,
};
use crate::pruning::prune::{PruneScope, magnitudes, to_density};
use crate::training::experiment::{Data, Experiment, Session};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    Snip,
    Grasp,
    Synflow,
    Prospr,
    Magnitude,
    Random,
}

impl Score {
    pub const ALL: [Score; 6] = [
        Score::Snip,
        Score::Grasp,
        Score::Synflow,
        Score::Prospr,
        Score::Magnitude,
        Score::Random,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Score::Snip => "snip",
            Score::Grasp => "grasp",
            Score::Synflow => "synflow",
            Score::Prospr => "prospr",
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

/// GraSP's temperature in the reference implementations (Wang et al.'s and Synaptic-Flow's).
pub const GRASP_TEMPERATURE: f64 = 200.0;

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
    /// GraSP divides the logits by this temperature (1 = none).
    #[serde(default = "default_temperature")]
    pub temperature: f64,
    /// Central-difference step of the exact Hessian-vector products: θ moves this far in norm.
    #[serde(default = "default_hvp_step")]
    pub hvp_step: f64,
    /// ProsPr's inner SGD: steps, learning rate, and images per (random) batch.
    #[serde(default = "default_prospr_steps")]
    pub prospr_steps: usize,
    #[serde(default = "default_prospr_learning_rate")]
    pub prospr_learning_rate: f64,
    #[serde(default = "default_prospr_batch")]
    pub prospr_batch: usize,
    /// Seed of the random score and of the data sample.
    pub seed: u64,
}

fn default_temperature() -> f64 {
    GRASP_TEMPERATURE
}
fn default_hvp_step() -> f64 {
    1e-2
}
fn default_prospr_steps() -> usize {
    3
}
fn default_prospr_learning_rate() -> f64 {
    0.1
}
fn default_prospr_batch() -> usize {
    128
}

impl PaiConfig {
    pub fn new(score: Score, compression: f64) -> Self {
        Self {
            score,
            compression,
            scope: PruneScope::Global,
            iterations: score.default_iterations(),
            samples_per_class: 10,
            temperature: default_temperature(),
            hvp_step: default_hvp_step(),
            prospr_steps: default_prospr_steps(),
            prospr_learning_rate: default_prospr_learning_rate(),
            prospr_batch: default_prospr_batch(),
            seed: 0,
        }
    }

    pub fn density(&self) -> f64 {
        10f64.powf(-self.compression)
    }

    /// The temperature the score divides logits by, if it uses one (GraSP only).
    pub fn temperature_used(&self) -> Option<f64> {
        (self.score == Score::Grasp).then_some(self.temperature)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if !(self.compression.is_finite() && self.compression >= 0.0) {
            return bad(format!("compression must be ≥ 0, got {}", self.compression));
        }
        if self.iterations == 0 {
            return bad("scoring iterations must be at least 1".into());
        }
        if self.samples_per_class == 0 || self.prospr_batch == 0 {
            return bad("samples_per_class and prospr_batch must be at least 1".into());
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return bad(format!(
                "temperature must be positive, got {}",
                self.temperature
            ));
        }
        if !(self.hvp_step.is_finite() && self.hvp_step > 0.0) {
            return bad(format!("hvp_step must be positive, got {}", self.hvp_step));
        }
        if !(self.prospr_learning_rate.is_finite() && self.prospr_learning_rate > 0.0) {
            return bad(format!(
                "prospr_learning_rate must be positive, got {}",
                self.prospr_learning_rate
            ));
        }
        Ok(())
    }
}

/// Why pruning at initialisation failed.
#[derive(Debug, thiserror::Error)]
pub enum PaiError {
    #[error("invalid PaI config: {0}")]
    Config(#[from] crate::base::error::ConfigError),
    #[error(transparent)]
    Device(#[from] crate::base::error::DeviceError),
    #[error("scoring: {0}")]
    Scoring(#[from] HvpError),
    #[error(transparent)]
    Train(#[from] crate::training::train::TrainError),
    #[error("records: {0}")]
    Store(#[from] crate::base::store::StoreError),
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

/// The class-balanced sample of a data-dependent score, uploaded with its temperature.
fn sample_batch(
    split: &Split,
    config: &PaiConfig,
    temperature: f64,
    device: &Device,
) -> (Vec<usize>, LossBatch) {
    let sample = balanced_sample(split, config.samples_per_class, config.seed);
    let batch = LossBatch::new(split, &sample, temperature, device);
    (sample, batch)
}

/// GraSP's Hessian-gradient product Hg of the sample loss (gates frozen, see [`crate::methods::pai::hvp`]),
/// with the gradient g it multiplies. Only surviving weights move in θ ± εg, so the pruned ones
/// stay 0 (iterative GraSP).
pub async fn hessian_gradient<M: Classifier>(
    model: &M,
    mask: &Mask,
    batch: &LossBatch,
    step: f64,
) -> Result<(Weights, Weights), HvpError> {
    let (g, gates) = gradient_and_gates(model, batch, mask).await?;
    let g = crate::base::mask::masked_weights(&g, mask);
    let hg = hessian_vector(model, batch, &gates, &g, mask, step).await?;
    Ok((g, hg))
}

/// ProsPr's meta-gradient: the gradient of the loss after `steps` SGD steps (learning rate
/// `learning_rate`, every parameter trained, each step on its own batch, the meta loss on one
/// more) with respect to a multiplicative mask c = 1 on the prunable weights, i.e.
/// θ0 ⊙ ∂L(θ_K)/∂θ0. Reverse mode through the steps: v_K = ∇L_K(θ_K), then
/// v_k = v_{k+1} − α H_k(θ_k) v_{k+1}, each H·v exact with the gates of θ_k frozen. Pruned
/// weights stay 0: their gradients and products are projected out.
pub async fn prospr_meta_gradient<M: Classifier>(
    model: &M,
    mask: &Mask,
    batches: &[LossBatch],
    learning_rate: f64,
    step: f64,
) -> Result<Weights, HvpError> {
    let Some((meta, inner)) = batches.split_last() else {
        return Ok(Weights::new());
    };
    // Every float parameter moves in the inner steps (biases too, as in the reference).
    let everything = Mask::dense_over(&crate::base::params::param_infos(model));
    let project = |w: Weights| crate::base::mask::masked_weights(&w, mask);
    let mut path = Vec::with_capacity(inner.len());
    let mut theta = model.clone();
    for batch in inner {
        let (g, gates) = gradient_and_gates(&theta, batch, &everything).await?;
        let next = shifted(&theta, &project(g), -(learning_rate as f32));
        path.push((theta, gates));
        theta = next;
    }
    let (mut v, _) = gradient_and_gates(&theta, meta, &everything).await?;
    v = project(v);
    for ((theta_k, gates), batch) in path.iter().zip(inner).rev() {
        let hv = project(hessian_vector(theta_k, batch, gates, &v, &everything, step).await?);
        v = combine(&v, &hv, |v, hv| v - learning_rate as f32 * hv);
    }
    let theta0 = read_weights(model).await?;
    Ok(mask
        .layers
        .iter()
        .map(|layer| {
            let values = v[&layer.name]
                .values
                .iter()
                .zip(&theta0[&layer.name].values)
                .map(|(&v, &w)| v * w)
                .collect();
            (
                layer.name.clone(),
                HostTensor {
                    shape: layer.shape.clone(),
                    values,
                },
            )
        })
        .collect())
}

struct AbsMapper;
impl ModuleMapper for AbsMapper {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        map_param_value(param, |t| t.abs())
    }
}

/// The scores of one pass and the training images they saw (indices into the split).
#[derive(Debug, Clone)]
pub struct Scored {
    pub scores: Weights,
    pub images: Vec<usize>,
}

/// One scoring pass of `score` on `model` (already masked), for the parameters of `mask`.
pub async fn score_once<M: Classifier>(
    model: &M,
    mask: &Mask,
    config: &PaiConfig,
    split: &Split,
    device: &Device,
) -> Result<Scored, HvpError> {
    let theta = read_weights(model).await?;
    let kept_by = |a: &Weights, f: fn(f32, f32) -> f32| {
        let theta = &theta;
        combine(a, theta, f)
    };
    let scored = |scores: Weights, images: Vec<usize>| Scored { scores, images };
    Ok(match config.score {
        Score::Magnitude => scored(magnitudes(&theta), Vec::new()),
        Score::Random => {
            let mut rng = Rng::for_purpose(config.seed, "pai-random");
            let scores = mask
                .layers
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
                .collect();
            scored(scores, Vec::new())
        }
        Score::Snip => {
            let (sample, batch) = sample_batch(split, config, 1.0, device);
            let (g, _) = gradient_and_gates(model, &batch, mask).await?;
            scored(kept_by(&g, |g, w| (g * w).abs()), sample)
        }
        Score::Grasp => {
            let (sample, batch) = sample_batch(split, config, config.temperature, device);
            let (_, hg) = hessian_gradient(model, mask, &batch, config.hvp_step).await?;
            scored(kept_by(&hg, |hg, w| hg * w), sample)
        }
        Score::Prospr => {
            let mut rng = Rng::for_purpose(config.seed, "pai-prospr-batches");
            let mut images = Vec::new();
            let batches: Vec<LossBatch> = (0..=config.prospr_steps)
                .map(|_| {
                    // Without replacement, as a data loader draws a batch.
                    let mut batch = rng.permutation(split.len());
                    batch.truncate(config.prospr_batch.min(split.len()));
                    images.extend_from_slice(&batch);
                    LossBatch::new(split, &batch, 1.0, device)
                })
                .collect();
            let meta = prospr_meta_gradient(
                model,
                mask,
                &batches,
                config.prospr_learning_rate,
                config.hvp_step,
            )
            .await?;
            scored(combine(&meta, &meta, |m, _| m.abs()), images)
        }
        Score::Synflow => {
            let linear = model.clone().map(&mut AbsMapper);
            let ones = Tensor::<2>::ones([1, IMAGE_SIZE], device);
            let r = linear.forward(ones).sum();
            let g = gradients(&linear, r, mask).await?;
            let scores = combine(&g, &magnitudes(&theta), |g, w| (g * w).abs());
            scored(scores, Vec::new())
        }
    })
}

/// A mask pruned at initialisation and the training images its scores saw (sorted, unique).
#[derive(Debug, Clone)]
pub struct PrunedAtInit {
    pub mask: Mask,
    pub images: Vec<usize>,
}

/// Prunes `model` (at initialisation, on an autodiff device) to the configured density.
pub async fn prune_at_init<M: Classifier>(
    model: &M,
    config: &PaiConfig,
    split: &Split,
    device: &Device,
) -> Result<PrunedAtInit, PaiError> {
    config.validate()?;
    let target = config.density();
    let mut mask = Mask::dense_for(model);
    let mut images = Vec::new();
    for k in 1..=config.iterations {
        let density = target.powf(k as f64 / config.iterations as f64);
        let masked = apply_mask(model.clone(), &mask.to_device(device));
        let scored = score_once(&masked, &mask, config, split, device).await?;
        images.extend(scored.images);
        mask = to_density(&mask, &scored.scores, density, config.scope);
    }
    images.sort_unstable();
    images.dedup();
    Ok(PrunedAtInit { mask, images })
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
    pub model: crate::base::model::ModelKind,
    pub dataset: crate::base::data::DatasetKind,
    pub pai: PaiConfig,
    pub train: crate::training::train::TrainConfig,
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
            model: crate::base::model::ModelKind::Lenet300,
            dataset: crate::base::data::DatasetKind::Mnist,
            pai: PaiConfig::new(Score::Magnitude, 0.0),
            train: crate::training::train::TrainConfig::new(),
            seed: 0,
            train_subset: None,
            eval_subset: None,
        }
    }
}

impl PaiExperiment {
    pub fn run_name(&self) -> String {
        crate::base::naming::run_name("pai", self, &PaiExperiment::default())
    }
}

/// What `lth pai` reports, per experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaiResult {
    pub score: String,
    pub compression: f64,
    /// Fraction of prunable weights remaining (10^−compression up to rounding).
    pub weights_remaining: f64,
    /// The temperature the score divided logits by (GraSP), if any.
    #[serde(default)]
    pub temperature: Option<f64>,
    /// The training images (indices into the training split, after the 5K validation
    /// hold-out and `train_subset`) a data-dependent score saw; empty for data-free scores.
    #[serde(default)]
    pub images_seen: Vec<usize>,
    pub collapse: Collapse,
    pub layers: Vec<crate::training::result::LayerReport>,
    /// The pruned network's training; `None` when the mask collapsed the network.
    pub training: Option<crate::training::result::RoundResult>,
}

impl PaiResult {
    /// Test accuracy at early stop; chance (10%) for a collapsed network.
    pub fn test_accuracy(&self) -> f64 {
        self.training.as_ref().map_or(0.1, |t| t.test_accuracy)
    }

    /// The result as round `round` of an IMP-shaped report (so IMP's charts and tables show
    /// a sweep over densities): the training's result, or for a collapsed network chance
    /// level (10% accuracy, the uniform prediction's loss ln 10) with no curve.
    pub fn as_round(&self, round: usize) -> crate::training::result::RoundResult {
        let mut result =
            self.training
                .clone()
                .unwrap_or_else(|| crate::training::result::RoundResult {
                    round,
                    weights_remaining: self.weights_remaining,
                    early_stop_iteration: 0,
                    test_accuracy: 0.1,
                    validation_accuracy: 0.1,
                    validation_loss: std::f64::consts::LN_10,
                    final_test_accuracy: 0.1,
                    layers: Vec::new(),
                    curve: Vec::new(),
                    time: Default::default(),
                    wall_seconds: 0.0,
                });
        result.round = round;
        result.weights_remaining = self.weights_remaining;
        result.layers = self.layers.clone();
        result
    }
}

/// Runs (or reads back from `store`) one PaI experiment.
pub async fn run_pai<M: crate::base::model::Architecture>(
    experiment: &PaiExperiment,
    data: &crate::training::train::Prepared,
    session: &mut Session<'_>,
) -> Result<PaiResult, PaiError> {
    let backend = session.backend.as_str();
    let (device, store, observer) = (&session.device, &mut *session.store, &mut *session.observer);
    experiment.pai.validate()?;
    experiment.train.validate()?;
    crate::base::error::ConfigError::check_subsets(
        experiment.train_subset,
        experiment.eval_subset,
    )?;
    let keys = PaiKeys {
        run: experiment.run_name(),
    };
    crate::base::store::claim_backend(store, &keys.run, backend)?;
    if let Some(done) = crate::base::store::read_json::<PaiResult>(store, &keys.result()) {
        return Ok(done?);
    }
    crate::base::store::write_json(store, &keys.config(), experiment)?;
    let device = device.clone().autodiff();
    let model: M = crate::base::model::init_model(experiment.model, experiment.seed, &device);
    let pruned = prune_at_init(&model, &experiment.pai, &data.train, &device).await?;
    let mask = pruned.mask;
    let ticket = crate::base::ticket::Ticket {
        mask: mask.clone(),
        weights: crate::base::mask::masked_weights(&read_weights(&model).await?, &mask),
        provenance: crate::base::ticket::Provenance {
            model: experiment.model.name().into(),
            dataset: experiment.dataset.name().into(),
            round: 0,
            rewind: "init".into(),
            seed: experiment.seed,
            run: keys.run.clone(),
            weights_remaining: mask.density(),
            stream: String::new(),
        },
    };
    store.write(&keys.ticket(), &ticket.to_safetensors())?;
    let collapse = detect_collapse(&mask);
    let training = if collapse.collapsed() {
        None
    } else {
        let started = web_time::Instant::now();
        let train = experiment.train.for_replicate(experiment.seed);
        let outcome =
            crate::training::train::train(model, Some(&mask), data, &train, None, observer).await?;
        let trained = read_weights(&outcome.model).await?;
        observer.on_trained(0, &mask, &trained);
        Some(crate::training::result::RoundResult::from_training(
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
        temperature: experiment.pai.temperature_used(),
        images_seen: pruned.images,
        collapse,
        layers: crate::training::result::layer_report(&mask),
        training,
    };
    crate::base::store::write_json(store, &keys.result(), &result)?;
    Ok(result)
}

/// Test accuracy vs compression, one line per score (collapsed masks at chance, 10%).
pub fn sweep_chart(results: &[PaiResult]) -> crate::base::chart::Chart {
    let mut scores: Vec<&str> = Vec::new();
    for r in results {
        if !scores.contains(&r.score.as_str()) {
            scores.push(&r.score);
        }
    }
    crate::base::chart::Chart {
        title: "Pruning at initialisation: test accuracy at early stop".into(),
        x_label: "compression C (density 10^-C)".into(),
        y_label: "test accuracy (%)".into(),
        log_x: false,
        log_y: false,
        legend_top: true,
        series: scores
            .iter()
            .map(|&score| crate::base::chart::Series {
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

impl Experiment for PaiExperiment {
    const KIND: &'static str = "pai";
    type Report = PaiResult;
    type Error = PaiError;

    fn validate(&self) -> Result<(), ConfigError> {
        self.pai.validate()?;
        self.train.validate()?;
        ConfigError::check_subsets(self.train_subset, self.eval_subset)
    }

    fn run_name(&self) -> String {
        PaiExperiment::run_name(self)
    }

    fn datasets(&self) -> Vec<DatasetKind> {
        vec![self.dataset]
    }

    async fn run(&self, data: &Data<'_>, session: &mut Session<'_>) -> Result<PaiResult, PaiError> {
        let subsets = (self.train_subset, self.eval_subset);
        let prepared = data.prepared(self.dataset, subsets, &session.device)?;
        run_pai::<Net>(self, &prepared, session).await
    }
}
