//! Training throughput measurement, shared by `lth bench` and `cargo bench`.

use burn::tensor::Device;
use web_time::Instant;

use crate::base::data::Mnist;
use crate::base::mask::Mask;
use crate::base::model::{ModelKind, Net, init_model};
use crate::base::params::read_weights;
use crate::pruning::prune::{PruneConfig, magnitude};
use crate::training::observer::Pause;
use crate::training::train::{Stepper, TrainConfig, batch_tensors};

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub ms_per_step: f64,
    pub samples_per_second: f64,
    /// The first step alone (shader compilation and autotuning on GPU backends).
    pub first_step_ms: f64,
}

/// Times `steps` LTH LeNet-300-100 training steps (Adam, batch 60) with a round-1 IMP mask,
/// after 20 warm-up steps; the device is synced before the clock stops.
#[cfg(feature = "native")]
pub fn training_throughput(
    data: &Mnist,
    device: &Device,
    steps: usize,
) -> Result<Throughput, crate::base::error::DeviceError> {
    pollster::block_on(training_throughput_async(data, device, steps, &mut || None))
}

/// [`training_throughput`] for async callers: synchronises through async reads (browsers
/// cannot block on the GPU) and calls `pause` between steps (to yield to an event loop).
pub async fn training_throughput_async(
    data: &Mnist,
    device: &Device,
    steps: usize,
    pause: &mut dyn FnMut() -> Option<Pause<'static>>,
) -> Result<Throughput, crate::base::error::DeviceError> {
    step_timing_async(
        data,
        device,
        ModelKind::Lenet300,
        WARM_UP_STEPS,
        steps,
        pause,
    )
    .await
}

/// Times `steps` training steps of `kind` (Adam, batch 60, a round-1 IMP mask) after
/// `warm_up` steps: the throughput benchmark, and the page's backend calibration.
pub async fn step_timing_async(
    data: &Mnist,
    device: &Device,
    kind: ModelKind,
    warm_up: usize,
    steps: usize,
    pause: &mut dyn FnMut() -> Option<Pause<'static>>,
) -> Result<Throughput, crate::base::error::DeviceError> {
    let device = device.clone().autodiff();
    let config = TrainConfig::new();
    let model: Net = init_model(kind, 0, &device);
    let weights = read_weights(&model).await?;
    let mask = magnitude(&Mask::dense_for(&model), &weights, &PruneConfig::default());
    let (mut stepper, mut model) = Stepper::new(model, Some(&mask), &config, &device);
    let n = data.train.len();
    let batch = |i: usize| -> Vec<usize> {
        (0..config.batch_size)
            .map(|j| (i * config.batch_size + j) % n)
            .collect()
    };
    // Reading the weights back waits for every queued step.
    let started = Instant::now();
    let (x, y) = batch_tensors(&data.train, &batch(0), &device);
    model = stepper.step(model, x, y, config.learning_rate);
    read_weights(&model).await?;
    let first_step_ms = started.elapsed().as_secs_f64() * 1e3;
    for i in 1..warm_up.max(1) {
        let (x, y) = batch_tensors(&data.train, &batch(i), &device);
        model = stepper.step(model, x, y, config.learning_rate);
        if let Some(pause) = pause() {
            pause.await;
        }
    }
    read_weights(&model).await?;
    let started = Instant::now();
    let mut paused = 0.0;
    for i in 0..steps {
        let (x, y) = batch_tensors(&data.train, &batch(warm_up + i), &device);
        model = stepper.step(model, x, y, config.learning_rate);
        if let Some(pause) = pause() {
            let at = Instant::now();
            pause.await;
            paused += at.elapsed().as_secs_f64();
        }
    }
    read_weights(&model).await?;
    // Time handed to the event loop is not training time.
    let seconds = started.elapsed().as_secs_f64() - paused;
    Ok(Throughput {
        ms_per_step: seconds * 1e3 / steps as f64,
        samples_per_second: (steps * config.batch_size) as f64 / seconds,
        first_step_ms,
    })
}

const WARM_UP_STEPS: usize = 20;

/// Training speed of one sparse-training method through the real training loop.
#[derive(Debug, Clone, Copy)]
pub struct DstThroughput {
    pub method: crate::methods::dst::Method,
    pub ms_per_step: f64,
    /// Mask updates in the timed run (each syncs the device and reads weights back).
    pub updates: usize,
}

