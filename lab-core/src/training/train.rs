//! The training loop: Adam or momentum SGD, constant or warm-up learning rate, evaluation on
//! validation and test every N iterations, early stopping at minimum validation loss.
//!
//! The loop is `async` and reads metrics back only at evaluation points, through burn's async
//! reads, so the same code drives native runs (blocked on), the browser (awaited between
//! animation frames) and notebooks. Between evaluations nothing syncs the device.

use burn::config::Config;
use burn::optim::GradientsParams;
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor, TensorData};
use web_time::Instant;

use crate::base::data::{IMAGE_SIZE, Mnist, Split};
use crate::base::error::{ConfigError, DeviceError};
use crate::base::mask::{DeviceMask, Mask, apply_mask, mask_gradients};
use crate::base::model::Classifier;
use crate::base::params::{Weights, load_weights, read_gradients, read_weights};
use crate::base::rng::Rng;
use crate::training::checkpoint::{Checkpoint, Checkpointing, Progress};
use crate::training::curve::{EvalPoint, MaskDynamics, TimeSplit};
use crate::training::observer::Observer;
use crate::training::optim::LabOptimizer;
use crate::training::optim::OptimizerKind;
use crate::training::policy::{MaskPolicy, MaskUpdate, UpdateContext, changes, explore};
use crate::training::result::{RoundResult, layer_report};
use crate::training::sparse::{Kernel, SparseTrainError, SparseTrainer};

/// Hyper-parameters of one training run. Defaults are the LTH paper's LeNet-300-100 setup.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    #[config(default = "OptimizerKind::Adam")]
    pub optimizer: OptimizerKind,
    #[config(default = 1.2e-3)]
    pub learning_rate: f64,
    /// Momentum of SGD (ignored by Adam).
    #[config(default = 0.9)]
    pub momentum: f64,
    /// L2 penalty λ: λ·θ is added to every gradient (coupled weight decay, as PyTorch's
    /// `weight_decay`; 0 = none). Pruned weights stay 0.
    #[config(default = 0.0)]
    pub weight_decay: f64,
    /// Linear warm-up of the learning rate over this many iterations (0 = constant).
    #[config(default = 0)]
    pub warmup_iterations: usize,
    #[config(default = 60)]
    pub batch_size: usize,
    #[config(default = 50_000)]
    pub iterations: usize,
    /// Evaluate on validation and test every this many iterations (and at 0 and the end).
    #[config(default = 100)]
    pub eval_every: usize,
    /// Seed of the data order. `None`: the experiment's replicate seed, so replicates vary
    /// their data order as well as θ0 (see [`TrainConfig::for_replicate`]). Either way it is
    /// the same in every IMP round and control of one lineage, as in open_lth.
    #[config(default = "None")]
    pub data_seed: Option<u64>,
    /// How a step computes: masked dense on the backend, on the host through the kept
    /// weights only (`sparse`: linear layers, fixed masks), or `auto` (sparse below
    /// [`BREAK_EVEN_DENSITY`](crate::training::sparse::BREAK_EVEN_DENSITY)). Part of the
    /// run's identity, as the backend is.
    #[config(default = "Kernel::Dense")]
    pub kernel: Kernel,
}

impl TrainConfig {
    /// The data order of replicate `seed`: an explicit `data_seed` wins.
    pub fn data_order_seed(&self, seed: u64) -> u64 {
        self.data_seed.unwrap_or(seed)
    }

