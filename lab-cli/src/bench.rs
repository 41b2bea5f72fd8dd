//! `lth bench`: training throughput of LeNet-300-100 per backend.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lab_core::base::backend::BackendKind;
use lab_core::base::data::DatasetKind;
use lab_core::base::data::Mnist;
use lab_core::base::model::ModelKind;
use lab_core::methods::dst::Method;
use lab_core::report::bench::{INFERENCE_BATCHES, INFERENCE_DENSITIES, break_even_density};

use crate::args::BackendArg;
use crate::data::load_data;

#[derive(Args)]
pub struct BenchArgs {
    /// Backends to measure, repeatable (default: all compiled in).
    #[arg(long)]
    backend: Vec<BackendArg>,
    /// Timed training steps per backend (after warm-up).
    #[arg(long, default_value_t = 300)]
    steps: usize,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also time sparse training (static, SET, RigL, GMP at 10% density, ERK, ΔT = 100)
    /// through the training loop, on the first backend, for this many steps (0 = skip).
    #[arg(long, default_value_t = 1000)]
    dst_steps: usize,
    /// Models of the inference table (dense vs CSR vs compacted structured, densities
    /// 100…1%, batches 1, 60, 1000), on the first backend; `none` skips it.
    #[arg(long, value_delimiter = ',', default_value = "lenet300,lenet5")]
    inference: Vec<String>,
    /// Seconds of timing per cell and method of the inference table.
    #[arg(long, default_value_t = 0.3)]
    inference_budget: f64,
    /// Only the inference table (no training throughput).
    #[arg(long)]
    inference_only: bool,
    /// Packed training: R LeNet-300-100s one after another and as one pack, for each R of
    /// this list, on the first backend (empty = skip).
    #[arg(long, value_delimiter = ',', default_value = "1,5,15")]
    pack: Vec<usize>,
    /// Iterations of each network in the packing table.
    #[arg(long, default_value_t = 300)]
    pack_steps: usize,
    /// Sparse training: LeNet-300-100 and LeNet-5 steps/s masked dense (first backend)
    /// against the host's sparse trainer, at these densities in percent (empty = skip).
    #[arg(long, value_delimiter = ',', default_value = "100,50,20,10,5,2,1")]
    sparse_training: Vec<f64>,
    /// Timed steps of each path per density in the sparse-training table.
    #[arg(long, default_value_t = 300)]
    sparse_steps: usize,
    /// Also write the inference table as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let data = load_data(DatasetKind::Mnist, args.data.clone(), false, true)?;
    let backends: Vec<BackendKind> = if args.backend.is_empty() {
        BackendKind::available()
    } else {
        args.backend.iter().map(|b| b.0).collect()
    };
    if !args.inference_only {
        training(args, &data, &backends)?;
    }
    let models: Vec<ModelKind> = args
        .inference
        .iter()
        .filter(|name| name.as_str() != "none")
        .map(|name| ModelKind::parse(name).ok_or_else(|| anyhow::anyhow!("no model `{name}`")))
        .collect::<Result<_>>()?;
    if let (false, Some(&backend)) = (models.is_empty(), backends.first()) {
        inference(args, &data, backend, &models)?;
    }
    if let (false, false, Some(&backend)) =
        (args.inference_only, args.pack.is_empty(), backends.first())
    {
        packing(args, &data, backend)?;
    }
    if let (false, Some(&backend)) = (args.sparse_training.is_empty(), backends.first()) {
        sparse_training(args, &data, backend)?;
    }
    Ok(())
}

/// Steps/s of masked-dense training against sparse training, per model and density.
fn sparse_training(args: &BenchArgs, data: &Mnist, backend: BackendKind) -> Result<()> {
    let device = backend.device()?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    let densities: Vec<f64> = args.sparse_training.iter().map(|p| p / 100.0).collect();
    for kind in [ModelKind::Lenet300, ModelKind::Lenet5] {
        println!(
            "\nSparse training, {}, Adam, batch 60, random masks, {} steps each: masked dense on {} ({threads} threads) vs sparse on the host (1 thread)",
            kind.name(),
            args.sparse_steps,
            backend.name()
        );
        println!(
            "{:>8} {:>8} {:>15} {:>16} {:>9}",
            "density", "kept", "dense steps/s", "sparse steps/s", "sparse ×"
        );
        let rows = lab_core::block_on(lab_core::report::bench::sparse_training_table(
            data,
            &device,
            kind,
            &densities,
            args.sparse_steps.max(1),
        ))?;
        for r in rows {
            println!(
                "{:>7.1}% {:>8} {:>15.0} {:>16.0} {:>9.2}",
                100.0 * r.density,
                r.kept_weights,
                r.dense_steps_per_second,
                r.sparse_steps_per_second,
                r.speedup()
            );
        }
    }
    Ok(())
}