/// Times `steps` LeNet-300-100 training steps of `method` at `density` (ERK, ΔT = 100, the
/// paper defaults) through [`crate::training::train::train_scheduled`], the loop every run uses, with
/// evaluation only at the start and end on 100 images (so the figure is training, with
/// its mask updates, plus two evaluations of 100 images). The first 20 steps, with their one-time costs, run before the clock.
#[cfg(feature = "native")]
pub fn dst_throughput(
    data: &Mnist,
    device: &Device,
    method: crate::methods::dst::Method,
    density: f64,
    steps: usize,
) -> Result<DstThroughput, crate::training::train::TrainError> {
    use crate::methods::dst::{DstConfig, DstPolicy, random_mask};
    use crate::training::observer::Silent;
    use crate::training::train::{Prepared, Schedule, train_scheduled};
    let device = device.clone().autodiff();
    let prepared = Prepared::new(&data.subset(data.train.len(), 100, 100), &device);
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
    let dense = Mask::dense_for(&model);
    let config = DstConfig::new().with_method(method).with_density(density);
    let densities = config.densities(&dense)?;
    let mask = match method {
        crate::methods::dst::Method::Gmp => dense.clone(),
        _ => random_mask(&dense, &densities, 0),
    };
    let policy = DstPolicy {
        config,
        densities,
        seed: 0,
        initial_weights: None,
    };
    let run = |iterations: usize| {
        let train = TrainConfig::new()
            .with_iterations(iterations)
            .with_eval_every(iterations.max(1));
        let schedule = Schedule {
            start: 0,
            snapshot_at: None,
            checkpoint: None,
            policy: Some(&policy),
        };
        pollster::block_on(train_scheduled(
            model.clone(),
            Some(&mask),
            &prepared,
            &train,
            schedule,
            &mut Silent,
        ))
    };
    run(WARM_UP_STEPS)?;
    let started = Instant::now();
    let outcome = run(steps)?;
    // The two 100-image evaluations stay in: on GPUs the last one is where queued steps
    // finish, so subtracting it would hide training time.
    let seconds = started.elapsed().as_secs_f64();
    Ok(DstThroughput {
        method,
        ms_per_step: seconds * 1e3 / steps as f64,
        updates: outcome.mask_updates.len(),
    })
}

// ---------------------------------------------------------------------------------------
// Inference: dense vs sparse (CSR) vs compacted structured, by density and batch.
// ---------------------------------------------------------------------------------------

/// One cell of the inference table: microseconds per forward pass of a batch, input on the
/// host and logits back on the host (what an application pays).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct InferenceRow {
    pub model: String,
    pub batch: usize,
    /// Fraction of prunable weights kept.
    pub density: f64,
    /// The full dense network (masked weights, dense kernels) on the backend.
    pub dense_us: f64,
    /// The CSR engine at `density` (magnitude mask, per layer), one thread.
    pub csr_us: f64,
    /// The compacted network of a structured mask with about as many weights, on the backend.
    pub compact_us: f64,
    /// The compacted network's density (closest the unit counts allow).
    pub compact_density: f64,
}

impl InferenceRow {
    pub fn csr_speedup(&self) -> f64 {
        self.dense_us / self.csr_us
    }
    pub fn compact_speedup(&self) -> f64 {
        self.dense_us / self.compact_us
    }
}

/// The densities and batches of the table.
pub const INFERENCE_DENSITIES: [f64; 7] = [1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01];
pub const INFERENCE_BATCHES: [usize; 3] = [1, 60, 1000];

/// Times `work` until `budget_s` has passed (at least 3 calls), in 5 slices; the median
/// slice's time per call, in µs.
pub async fn time_us<F, Fut>(
    budget_s: f64,
    mut work: F,
) -> Result<f64, crate::deploy::error::InferenceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), crate::deploy::error::InferenceError>>,
{
    work().await?; // warm-up (allocations, caches, shader compilation)
    let mut slices = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let mut calls = 0usize;
        while calls < 3 || started.elapsed().as_secs_f64() < budget_s / 5.0 {
            work().await?;
            calls += 1;
        }
        slices.push(started.elapsed().as_secs_f64() * 1e6 / calls as f64);
    }
    slices.sort_by(f64::total_cmp);
    Ok(slices[2])
}