    /// This config with the data seed resolved for replicate `seed` (what experiments train).
    pub fn for_replicate(&self, seed: u64) -> TrainConfig {
        let mut resolved = self.clone();
        resolved.data_seed = Some(self.data_order_seed(seed));
        resolved
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        // Zero iterations would report the untrained network as a trained round.
        if self.iterations == 0 {
            return Err(ConfigError::new("iterations must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(ConfigError::new("batch_size must be at least 1"));
        }
        if self.eval_every == 0 {
            return Err(ConfigError::new("eval_every must be at least 1"));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(ConfigError(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            )));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(ConfigError(format!(
                "weight_decay must be 0 or positive, got {}",
                self.weight_decay
            )));
        }
        if !(0.0..1.0).contains(&self.momentum) {
            return Err(ConfigError(format!(
                "momentum must be in [0, 1), got {}",
                self.momentum
            )));
        }
        Ok(())
    }

    pub(crate) fn learning_rate_at(&self, iteration: usize) -> f64 {
        if self.warmup_iterations == 0 {
            self.learning_rate
        } else {
            self.learning_rate * ((iteration + 1) as f64 / self.warmup_iterations as f64).min(1.0)
        }
    }

    /// A fresh optimiser with this config's settings.
    pub fn optimizer(&self) -> LabOptimizer {
        LabOptimizer::new(self.optimizer, self.momentum, self.weight_decay)
    }
}

/// The result of a training run.
#[derive(Debug, Clone)]
pub struct TrainOutcome<M> {
    pub model: M,
    pub curve: Vec<EvalPoint>,
    /// The evaluation point of minimum validation loss (the first, on ties).
    pub early_stop: EvalPoint,
    pub last: EvalPoint,
    /// The model right after `snapshot_at` iterations, for late rewinding.
    pub snapshot: Option<M>,
    pub time: TimeSplit,
    /// With a mask policy: the mask at the end, every weight ever active (ITOP's explored
    /// set) and each update. Without one these are `None`, `None` and empty.
    pub final_mask: Option<Mask>,
    pub explored: Option<Mask>,
    pub mask_updates: Vec<MaskUpdate>,
    /// Wall time that earlier processes spent on this training before a checkpoint it
    /// resumed from (0 for a run that did not resume): add it to this process's time.
    pub resumed_wall_seconds: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("training diverged: validation loss {loss} at iteration {iteration}")]
    Diverged { iteration: usize, loss: f64 },
    #[error("cancelled at iteration {0}")]
    Cancelled(usize),
    #[error("invalid training config: {0}")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] crate::base::store::StoreError),
    #[error("sparse training: {0}")]
    Sparse(#[from] SparseTrainError),
    #[error("member {member} of the pack: {source}")]
    InMember {
        member: usize,
        #[source]
        source: Box<TrainError>,
    },
}

impl TrainError {
    /// This error, as member `member` of a pack met it.
    pub fn in_member(self, member: usize) -> Self {
        TrainError::InMember {
            member,
            source: Box::new(self),
        }
    }
}

/// Host data plus the evaluation sets uploaded once to the device.
pub struct Prepared {
    pub train: Split,
    /// The evaluation sets on the host too, for the sparse kernel's evaluation.
    validation_split: Split,
    test_split: Split,
    validation: (Vec<Tensor<2>>, Vec<Tensor<1, Int>>),
    test: (Vec<Tensor<2>>, Vec<Tensor<1, Int>>),
    validation_len: usize,
    test_len: usize,
    device: Device,
}

const EVAL_CHUNK: usize = 1000;

/// A batch of images and labels as tensors; pixels are scaled to [0, 1] and standardised with
/// the split's data set's own mean and std (as open_lth).
pub fn batch_tensors(
    split: &Split,
    indices: &[usize],
    device: &Device,
) -> (Tensor<2>, Tensor<1, Int>) {
    let pixels = split.standardised(indices);
    let labels: Vec<i64> = indices
        .iter()
        .map(|&i| i64::from(split.labels[i]))
        .collect();
    let n = indices.len();
    (
        Tensor::from_data(TensorData::new(pixels, [n, IMAGE_SIZE]), device),
        Tensor::from_data(TensorData::new(labels, [n]), device),
    )
}

fn upload_chunks(split: &Split, device: &Device) -> (Vec<Tensor<2>>, Vec<Tensor<1, Int>>) {
    let indices: Vec<usize> = (0..split.len()).collect();
    indices
        .chunks(EVAL_CHUNK)
        .map(|chunk| batch_tensors(split, chunk, device))
        .unzip()
}

impl Prepared {
    /// Uploads the validation and test sets to `device` (without autodiff).
    pub fn new(data: &Mnist, device: &Device) -> Self {
        let device = device.clone().without_autodiff();
        Self {
            train: data.train.clone(),
            validation_split: data.validation.clone(),
            test_split: data.test.clone(),
            validation: upload_chunks(&data.validation, &device),
            test: upload_chunks(&data.test, &device),
            validation_len: data.validation.len(),
            test_len: data.test.len(),
            device,
        }
    }
}

/// Mean cross-entropy of logits against integer labels.
pub fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    log_softmax(logits, 1)
        .gather(1, labels.reshape([n, 1]))
        .mean()
        .neg()
}

