//! `lth`: the LTH Lab command line. This file holds the commands and their dispatch; each
//! command lives in its own module, with the argument types shared by them in `args`.

mod analyze;
mod args;
mod bench;
mod data;
mod dst;
mod export;
mod imp;
mod output;
mod pai;
mod progress;
mod reproduce;
mod retrain;
mod runner;
mod sweep;

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
    /// Write a trained ticket (a round of an IMP run) for inference: dense (weights and
    /// mask), compact (structured: the smaller network) and csr (the sparse engine).
    Export(export::ExportArgs),
    /// Classify the test set with an exported ticket (any format): accuracy, images/s.
    Infer(export::InferArgs),
    /// Grids of runs from a sweep file: plan, run (here, with a worker pool), status,
    /// collect, submit (a Slurm job array, or a Kubernetes Indexed Job).
    Sweep(sweep::SweepArgs),
}

fn main() -> Result<()> {
    dispatch(&Cli::parse().command)
}

fn dispatch(command: &Command) -> Result<()> {
    match command {
        Command::Imp(args) => imp::run(args, args.rounds),
        Command::Train(args) => match &args.ticket {
            Some(path) => retrain::retrain_ticket(args, path),
            None => imp::run(args, 1),
        },
        Command::Bench(args) => bench::run(args),
        Command::Pai(args) => pai::run(args),
        Command::Dst(args) => dst::run(args),
        Command::Reproduce(args) => reproduce::run(args),
        Command::Analyze(args) => analyze::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Export(args) => export::run_export(args),
        Command::Infer(args) => export::run_infer(args),
    }
}

/// A command line of `lth` (without the program name), parsed as the shell would.
fn parse_command(arguments: &[String]) -> Result<Command> {
    let argv = std::iter::once("lth".to_string()).chain(arguments.iter().cloned());
    Ok(Cli::try_parse_from(argv)?.command)
}

/// The runs (content-hashed record names) a command would make, without running it: the
/// commands a sweep may hold.
fn run_names(command: &Command) -> Result<Vec<String>> {
    match command {
        Command::Imp(args) => imp::run_names(args, args.rounds),
        Command::Train(args) => imp::run_names(args, 1),
        Command::Pai(args) => pai::run_names(args),
        Command::Dst(args) => dst::run_names(args),
        _ => anyhow::bail!("a sweep runs imp, train, pai or dst"),
    }
}
