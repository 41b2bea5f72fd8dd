//! Training throughput measurement, shared by `lth bench` and `cargo bench`.

use burn::tensor::Device;
use web_time::Instant;

use crate::data::Mnist;
use crate::mask::Mask;
use crate::model::{Mlp, ModelKind, init_model};
use crate::params::read_weights;
use crate::prune::{PruneConfig, magnitude};
use crate::train::{Stepper, TrainConfig, batch_tensors};

#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub ms_per_step: f64,
    pub samples_per_second: f64,
    /// The first step alone (shader compilation and autotuning on GPU backends).
    pub first_step_ms: f64,
}

/// Times `steps` LTH LeNet-300-100 training steps (Adam, batch 60) with a round-1 IMP mask,
/// after 20 warm-up steps; the device is synced before the clock stops.
pub fn training_throughput(data: &Mnist, device: &Device, steps: usize) -> Throughput {
    let device = device.clone().autodiff();
    let config = TrainConfig::new();
    let model: Mlp = init_model(ModelKind::Lenet300, 0, &device);
    let weights = pollster::block_on(read_weights(&model));
    let mask = magnitude(&Mask::dense_for(&model), &weights, &PruneConfig::default());
    let (mut stepper, mut model) = Stepper::new(model, Some(&mask), &config, &device);
    let n = data.train.len();
    let batch =
        |i: usize| -> Vec<usize> { (0..config.batch_size).map(|j| (i * 60 + j) % n).collect() };

    let started = Instant::now();
    let (x, y) = batch_tensors(&data.train, &batch(0), &device);
    model = stepper.step(model, x, y, config.learning_rate);
    device.sync().expect("device sync");
    let first_step_ms = started.elapsed().as_secs_f64() * 1e3;
    for i in 1..20 {
        let (x, y) = batch_tensors(&data.train, &batch(i), &device);
        model = stepper.step(model, x, y, config.learning_rate);
    }
    device.sync().expect("device sync");
    let started = Instant::now();
    for i in 0..steps {
        let (x, y) = batch_tensors(&data.train, &batch(20 + i), &device);
        model = stepper.step(model, x, y, config.learning_rate);
    }
    device.sync().expect("device sync");
    let seconds = started.elapsed().as_secs_f64();
    drop(model);
    Throughput {
        ms_per_step: seconds * 1e3 / steps as f64,
        samples_per_second: (steps * config.batch_size) as f64 / seconds,
        first_step_ms,
    }
}
