//! `lth`: the LTH Lab command line. This file holds the commands and their dispatch; each
//! command lives in its own module, with the argument types shared by them in `args`.

mod analyze;
mod args;
mod bench;
mod data;
mod dst;
mod imp;
mod output;
mod pai;
mod progress;
mod reproduce;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lth",
    version,
    about = "Lottery Ticket Hypothesis experiments on burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Iterative magnitude pruning: train, prune, rewind, repeat; optional controls.
    Imp(imp::ImpArgs),
    /// Train one network (dense) and report its curve: an IMP run of one round.
    Train(imp::ImpArgs),
    /// Print training throughput (samples/s) of LeNet-300-100 per backend.
    Bench(bench::BenchArgs),
    /// Pruning at initialisation: score the weights (--score), prune to density
    /// 10^-C, check layer collapse, train. Lists sweep: --score snip,synflow --compression 0:3:0.25
    Pai(pai::PaiArgs),
    /// Sparse training with a moving mask: static, set, rigl (from a sparse start) or gmp
    /// (dense start); reports the ITOP rate Rs. Lists sweep: --method set,rigl --density 0.1,0.05
    Dst(dst::DstArgs),
    /// Reproduce a paper's result; `lth-lenet300`: Frankle & Carbin's LeNet-300-100 figures.
    Reproduce(reproduce::ReproduceArgs),
    /// Analyses of tickets: `overlap` (do runs keep the same connections?).
    Analyze(analyze::AnalyzeArgs),
}

fn main() -> Result<()> {
    match &Cli::parse().command {
        Command::Imp(args) => imp::run(args, args.rounds),
        Command::Train(args) => imp::run(args, 1),
        Command::Bench(args) => bench::run(args),
        Command::Pai(args) => pai::run(args),
        Command::Dst(args) => dst::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Analyze(args) => analyze::run(args),
    }
}
