//! `lth analyze transfer`: do tickets found on one data set win on another?

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lab_core::analyses::transfer::{TransferExperiment, accuracy_chart, table};

use crate::args::{DatasetArg, TrainingArgs, parse_rewind};
use crate::output::{print_done, write_chart, write_file, write_json};
use crate::runner::Runner;

#[derive(Args)]
pub struct TransferArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Where tickets are found (--dataset is ignored).
    #[arg(long, default_value = "mnist")]
    source: DatasetArg,
    /// Where they are trained.
    #[arg(long, default_value = "fashion-mnist")]
    target: DatasetArg,
    /// Also the reverse direction (target → source).
    #[arg(long)]
    both_ways: bool,
    /// IMP rounds on each data set, the dense one included.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Rewind point of the tickets: init, an iteration K, or a percentage like 2%.
    #[arg(long, default_value = "init", value_parser = parse_rewind)]
    rewind: lab_core::methods::imp::Rewind,
    /// Output: report.json, table.md, one accuracy chart per direction, records/.
    #[arg(long, default_value = "runs/transfer")]
    out: PathBuf,
}

pub fn run(args: &TransferArgs) -> Result<()> {
    let t = &args.training;
    let mut directions = vec![(args.source.0, args.target.0)];
    if args.both_ways {
        directions.push((args.target.0, args.source.0));
    }
    let mut runner = Runner::new(&t.run, &args.out)?;
    let started = Instant::now();
    let mut reports = Vec::new();
    let mut text = String::new();
    for (source, target) in directions {
        let experiment = TransferExperiment::new()
            .with_model(t.model.0)
            .with_source(source)
            .with_target(target)
            .with_train(t.train_config())
            .with_rewind(args.rewind)
            .with_rounds(args.rounds)
            .with_seed(t.seed)
            .with_train_subset(t.train_subset)
            .with_eval_subset(t.eval_subset);
        // The error is a String, not a std::error::Error.
        experiment.validate()?;
        let label = format!("{}: {}", experiment.label(), experiment.run_name());
        runner.progress.line(label);
        let report = runner.run(&experiment, |_| Ok(()))?;
        write_chart(
            &args.out,
            &format!("accuracy-{}-to-{}", report.source, report.target),
            &accuracy_chart(&report),
        )?;
        text += &table(&report);
        text += "\n";
        reports.push(report);
        write_json(&args.out.join("report.json"), &reports)?;
    }
    runner.progress.finish();
    write_file(&args.out.join("table.md"), &text)?;
    print!("{text}");
    print_done(started, &args.out);
    Ok(())
}
