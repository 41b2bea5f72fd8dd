//! Training throughput measurement, shared by `lth bench` and `cargo bench`.

use burn::tensor::Device;
use web_time::Instant;

use crate::data::Mnist;
use crate::mask::Mask;
use crate::model::{ModelKind, Net, init_model};
use crate::params::read_weights;
use crate::prune::{PruneConfig, magnitude};
use crate::train::{Pause, Stepper, TrainConfig, batch_tensors};

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
) -> Result<Throughput, crate::error::DeviceError> {
    pollster::block_on(training_throughput_async(data, device, steps, &mut || None))
}

/// [`training_throughput`] for async callers: synchronises through async reads (browsers
/// cannot block on the GPU) and calls `pause` between steps (to yield to an event loop).
pub async fn training_throughput_async(
    data: &Mnist,
    device: &Device,
    steps: usize,
    pause: &mut dyn FnMut() -> Option<Pause<'static>>,
) -> Result<Throughput, crate::error::DeviceError> {
    let device = device.clone().autodiff();
    let config = TrainConfig::new();
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
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
    for i in 1..WARM_UP_STEPS {
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
        let (x, y) = batch_tensors(&data.train, &batch(WARM_UP_STEPS + i), &device);
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
    pub method: crate::dst::Method,
    pub ms_per_step: f64,
    /// Mask updates in the timed run (each syncs the device and reads weights back).
    pub updates: usize,
}

/// Times `steps` LeNet-300-100 training steps of `method` at `density` (ERK, ΔT = 100, the
/// paper defaults) through [`crate::train::train_scheduled`], the loop every run uses, with
/// evaluation only at the start and end on 100 images (so the figure is training, with
/// its mask updates, plus two evaluations of 100 images). The first 20 steps, with their one-time costs, run before the clock.
#[cfg(feature = "native")]
pub fn dst_throughput(
    data: &Mnist,
    device: &Device,
    method: crate::dst::Method,
    density: f64,
    steps: usize,
) -> Result<DstThroughput, crate::train::TrainError> {
    use crate::dst::{DstConfig, DstPolicy, random_mask};
    use crate::train::{Prepared, Schedule, Silent, train_scheduled};
    let device = device.clone().autodiff();
    let prepared = Prepared::new(&data.subset(data.train.len(), 100, 100), &device);
    let model: Net = init_model(ModelKind::Lenet300, 0, &device);
    let dense = Mask::dense_for(&model);
    let config = DstConfig::new().with_method(method).with_density(density);
    let densities = config.densities(&dense)?;
    let mask = match method {
        crate::dst::Method::Gmp => dense.clone(),
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