/// Loss and accuracy of `model` on a set, read back with one async read.
async fn evaluate_set<M: Classifier>(
    model: &M,
    set: &(Vec<Tensor<2>>, Vec<Tensor<1, Int>>),
    len: usize,
    device: &Device,
) -> Result<(f64, f64), TrainError> {
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    let mut correct = Tensor::<1>::zeros([1], device);
    for (images, labels) in set.0.iter().zip(&set.1) {
        let [n, _] = images.dims();
        let logits = model.forward(images.clone());
        let predicted = logits.clone().argmax(1).reshape([n]);
        correct = correct + predicted.equal(labels.clone()).float().sum();
        loss_sum = loss_sum + cross_entropy(logits, labels.clone()).mul_scalar(n as f64);
    }
    let data = Tensor::cat(vec![loss_sum, correct], 0)
        .into_data_async()
        .await
        .map_err(|e| DeviceError::new("metrics", e))?;
    let values = data
        .convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| DeviceError::new("metrics", e))?;
    let n = len.max(1) as f64;
    Ok((values[0] / n, values[1] / n))
}

/// Evaluates the sparse trainer's network through its sparse forward pass on the host, on
/// the same sets and chunks as [`evaluate`] (the same numbers up to summation order).
fn evaluate_sparse(
    trainer: &mut SparseTrainer,
    data: &Prepared,
    iteration: usize,
) -> Result<EvalPoint, TrainError> {
    let (validation_loss, validation_accuracy) =
        trainer.evaluate(&data.validation_split, EVAL_CHUNK)?;
    let (test_loss, test_accuracy) = trainer.evaluate(&data.test_split, EVAL_CHUNK)?;
    Ok(EvalPoint {
        iteration,
        validation_loss,
        validation_accuracy,
        test_loss,
        test_accuracy,
    })
}

/// Evaluates `model` (any device; evaluation runs without autodiff) on validation and test.
pub async fn evaluate<M: Classifier>(
    model: &M,
    data: &Prepared,
    iteration: usize,
) -> Result<EvalPoint, TrainError> {
    let model = model.valid().to_device(&data.device);
    let (validation_loss, validation_accuracy) =
        evaluate_set(&model, &data.validation, data.validation_len, &data.device).await?;
    let (test_loss, test_accuracy) =
        evaluate_set(&model, &data.test, data.test_len, &data.device).await?;
    Ok(EvalPoint {
        iteration,
        validation_loss,
        validation_accuracy,
        test_loss,
        test_accuracy,
    })
}

/// The per-epoch shuffled order of training examples, drawn lazily from the data seed.
pub(crate) struct BatchOrder {
    rng: Rng,
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
}

impl BatchOrder {
    pub(crate) fn new(n: usize, batch_size: usize, seed: u64) -> Self {
        let mut rng = Rng::for_purpose(seed, "data-order");
        let order = rng.permutation(n);
        Self {
            rng,
            order,
            position: 0,
            batch_size: batch_size.min(n),
        }
    }

    /// The next batch; an epoch's incomplete last batch is dropped.
    pub(crate) fn next(&mut self) -> &[usize] {
        if self.position + self.batch_size > self.order.len() {
            self.rng.shuffle(&mut self.order);
            self.position = 0;
        }
        let batch = &self.order[self.position..self.position + self.batch_size];
        self.position += self.batch_size;
        batch
    }
}

/// One optimisation step at a time, with masked gradients.
pub struct Stepper {
    optimizer: LabOptimizer,
    mask: Option<DeviceMask>,
}

