//! `lth bench`: training throughput of LeNet-300-100 per backend.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use lab_core::backend::BackendKind;
use lab_core::data::DatasetKind;
use lab_core::dst::Method;

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
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let data = load_data(DatasetKind::Mnist, args.data.clone(), false, true)?;
    let backends: Vec<BackendKind> = if args.backend.is_empty() {
        BackendKind::available()
    } else {
        args.backend.iter().map(|b| b.0).collect()
    };
    println!(
        "LeNet-300-100, Adam, batch 60, masked (IMP round 1 mask), {} timed steps",
        args.steps
    );
    println!(
        "{:<10} {:>12} {:>14} {:>14}",
        "backend", "ms/step", "samples/s", "first step ms"
    );
    for &backend in &backends {
        match backend.device() {
            Ok(device) => {
                let b = lab_core::bench::training_throughput(&data, &device, args.steps)?;
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
            let t = lab_core::bench::dst_throughput(&data, &device, method, 0.1, args.dst_steps)?;
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