/// Measures the inference table of `kind` on `device` (θ0 weights: times do not depend on
/// the values), `budget_s` seconds per cell and method, inputs from `images` (standardised,
/// cycled to fill a batch). `progress` sees each row as it is measured.
pub async fn inference_table(
    kind: ModelKind,
    device: &Device,
    images: &[f32],
    densities: &[f64],
    batches: &[usize],
    budget_s: f64,
    progress: &mut dyn FnMut(&InferenceRow),
) -> Result<Vec<InferenceRow>, crate::deploy::error::InferenceError> {
    use crate::deploy::compact::compact;
    use crate::pruning::granularity::UnitNorm;
    use crate::pruning::units::units_to_density;
    let device = device.clone().without_autodiff();
    let net: Net = init_model(kind, 0, &device);
    let weights = read_weights(&net).await?;
    let stages = net
        .stages()
        .ok_or(crate::pruning::units::StructuredError::NotSequential)?;
    let dense_mask = Mask::dense_for(&net);
    let scores = crate::pruning::prune::magnitudes(&weights);
    let mut rows = Vec::new();
    for &batch in batches {
        let input: Vec<f32> = images
            .iter()
            .copied()
            .cycle()
            .take(batch * crate::base::data::IMAGE_SIZE)
            .collect();
        let dense_us = time_us(budget_s, || async {
            Ok(crate::deploy::export::burn_logits(&net, &input, &device)
                .await
                .map(drop)?)
        })
        .await?;
        for &density in densities {
            let mask = crate::pruning::prune::to_density(
                &dense_mask,
                &scores,
                density,
                crate::pruning::prune::PruneScope::PerLayer,
            );
            let sparse = crate::deploy::sparse::SparseNet::new(&stages, &weights, &mask)?;
            let csr_us =
                time_us(budget_s, || async { Ok(sparse.forward(&input).map(drop)?) }).await?;
            let structured =
                units_to_density(&stages, &dense_mask, &weights, UnitNorm::L1, density)?;
            let compacted = compact(&net, &weights, &structured, &device)?;
            let compact_us = time_us(budget_s, || async {
                Ok(
                    crate::deploy::export::burn_logits(&compacted.net, &input, &device)
                        .await
                        .map(drop)?,
                )
            })
            .await?;
            let row = InferenceRow {
                model: kind.name().into(),
                batch,
                density,
                dense_us,
                csr_us,
                compact_us,
                compact_density: structured.density(),
            };
            progress(&row);
            rows.push(row);
        }
    }
    Ok(rows)
}

/// The density below which the CSR engine beats dense for `model` at `batch`, interpolated
/// (in log density) between the two measured densities where the speed-up crosses 1, going
/// from dense to sparse; the densest measured density if CSR is already faster there; `None`
/// if it never is. Dense runs on the table's backend, CSR on one host thread: the value is
/// that pair's.
pub fn break_even_density(rows: &[InferenceRow], model: &str, batch: usize) -> Option<f64> {
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.model == model && r.batch == batch && r.density > 0.0)
        .map(|r| (r.density, r.csr_speedup()))
        .collect();
    points.sort_by(|a, b| b.0.total_cmp(&a.0)); // densest first
    if points.first()?.1 >= 1.0 {
        return Some(points[0].0);
    }
    points
        .windows(2)
        .find(|w| w[0].1 < 1.0 && w[1].1 >= 1.0)
        .map(|w| {
            let ((d0, s0), (d1, s1)) = (w[0], w[1]);
            let t = -s0.ln() / (s1.ln() - s0.ln());
            (d0.ln() + t * (d1.ln() - d0.ln())).exp()
        })
}

/// Network-steps per second of R LeNet-300-100s (Adam, batch 60, round-1 IMP masks, each
/// its own init and data order) trained one after another and as one pack.
#[derive(Debug, Clone, Copy)]
pub struct PackThroughput {
    pub members: usize,
    pub alone_steps_per_second: f64,
    pub packed_steps_per_second: f64,
}

impl PackThroughput {
    pub fn speedup(&self) -> f64 {
        self.packed_steps_per_second / self.alone_steps_per_second
    }
}