impl Stepper {
    /// Prepares the optimiser and zeroes the pruned weights of `model`.
    pub fn new<M: Classifier>(
        model: M,
        mask: Option<&Mask>,
        config: &TrainConfig,
        device: &Device,
    ) -> (Self, M) {
        let mask = mask.map(|m| m.to_device(device));
        let model = match &mask {
            Some(dm) => apply_mask(model, dm),
            None => model,
        };
        let stepper = Self {
            optimizer: config.optimizer(),
            mask,
        };
        (stepper, model)
    }

    fn gradients<M: Classifier>(
        model: &M,
        images: Tensor<2>,
        labels: Tensor<1, Int>,
    ) -> GradientsParams {
        let loss = cross_entropy(model.forward(images), labels);
        GradientsParams::from_grads(loss.backward(), model)
    }

    fn apply<M: Classifier>(
        &mut self,
        model: M,
        mut grads: GradientsParams,
        learning_rate: f64,
    ) -> M {
        if let Some(mask) = &self.mask {
            mask_gradients(&model, &mut grads, mask);
        }
        self.optimizer.step(learning_rate, model, grads)
    }

    /// Forward, backward, gradient masking and the optimiser update; no device sync.
    pub fn step<M: Classifier>(
        &mut self,
        model: M,
        images: Tensor<2>,
        labels: Tensor<1, Int>,
        learning_rate: f64,
    ) -> M {
        let grads = Self::gradients(&model, images, labels);
        self.apply(model, grads, learning_rate)
    }

    /// [`Stepper::step`], also reading back the dense (unmasked) gradient of the parameters
    /// `mask` covers: RigL's growth criterion. Syncs the device.
    pub async fn step_reading_gradient<M: Classifier>(
        &mut self,
        model: M,
        images: Tensor<2>,
        labels: Tensor<1, Int>,
        learning_rate: f64,
        mask: &Mask,
    ) -> Result<(M, Weights), DeviceError> {
        let grads = Self::gradients(&model, images, labels);
        let dense = read_gradients(&model, &grads, &|path| mask.layer(path).is_some()).await?;
        Ok((self.apply(model, grads, learning_rate), dense))
    }

    /// Trains with `mask` from now on: its pruned weights and their optimiser state become 0,
    /// so a dropped weight stops and a grown one starts from 0 with zero moments.
    pub fn set_mask<M: Classifier>(&mut self, model: M, mask: &Mask, device: &Device) -> M {
        let on_device = mask.to_device(device);
        self.optimizer.mask_state(&on_device);
        let model = apply_mask(model, &on_device);
        self.mask = Some(on_device);
        model
    }
}

