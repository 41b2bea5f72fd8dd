//! `lth analyze transfer`: do tickets found on one data set win on another?

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use lab_core::analyses::transfer::{TransferExperiment, accuracy_chart, run_transfer, table};
use lab_core::base::model::Net;
use lab_core::base::store::DirStore;
use lab_core::training::train::Prepared;

use crate::args::{DatasetArg, TrainingArgs, parse_rewind};
use crate::data::load_data;
use crate::output::{write_chart, write_file, write_json};
use crate::progress::Progress;

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
    let device = t.backend.device()?;
    let load = |kind| -> Result<Prepared> {
        let data = load_data(kind, t.data.clone(), t.download, t.quiet)?;
        Ok(Prepared::new(
            &data.limited(t.train_subset, t.eval_subset),
            &device,
        ))
    };
    let (first, second) = (load(args.source.0)?, load(args.target.0)?);
    let mut store = DirStore::new(args.out.join("records"));
    let mut progress = Progress::new(t.quiet);
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
        let (source_data, target_data) = if source == args.source.0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        progress.line(format!("{}: {}", experiment.label(), experiment.run_name()));
        let report = lab_core::block_on(run_transfer::<Net>(
            &experiment,
            source_data,
            target_data,
            &device,
            &mut store,
            &mut progress,
        ))?;
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
    progress.finish();
    write_file(&args.out.join("table.md"), &text)?;
    print!("{text}");
    eprintln!(
        "done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