/// Times `steps` iterations of `members` networks through [`crate::training::train::train`]
/// one after another, and through [`crate::training::pack::train_packed`]; both evaluate
/// only at the start and the end, on 100 validation and test images.
pub async fn pack_throughput(
    data: &Mnist,
    device: &Device,
    members: usize,
    steps: usize,
) -> Result<PackThroughput, crate::training::train::TrainError> {
    use crate::training::observer::Silent;
    use crate::training::pack::{PackMember, train_packed};
    use crate::training::train::{Prepared, train};
    let prepared = Prepared::new(&data.limited(None, Some(100)), device);
    let device = device.clone().autodiff();
    let config = TrainConfig::new()
        .with_iterations(steps)
        .with_eval_every(steps);
    let mut pack = Vec::with_capacity(members);
    for seed in 0..members as u64 {
        let model = match init_model::<Net>(ModelKind::Lenet300, seed, &device) {
            Net::Mlp(mlp) => mlp,
            _ => unreachable!("LeNet-300-100 is an MLP"),
        };
        let weights = read_weights(&model).await?;
        let mask = magnitude(&Mask::dense_for(&model), &weights, &PruneConfig::default());
        pack.push(PackMember {
            model,
            mask: Some(mask),
            data_seed: seed,
        });
    }
    let started = Instant::now();
    for m in &pack {
        let config = config.clone().with_data_seed(Some(m.data_seed));
        let model = m.model.clone();
        train(
            model,
            m.mask.as_ref(),
            &prepared,
            &config,
            None,
            &mut Silent,
        )
        .await?;
    }
    let alone = started.elapsed().as_secs_f64();
    let started = Instant::now();
    train_packed(pack, &prepared, &config, &mut Silent).await?;
    let packed = started.elapsed().as_secs_f64();
    let network_steps = (members * steps) as f64;
    Ok(PackThroughput {
        members,
        alone_steps_per_second: network_steps / alone,
        packed_steps_per_second: network_steps / packed,
    })
}

/// Training steps per second of a registry model (Adam, batch 60) with a random mask
/// keeping `density` of every weight tensor: masked dense on a backend against the host's
/// sparse trainer, the same batches for both.
#[derive(Debug, Clone, Copy)]
pub struct SparseTrainingRow {
    pub density: f64,
    pub kept_weights: usize,
    pub dense_steps_per_second: f64,
    pub sparse_steps_per_second: f64,
}

impl SparseTrainingRow {
    pub fn speedup(&self) -> f64 {
        self.sparse_steps_per_second / self.dense_steps_per_second
    }
}

/// Why the sparse-training table could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum SparseBenchError {
    #[error(transparent)]
    Device(#[from] crate::base::error::DeviceError),
    #[error(transparent)]
    Sparse(#[from] crate::training::sparse::SparseTrainError),
}

/// Times `steps` steps of each (after [`WARM_UP_STEPS`]) at every density; the dense path
/// includes uploading the batch and is synced by reading the weights back, the sparse path
/// includes standardising it on the host.
pub async fn sparse_training_table(
    data: &Mnist,
    device: &Device,
    kind: ModelKind,
    densities: &[f64],
    steps: usize,
) -> Result<Vec<SparseTrainingRow>, SparseBenchError> {
    use crate::base::rng::Rng;
    use crate::training::sparse::SparseTrainer;
    let device = device.clone().autodiff();
    let config = TrainConfig::new();
    let n = data.train.len();
    let batch = |i: usize| -> Vec<usize> {
        (0..config.batch_size)
            .map(|j| (i * config.batch_size + j) % n)
            .collect()
    };
    let mut rows = Vec::with_capacity(densities.len());
    for &density in densities {
        let model: Net = init_model(kind, 0, &device);
        let mut mask = Mask::dense_for(&model);
        let mut rng = Rng::for_purpose(0, "bench-sparse-training");
        for layer in &mut mask.layers {
            layer
                .keep
                .iter_mut()
                .for_each(|k| *k = rng.uniform() < density);
        }
        let weights = read_weights(&model).await?;
        let stages = model.stages().unwrap_or_default();
        let mut sparse = SparseTrainer::new(&stages, &weights, Some(&mask), &config.optimizer())?;
        let (mut stepper, mut model) = Stepper::new(model, Some(&mask), &config, &device);
        let mut dense_seconds = 0.0;
        for (round, count) in [(0, WARM_UP_STEPS), (1, steps)] {
            let started = Instant::now();
            for i in 0..count {
                let (x, y) = batch_tensors(&data.train, &batch(i), &device);
                model = stepper.step(model, x, y, config.learning_rate);
            }
            read_weights(&model).await?;
            if round == 1 {
                dense_seconds = started.elapsed().as_secs_f64();
            }
        }
        let mut sparse_seconds = 0.0;
        for (round, count) in [(0, WARM_UP_STEPS), (1, steps)] {
            let started = Instant::now();
            for i in 0..count {
                let indices = batch(i);
                let images = data.train.standardised(&indices);
                let labels: Vec<u8> = indices.iter().map(|&i| data.train.labels[i]).collect();
                sparse.step(&images, &labels, config.learning_rate)?;
            }
            if round == 1 {
                sparse_seconds = started.elapsed().as_secs_f64();
            }
        }
        rows.push(SparseTrainingRow {
            density,
            kept_weights: sparse.kept(),
            dense_steps_per_second: steps as f64 / dense_seconds,
            sparse_steps_per_second: steps as f64 / sparse_seconds,
        });
    }
    Ok(rows)
}