/// Trains `model` (on an autodiff device) for `config.iterations` steps. With a `mask`, the
/// pruned weights are zeroed first and their gradients masked every step, so they stay 0.
pub async fn train<M: Classifier>(
    model: M,
    mask: Option<&Mask>,
    data: &Prepared,
    config: &TrainConfig,
    snapshot_at: Option<usize>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome<M>, TrainError> {
    train_from(model, mask, data, config, 0, snapshot_at, observer).await
}

/// Like [`train`], but `model` holds the weights after `start` iterations (θk, late
/// rewinding): training resumes at iteration `start + 1` of the same schedule — the same
/// position in the data order and the learning-rate warm-up — and runs to
/// `config.iterations`; evaluation points keep absolute iteration numbers.
pub async fn train_from<M: Classifier>(
    model: M,
    mask: Option<&Mask>,
    data: &Prepared,
    config: &TrainConfig,
    start: usize,
    snapshot_at: Option<usize>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome<M>, TrainError> {
    let schedule = Schedule {
        start,
        snapshot_at,
        checkpoint: None,
        policy: None,
    };
    train_scheduled(model, mask, data, config, schedule, observer).await
}

/// Where a run starts, when it keeps θk, and where it checkpoints.
pub struct Schedule<'a> {
    /// Iterations already done by `model` (0, or k for a rewound round).
    pub start: usize,
    /// Keep the model after this many iterations (θk for late rewinding).
    pub snapshot_at: Option<usize>,
    /// Checkpoint every so often, and resume from the last checkpoint if there is one.
    pub checkpoint: Option<Checkpointing<'a>>,
    /// Changes the mask at the iterations it names (dynamic sparse training); `None` keeps
    /// the mask fixed. With a policy and no mask, training starts dense.
    pub policy: Option<&'a dyn MaskPolicy>,
}

/// [`train_from`] with checkpoints: with `schedule.checkpoint`, the run saves its state every
/// `every` iterations and, if a checkpoint exists, resumes from it instead of from `start`,
/// giving the same results as an uninterrupted run.
pub async fn train_scheduled<M: Classifier>(
    model: M,
    mask: Option<&Mask>,
    data: &Prepared,
    config: &TrainConfig,
    mut schedule: Schedule<'_>,
    observer: &mut dyn Observer,
) -> Result<TrainOutcome<M>, TrainError> {
    let (start, snapshot_at) = (schedule.start, schedule.snapshot_at);
    config.validate()?;
    if start > config.iterations {
        return Err(TrainError::Config(ConfigError(format!(
            "cannot start at iteration {start} of a {}-iteration run",
            config.iterations
        ))));
    }
    let device = training_device(&model, data)?;
    let policy = schedule.policy;
    // A policy changes the mask; without a given one it starts from the dense mask (GMP).
    let mut dynamics = policy.map(|_| {
        let mask = mask.cloned().unwrap_or_else(|| Mask::dense_for(&model));
        MaskDynamics {
            explored: mask.clone(),
            mask,
            updates: Vec::new(),
        }
    });
    let kernel = config
        .kernel
        .resolve(model.stages().as_deref(), mask, dynamics.is_some())?;
    let (mut stepper, mut model) = Stepper::new(model, mask, config, &device);
    // Experiments resolve the data seed (`for_replicate`); a bare call uses the order of seed 0.
    let mut order = BatchOrder::new(
        data.train.len(),
        config.batch_size,
        config.data_order_seed(0),
    );
    let began = Instant::now();
    let saved = match &schedule.checkpoint {
        Some(c) => c.load()?,
        None => None,
    };
    let (mut curve, mut time, mut snapshot, done, earlier_wall) = match saved {
        Some(saved) => {
            saved
                .progress
                .check_resumes(start, config.iterations, dynamics.is_some(), kernel)?;
            model = load_weights(model, &saved.weights);
            if let Some(saved_dynamics) = saved.progress.dynamics.clone() {
                model = stepper.set_mask(model, &saved_dynamics.mask, &device);
                dynamics = Some(saved_dynamics);
            }
            if stepper
                .optimizer
                .load_state(&saved.optimizer, &device)
                .is_none()
            {
                return Err(TrainError::Config(ConfigError::new(
                    "the checkpoint's optimiser state is not this run's optimiser",
                )));
            }
            let snapshot = saved.snapshot.map(|w| load_weights(model.clone(), &w));
            let progress = saved.progress;
            observer.on_resume(progress.iteration);
            let earlier = progress.wall_seconds;
            (
                progress.curve,
                progress.time,
                snapshot,
                progress.iteration,
                earlier,
            )
        }
        None => {
            let mut time = TimeSplit::default();
            let snapshot = (snapshot_at == Some(start)).then(|| model.clone());
            let started = Instant::now();
            let first = check_point(evaluate(&model, data, start).await?)?;
            time.evaluation += started.elapsed().as_secs_f64();
            observer.on_eval(&first);
            (vec![first], time, snapshot, start, 0.0)
        }
    };
    for _ in 0..done {
        order.next();
    }
    // The sparse kernel trains and evaluates on the host; `model` then holds its weights only
    // where something reads them (the snapshot, checkpoints, the end).
    let mut sparse = match kernel {
        Kernel::Sparse => {
            let stages = model.stages().unwrap_or_default();
            let mut trainer = SparseTrainer::new(
                &stages,
                &read_weights(&model).await?,
                mask,
                &stepper.optimizer,
            )?;
            if done > start {
                trainer.load_optimizer_state(&stepper.optimizer.read_state().await?)?;
            }
            Some(trainer)
        }
        _ => None,
    };

    for iteration in done + 1..=config.iterations {
        if observer.cancelled() {
            return Err(TrainError::Cancelled(iteration - 1));
        }
        let started = Instant::now();
        let learning_rate = config.learning_rate_at(iteration - 1);
        if let Some(trainer) = sparse.as_mut() {
            let batch = order.next();
            let images = data.train.standardised(batch);
            let labels: Vec<u8> = batch.iter().map(|&i| data.train.labels[i]).collect();
            let built = Instant::now();
            trainer.step(&images, &labels, learning_rate)?;
            time.data += (built - started).as_secs_f64();
            time.training += built.elapsed().as_secs_f64();
            let read = snapshot_at == Some(iteration)
                || iteration == config.iterations
                || schedule
                    .checkpoint
                    .as_ref()
                    .is_some_and(|c| c.due(iteration, config.iterations));
            if read {
                model = load_weights(model, &trainer.weights());
            }
        } else {
            let (images, labels) = batch_tensors(&data.train, order.next(), &device);
            let built = Instant::now();
            // Only an update iteration of a policy syncs the device.
            let updating = policy.filter(|p| p.updates_at(iteration, config.iterations));
            let mut gradient = None;
            match (updating, &dynamics) {
                (Some(p), Some(d)) if p.needs_gradient() => {
                    let (next, dense) = stepper
                        .step_reading_gradient(model, images, labels, learning_rate, &d.mask)
                        .await?;
                    model = next;
                    gradient = Some(dense);
                }
                _ => model = stepper.step(model, images, labels, learning_rate),
            }
            if let (Some(policy), Some(dynamics)) = (updating, dynamics.as_mut()) {
                let at = (iteration, config.iterations);
                let update = MaskStep {
                    policy,
                    dynamics,
                    gradient: gradient.as_ref(),
                };
                model = update
                    .apply(model, at, &mut stepper, &device, observer)
                    .await?;
            }
            time.data += (built - started).as_secs_f64();
            time.training += built.elapsed().as_secs_f64();
        }

        if snapshot_at == Some(iteration) {
            snapshot = Some(model.clone());
        }
        observer.on_step(iteration, config.iterations);
        if iteration.is_multiple_of(config.eval_every) || iteration == config.iterations {
            let started = Instant::now();
            let point = match sparse.as_mut() {
                Some(trainer) => evaluate_sparse(trainer, data, iteration)?,
                None => evaluate(&model, data, iteration).await?,
            };
            let point = check_point(point)?;
            time.evaluation += started.elapsed().as_secs_f64();
            observer.on_eval(&point);
            curve.push(point);
        }
        if let Some(checkpointing) = schedule.checkpoint.as_mut()
            && checkpointing.due(iteration, config.iterations)
        {
            let checkpoint = Checkpoint {
                progress: Progress {
                    start,
                    iteration,
                    curve: curve.clone(),
                    time,
                    wall_seconds: earlier_wall + began.elapsed().as_secs_f64(),
                    dynamics: dynamics.clone(),
                    kernel,
                },
                weights: read_weights(&model).await?,
                snapshot: match &snapshot {
                    Some(s) => Some(read_weights(s).await?),
                    None => None,
                },
                optimizer: match &sparse {
                    Some(trainer) => trainer.optimizer_state(),
                    None => stepper.optimizer.read_state().await?,
                },
            };
            checkpointing.save(checkpoint)?;
        }
        if let Some(pause) = observer.pause() {
            pause.await;
        }
    }
    let early_stop = early_stop_of(&curve);
    let last = *curve.last().expect("at least one evaluation");
    let (final_mask, explored, mask_updates) = match dynamics {
        Some(d) => (Some(d.mask), Some(d.explored), d.updates),
        None => (None, None, Vec::new()),
    };
    Ok(TrainOutcome {
        model,
        curve,
        early_stop,
        last,
        snapshot,
        time,
        final_mask,
        explored,
        mask_updates,
        resumed_wall_seconds: earlier_wall,
    })
}

/// One mask update of a policy, after a training step.
struct MaskStep<'a> {
    policy: &'a dyn MaskPolicy,
    dynamics: &'a mut MaskDynamics,
    /// The step's dense gradient, when the policy asked for it.
    gradient: Option<&'a Weights>,
}