/// Network-steps/s of R networks trained one after another vs as one pack.
fn packing(args: &BenchArgs, data: &Mnist, backend: BackendKind) -> Result<()> {
    let device = backend.device()?;
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    println!(
        "\nPacked training, LeNet-300-100, Adam, batch 60, IMP round-1 masks, {} iterations a network, {} ({threads} threads)",
        args.pack_steps,
        backend.name()
    );
    println!(
        "{:>4} {:>22} {:>22} {:>9}",
        "R", "alone network-steps/s", "packed network-steps/s", "packed ×"
    );
    for &members in &args.pack {
        let t = lab_core::block_on(lab_core::report::bench::pack_throughput(
            data,
            &device,
            members.max(1),
            args.pack_steps,
        ))?;
        println!(
            "{:>4} {:>22.0} {:>22.0} {:>9.2}",
            t.members,
            t.alone_steps_per_second,
            t.packed_steps_per_second,
            t.speedup()
        );
    }
    Ok(())
}

/// The inference table: µs per forward pass, input and logits on the host.
fn inference(
    args: &BenchArgs,
    data: &Mnist,
    backend: BackendKind,
    models: &[ModelKind],
) -> Result<()> {
    let device = backend.device()?;
    let images = data.test.standardised(&(0..1000).collect::<Vec<_>>());
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all cores".into());
    println!(
        "\nInference, µs per forward pass (host input → host logits); dense and compacted on {} ({threads} threads), CSR on one thread; {} s per cell",
        backend.name(),
        args.inference_budget
    );
    println!(
        "{:<9} {:>5} {:>8} {:>11} {:>11} {:>8} {:>11} {:>8} {:>9}",
        "model",
        "batch",
        "density",
        "dense µs",
        "CSR µs",
        "CSR ×",
        "compact µs",
        "comp. ×",
        "comp. d"
    );
    let mut all = Vec::new();
    for &kind in models {
        let rows = lab_core::block_on(lab_core::report::bench::inference_table(
            kind,
            &device,
            &images,
            &INFERENCE_DENSITIES,
            &INFERENCE_BATCHES,
            args.inference_budget,
            &mut |r| {
                println!(
                    "{:<9} {:>5} {:>7.0}% {:>11.1} {:>11.1} {:>8.2} {:>11.1} {:>8.2} {:>8.1}%",
                    r.model,
                    r.batch,
                    100.0 * r.density,
                    r.dense_us,
                    r.csr_us,
                    r.csr_speedup(),
                    r.compact_us,
                    r.compact_speedup(),
                    100.0 * r.compact_density
                )
            },
        ))?;
        for batch in INFERENCE_BATCHES {
            match break_even_density(&rows, kind.name(), batch) {
                Some(d) => println!(
                    "{}: CSR beats dense below {:.1}% density at batch {batch}",
                    kind.name(),
                    100.0 * d
                ),
                None => println!("{}: CSR never beats dense at batch {batch}", kind.name()),
            }
        }
        all.extend(rows);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&all)?)?;
    }
    Ok(())
}

fn training(args: &BenchArgs, data: &Mnist, backends: &[BackendKind]) -> Result<()> {
    println!(
        "LeNet-300-100, Adam, batch 60, masked (IMP round 1 mask), {} timed steps",
        args.steps
    );
    println!(
        "{:<10} {:>12} {:>14} {:>14}",
        "backend", "ms/step", "samples/s", "first step ms"
    );
    for &backend in backends {
        match backend.device() {
            Ok(device) => {
                let b = lab_core::report::bench::training_throughput(data, &device, args.steps)?;
                println!(
                    "{:<10} {:>12.3} {:>14.0} {:>14.1}",
                    backend.name(),
                    b.ms_per_step,
                    b.samples_per_second,
                    b.first_step_ms
                );
            }
            Err(e) => println!("{:<10} unavailable: {e}", backend.name()),
        }
    }
    if args.dst_steps > 0
        && let Some(&backend) = backends.first()
    {
        let device = backend.device()?;
        println!(
            "\nSparse training, LeNet-300-100 at 10% density (ERK), ΔT = 100, {} steps through the training loop, {}",
            args.dst_steps,
            backend.name()
        );
        println!(
            "{:<8} {:>10} {:>9} {:>16}",
            "method", "ms/step", "updates", "× static"
        );
        let mut static_ms = None;
        for method in Method::ALL {
            let t = lab_core::report::bench::dst_throughput(
                data,
                &device,
                method,
                0.1,
                args.dst_steps,
            )?;
            let baseline = *static_ms.get_or_insert(t.ms_per_step);
            println!(
                "{:<8} {:>10.3} {:>9} {:>16.3}",
                method.name(),
                t.ms_per_step,
                t.updates,
                t.ms_per_step / baseline
            );
        }
    }
    Ok(())
}
