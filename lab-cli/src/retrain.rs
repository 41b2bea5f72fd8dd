//! `lth train --ticket PATH`: retrains a saved ticket on its own data set and data order.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use lab_core::base::backend::BackendKind;
use lab_core::base::data::{DatasetKind, Mnist};
use lab_core::base::model::{ModelKind, Net};
use lab_core::base::ticket::Ticket;
use lab_core::methods::imp::ImpReport;
use lab_core::training::result::RoundResult;
use lab_core::training::train::{Prepared, TrainConfig};

use crate::args::BackendArg;
use crate::data::load_data;
use crate::imp::{ImpArgs, imp_config};
use crate::output::write_report;
use crate::progress::Progress;

/// `lth train --ticket PATH`: retrains a saved ticket on its own data set and data order.
pub fn retrain_ticket(args: &ImpArgs, path: &std::path::Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let ticket = Ticket::from_safetensors(&bytes).with_context(|| format!("{}", path.display()))?;
    let kind = ModelKind::parse(&ticket.provenance.model)
        .with_context(|| format!("unknown model {} in the ticket", ticket.provenance.model))?;
    let config = imp_config(args, 1)?;
    // The ticket's own data set; a different --dataset is refused, not silently used.
    let dataset = DatasetKind::parse(&ticket.provenance.dataset).with_context(|| {
        format!(
            "unknown dataset {} in the ticket",
            ticket.provenance.dataset
        )
    })?;
    if config.dataset != DatasetKind::Mnist && config.dataset != dataset {
        bail!(
            "the ticket was found on {}, not {}",
            dataset.name(),
            config.dataset.name()
        );
    }
    let run = &args.run;
    let data = load_data(dataset, run.data.clone(), run.download, run.quiet)?;
    let data = data.limited(config.train_subset, config.eval_subset);
    // The ticket's replicate seed orders the data, as in the run that found it.
    let train = config.train.for_replicate(ticket.provenance.seed);
    train_ticket(&ticket, kind, &train, &data, run.backend, args)
}

fn train_ticket(
    ticket: &Ticket,
    kind: ModelKind,
    config: &TrainConfig,
    data: &Mnist,
    backend: BackendArg,
    args: &ImpArgs,
) -> Result<()> {
    let device = backend.device()?.autodiff();
    let backend: BackendKind = backend.0;
    let (model, mask) = ticket.instantiate::<Net>(kind, &device)?;
    let prepared = Prepared::new(data, &device);
    let mut progress = Progress::new(args.run.quiet);
    let started = Instant::now();
    // A θk ticket resumes the schedule at iteration k, as its IMP round did.
    let outcome = lab_core::block_on(lab_core::training::train::train_from(
        model,
        Some(&mask),
        &prepared,
        config,
        ticket.rewind_iteration(),
        None,
        &mut progress,
    ))?;
    progress.finish();
    let round = RoundResult::from_training(
        ticket.provenance.round,
        &mask,
        &outcome,
        started.elapsed().as_secs_f64(),
    );
    println!(
        "ticket ({:.2}% of weights, {} rewind, round {} of {}): early stop {}, test acc {:.2}%",
        100.0 * round.weights_remaining,
        ticket.provenance.rewind,
        ticket.provenance.round,
        ticket.provenance.run,
        round.early_stop_iteration,
        100.0 * round.test_accuracy
    );
    let report = ImpReport {
        run: format!("ticket:{}", ticket.provenance.run),
        config: serde_json::json!({ "ticket": ticket.provenance, "train": config }),
        backend: backend.name().into(),
        data_seed: config.data_order_seed(ticket.provenance.seed),
        rounds: vec![round],
        controls: Default::default(),
    };
    write_report(&args.out, &report)
}
