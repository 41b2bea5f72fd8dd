//! `lth analyze early-bird`: does the ticket's mask emerge early in dense training?

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lab_core::analyses::early_bird::{
    Criterion, EarlyBirdExperiment, EarlyBirdRun, Retrain, distance_chart, table,
};

use crate::args::TrainingArgs;
use crate::output::{print_done, write_chart, write_file, write_json};
use crate::runner::Runner;

#[derive(Args)]
pub struct EarlyBirdArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// The IMP round whose per-layer counts the masks have (5: 33% of LeNet-300-100).
    #[arg(long, default_value_t = 5)]
    round: usize,
    /// Draw a mask every this many iterations.
    #[arg(long, default_value_t = 100)]
    draw_every: usize,
    /// ε: the early bird is the first draw within ε of each of the --window − 1 draws before
    /// it (the reference: 0.1 with draws one epoch apart), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.1,0.05,0.02")]
    epsilon: Vec<f64>,
    /// Draws compared (the reference's FIFO: 5, the new one and the four before it).
    #[arg(long, default_value_t = 5)]
    window: usize,
    /// How the early-bird ticket is trained, comma-separated: init (from θ0, as IMP's
    /// tickets) and/or continue (from its weights at the draw, on to the end).
    #[arg(long, value_delimiter = ',', default_value = "init,continue")]
    retrain: Vec<String>,
    /// Global instead of per-layer magnitude pruning (IMP's rule).
    #[arg(long)]
    global: bool,
    /// Output: report.json, table.md, distance chart, records/.
    #[arg(long, default_value = "runs/early-bird")]
    out: PathBuf,
}

pub fn run(args: &EarlyBirdArgs) -> Result<()> {
    let t = &args.training;
    let mut prune = lab_core::pruning::prune::PruneConfig::default();
    if args.global {
        prune.scope = lab_core::pruning::prune::PruneScope::Global;
    }
    let experiment = EarlyBirdExperiment::new()
        .with_model(t.model.0)
        .with_dataset(t.dataset.0)
        .with_train(t.train_config())
        .with_seed(t.seed)
        .with_round(args.round)
        .with_prune(prune)
        .with_draw_every(args.draw_every)
        .with_train_subset(t.train_subset)
        .with_eval_subset(t.eval_subset);
    // The error is a String, not a std::error::Error.
    experiment.validate()?;
    let criteria: Vec<Criterion> = args
        .epsilon
        .iter()
        .map(|&epsilon| Criterion {
            epsilon,
            window: args.window,
        })
        .collect();
    let retrains = args
        .retrain
        .iter()
        .map(|name| match name.as_str() {
            "init" => Ok(Retrain::Init),
            "continue" => Ok(Retrain::Continue),
            other => anyhow::bail!("--retrain {other}: init or continue"),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut runner = Runner::new(&t.run, &args.out)?;
    let started = Instant::now();
    let run = EarlyBirdRun {
        experiment,
        criteria,
        retrains,
    };
    let report = runner.run(&run, |_| Ok(()))?;
    runner.progress.finish();
    write_json(&args.out.join("report.json"), &report)?;
    let text = table(&report);
    write_file(&args.out.join("table.md"), &text)?;
    write_chart(&args.out, "distance", &distance_chart(&report))?;
    println!("{text}");
    print_done(started, &args.out);
    Ok(())
}
