//! `lth reproduce`: a paper's protocol as a predefined sweep (one IMP run per seed, with its
//! controls at the paper's levels), run with the local worker pool and collected into the
//! paper's table and figures. `--print-sweep` gives the sweep file, for `lth sweep submit`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use lab_core::methods::imp::Rewind;
use lab_core::pruning::prune::PruneConfig;
use lab_core::report::reproduce::lth_lenet300;
use lab_core::training::sparse::Kernel;

use crate::args::{BackendArg, KernelArg};
use crate::output::write_file;

#[derive(Args)]
pub struct ReproduceArgs {
    /// The protocol: lth-lenet300.
    protocol: String,
    /// Training iterations per run (the paper: 50000).
    #[arg(long, default_value_t = 2000)]
    budget: usize,
    /// Number of seeds (0, 1, …).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// IMP rounds including the dense one (19 reaches 1.9% remaining).
    #[arg(long, default_value_t = 19)]
    rounds: usize,
    /// % of weights remaining at which the controls run (nearest round).
    #[arg(long, value_delimiter = ',', default_values_t = lab_core::report::reproduce::LTH_LEVELS)]
    levels: Vec<f64>,
    /// flex (CPU, default), ndarray (CPU) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    backend: BackendArg,
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long)]
    download: bool,
    /// Output: reproduction.json, table.md, accuracy/early_stop charts, the sweep's runs/.
    #[arg(long, default_value = "runs/reproduce-lth-lenet300")]
    out: PathBuf,
    /// Seeds trained at once (worker processes); default: one per core.
    #[arg(long)]
    workers: Option<usize>,
    /// Threads per worker (default: the cores shared among the workers).
    #[arg(long)]
    threads: Option<usize>,
    /// Print the protocol's sweep file and stop (to run it with `lth sweep` elsewhere).
    #[arg(long)]
    print_sweep: bool,
    /// How steps compute: dense, sparse or auto (rounds below the break-even density train
    /// sparse; see `lth imp --kernel`). A kernel other than dense names its own runs.
    #[arg(long, default_value_t = KernelArg(Kernel::Dense))]
    kernel: KernelArg,
    #[arg(long)]
    quiet: bool,
}

/// The protocol's sweep file: one `lth imp` per seed, with the protocol's settings.
pub fn sweep_file(args: &ReproduceArgs) -> Result<String> {
    if args.protocol != "lth-lenet300" {
        bail!(
            "unknown protocol {}: available: lth-lenet300",
            args.protocol
        );
    }
    let config = lth_lenet300(args.budget, args.rounds);
    // The error is a String, not a std::error::Error.
    config.validate()?;
    // The command line speaks only of what differs from `lth imp`'s defaults below.
    if config.prune != PruneConfig::default() || config.rewind != Rewind::Init {
        bail!("the protocol's pruning or rewinding is not lth imp's default");
    }
    let seeds: Vec<String> = (0..args.seeds).map(|s| s.to_string()).collect();
    let levels: Vec<String> = args.levels.iter().map(|l| format!("{l:?}")).collect();
    let mut args_table = format!(
        "model = \"{}\"\nrounds = {}\niterations = {}\nlr = {:?}\nbatch-size = {}\n\
         eval-every = {}\nrewind = \"init\"\ncontrol = [\"reinit\", \"random-prune\"]\n\
         control-at = [{}]\nbackend = \"{}\"\n",
        config.model.name(),
        config.rounds,
        config.train.iterations,
        config.train.learning_rate,
        config.train.batch_size,
        config.train.eval_every,
        levels.join(", "),
        args.backend.0.name()
    );
    if args.download {
        args_table += "download = true\n";
    }
    if args.kernel.0 != Kernel::Dense {
        args_table += &format!("kernel = \"{}\"\n", args.kernel.0.name());
    }
    Ok(format!(
        "# Frankle & Carbin (ICLR 2019), LeNet-300-100 on MNIST: IMP with rewinding to θ0, the\n\
         # random-reinit and random-prune controls at the paper's levels, {n} seeds.\n\
         name = \"{protocol}\"\n\n[[part]]\ncommand = \"imp\"\naxes = {{ seed = [{seeds}] }}\n\n\
         [part.args]\n{args_table}",
        n = args.seeds,
        protocol = args.protocol,
        seeds = seeds.join(", "),
    ))
}

pub fn run(args: &ReproduceArgs) -> Result<()> {
    let text = sweep_file(args)?;
    if args.print_sweep {
        print!("{text}");
        return Ok(());
    }
    let file = args.out.join(format!("{}.sweep.toml", args.protocol));
    write_file(&file, &text)?;
    let started = Instant::now();
    let collected = crate::sweep::run_and_collect(
        &file,
        &args.out,
        args.workers,
        args.threads,
        args.data.as_deref(),
        args.quiet,
    )?;
    let table = std::fs::read_to_string(args.out.join("table.md"))?;
    println!("{table}");
    println!(
        "this invocation: {:.0}s wall for {} seeds; {} (per-run times in reproduction.json)",
        started.elapsed().as_secs_f64(),
        collected.collected,
        args.out.display()
    );
    Ok(())
}