impl MaskStep<'_> {
    /// Asks the policy for the next mask after finished iteration `at.0` of `at.1`, starts
    /// grown connections from the policy's values, moves the device mask, and records and
    /// reports the update.
    async fn apply<M: Classifier>(
        self,
        model: M,
        (iteration, total): (usize, usize),
        stepper: &mut Stepper,
        device: &Device,
        observer: &mut dyn Observer,
    ) -> Result<M, TrainError> {
        let d = self.dynamics;
        let weights = read_weights(&model).await?;
        let next = self.policy.update(&UpdateContext {
            iteration,
            total,
            mask: &d.mask,
            explored: &d.explored,
            weights: &weights,
            gradient: self.gradient,
        });
        let (dropped, grown) = changes(&d.mask, &next);
        let mut model = model;
        if let Some(values) = self.policy.grow_values() {
            model = load_weights(model, &with_grown_values(weights, &d.mask, &next, values));
        }
        explore(&mut d.explored, &next);
        let model = stepper.set_mask(model, &next, device);
        let update = MaskUpdate {
            iteration,
            density: next.density(),
            explored: d.explored.density(),
            dropped,
            grown,
        };
        d.mask = next;
        observer.on_mask_update(&update, &d.mask);
        d.updates.push(update);
        Ok(model)
    }
}

