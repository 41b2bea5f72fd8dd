//! `lth analyze lmc`: linear mode connectivity and instability against the split point k,
//! for the dense network and for IMP tickets rewound to k.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Args;
use lab_core::analyses::lmc::{
    LmcExperiment, LmcResult, LmcRun, instability_chart, path_chart, table, ticket_accuracy_chart,
};
use lab_core::methods::imp::Control;

use crate::args::TrainingArgs;
use crate::output::{print_done, write_chart, write_file, write_json};
use crate::runner::Runner;

#[derive(Args)]
pub struct LmcArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Split points k, comma-separated: iterations, or percentages of training like 2%.
    #[arg(long, value_delimiter = ',', default_value = "0,1%,2%,5%,10%,20%")]
    k: Vec<String>,
    /// Networks, comma-separated: 0 = dense; R = the ticket of IMP round R rewound to k.
    #[arg(long, value_delimiter = ',', default_value = "0")]
    ticket_round: Vec<usize>,
    /// For each ticket round, which networks of that sparsity: ticket, reinit (its mask,
    /// fresh weights), random-prune (a random mask of its counts on θk); comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "ticket")]
    network: Vec<String>,
    /// Data-order seeds of the two copies after the split (default: 2·seed+1, 2·seed+2).
    #[arg(long, value_delimiter = ',', num_args = 2)]
    copy_seeds: Option<Vec<u64>>,
    /// Networks evaluated on the line between the copies, ends included.
    #[arg(long, default_value_t = 11)]
    points: usize,
    /// Output: report.json, table.md, charts (instability, path, tickets), records/.
    #[arg(long, default_value = "runs/lmc")]
    out: PathBuf,
}

fn parse_k(text: &str, iterations: usize) -> Result<usize> {
    Ok(match text.strip_suffix('%') {
        Some(percent) => {
            (percent.trim().parse::<f64>()? / 100.0 * iterations as f64).round() as usize
        }
        None => text.trim().parse()?,
    })
}

pub fn run(args: &LmcArgs) -> Result<()> {
    let t = &args.training;
    let mut ks = args
        .k
        .iter()
        .map(|k| parse_k(k, t.iterations))
        .collect::<Result<Vec<usize>>>()?;
    ks.sort_unstable();
    ks.dedup();
    let copy_seeds = match args.copy_seeds.as_deref() {
        Some([a, b]) if a == b => bail!("--copy-seeds {a},{b}: equal seeds train equal copies"),
        Some([a, b]) => Some([*a, *b]),
        _ => None,
    };
    let mut branches: Vec<Option<Control>> = Vec::new();
    for name in &args.network {
        branches.push(match name.as_str() {
            "ticket" => None,
            "reinit" => Some(Control::Reinit),
            "random-prune" | "random" => Some(Control::RandomPrune),
            other => bail!("--network {other}: ticket, reinit or random-prune"),
        });
    }
    let base = LmcExperiment::new()
        .with_model(t.model.0)
        .with_dataset(t.dataset.0)
        .with_train(t.train_config())
        .with_seed(t.seed)
        .with_copy_seeds(copy_seeds)
        .with_points(args.points)
        .with_train_subset(t.train_subset)
        .with_eval_subset(t.eval_subset);
    let mut experiments: Vec<LmcExperiment> = Vec::new();
    for &round in &args.ticket_round {
        if round == 0 {
            experiments.push(base.clone());
            continue;
        }
        for &branch in &branches {
            experiments.push(base.clone().with_ticket_round(round).with_branch(branch));
        }
    }
    for experiment in &experiments {
        // The error is a String, not a std::error::Error.
        experiment.validate()?;
    }
    let mut runner = Runner::new(&t.run, &args.out)?;
    let started = Instant::now();
    let mut results: Vec<LmcResult> = Vec::new();
    for experiment in &experiments {
        for &k in &ks {
            runner
                .progress
                .set_prefix(format!("{} k={k}", experiment.label()));
            let run = LmcRun {
                experiment: experiment.clone(),
                ks: vec![k],
            };
            let result = runner.run(&run, |_| Ok(()))?.remove(0);
            runner.progress.line(format!(
                "{:>16} k={:<6} copies {:.2}% / {:.2}%  error barrier {:+.2} points",
                result.label,
                k,
                100.0 * result.copies[0].test_accuracy,
                100.0 * result.copies[1].test_accuracy,
                100.0 * result.error_barrier
            ));
            results.push(result);
            write_json(&args.out.join("report.json"), &results)?;
        }
    }
    runner.progress.finish();
    let text = table(&results);
    write_file(&args.out.join("table.md"), &text)?;
    write_chart(&args.out, "instability", &instability_chart(&results))?;
    for experiment in &experiments {
        let of: Vec<LmcResult> = results
            .iter()
            .filter(|r| r.label == experiment.label())
            .cloned()
            .collect();
        let name = format!("path-{}", experiment.label().replace(' ', "-"));
        write_chart(&args.out, &name, &path_chart(&of))?;
    }
    if results.iter().any(|r| r.ticket.is_some()) {
        // The dense network's accuracy at the end of training: its copies split at the
        // smallest k.
        let dense = results
            .iter()
            .filter(|r| r.ticket.is_none())
            .min_by_key(|r| r.k)
            .map(|r| (r.copies[0].test_accuracy + r.copies[1].test_accuracy) / 2.0);
        write_chart(
            &args.out,
            "tickets",
            &ticket_accuracy_chart(&results, dense),
        )?;
    }
    println!("{text}");
    print_done(started, &args.out);
    Ok(())
}