/// `weights` with each connection that `next` activates and `mask` did not set to its value
/// in `values` (a grow policy other than zero).
fn with_grown_values(mut weights: Weights, mask: &Mask, next: &Mask, values: &Weights) -> Weights {
    for (old, new) in mask.layers.iter().zip(&next.layers) {
        let (Some(target), Some(source)) = (weights.get_mut(&new.name), values.get(&new.name))
        else {
            continue;
        };
        for (i, (&was, &is)) in old.keep.iter().zip(&new.keep).enumerate() {
            if is && !was {
                target.values[i] = source.values[i];
            }
        }
    }
    weights
}

/// The autodiff device `model` trains on, once the data and the model can train at all.
pub(crate) fn training_device<M: burn::module::Module>(
    model: &M,
    data: &Prepared,
) -> Result<Device, ConfigError> {
    if data.train.is_empty() {
        return Err(ConfigError::new("the training set is empty"));
    }
    let device = model
        .devices()
        .first()
        .cloned()
        .ok_or_else(|| ConfigError::new("the model has no parameters"))?;
    if !device.is_autodiff() {
        return Err(ConfigError::new("training needs an autodiff device"));
    }
    Ok(device)
}

/// The evaluation point of minimum validation loss (the first, on ties).
pub(crate) fn early_stop_of(curve: &[EvalPoint]) -> EvalPoint {
    *curve
        .iter()
        .reduce(|best, p| {
            if p.validation_loss < best.validation_loss {
                p
            } else {
                best
            }
        })
        .expect("at least one evaluation")
}

/// `point`, or the divergence its validation loss shows.
pub(crate) fn check_point(point: EvalPoint) -> Result<EvalPoint, TrainError> {
    if point.validation_loss.is_finite() {
        Ok(point)
    } else {
        Err(TrainError::Diverged {
            iteration: point.iteration,
            loss: point.validation_loss,
        })
    }
}

// Here rather than in `result`, which the observer reads: the loop is above both.
impl RoundResult {
    /// The result of training `mask`'s network, as recorded for round `round`.
    pub fn from_training<M>(
        round: usize,
        mask: &Mask,
        outcome: &TrainOutcome<M>,
        wall_seconds: f64,
    ) -> Self {
        RoundResult {
            round,
            weights_remaining: mask.density(),
            early_stop_iteration: outcome.early_stop.iteration,
            test_accuracy: outcome.early_stop.test_accuracy,
            validation_accuracy: outcome.early_stop.validation_accuracy,
            validation_loss: outcome.early_stop.validation_loss,
            final_test_accuracy: outcome.last.test_accuracy,
            layers: layer_report(mask),
            curve: outcome.curve.clone(),
            time: outcome.time,
            wall_seconds,
        }
    }
}
