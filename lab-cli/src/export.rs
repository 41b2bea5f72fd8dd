//! `lth export` (a trained ticket as dense, compact or CSR file) and `lth infer` (any of
//! them on the MNIST test set: accuracy and throughput).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use lab_core::base::data::DatasetKind;
use lab_core::base::ticket::Ticket;
use lab_core::deploy::export::{ExportFormat, Loaded, export, infer, load};

use crate::args::BackendArg;
use crate::data::load_data;

#[derive(Args)]
pub struct ExportArgs {
    /// A round's `trained.safetensors` (trained weights and mask), a run directory
    /// (`runs/latest/records/imp-…`), or an output directory holding one IMP run.
    from: PathBuf,
    /// The round of a run directory (default: its last trained round).
    #[arg(long)]
    round: Option<usize>,
    /// Formats to write, comma-separated: dense (weights and mask), compact (the smaller
    /// network without removed units), csr (the sparse engine's file).
    #[arg(long, value_delimiter = ',', default_value = "dense,compact,csr", value_parser = parse_format)]
    format: Vec<ExportFormat>,
    /// Output stem: writes STEM.dense.safetensors, STEM.compact.safetensors, STEM.csr.safetensors.
    #[arg(long, default_value = "ticket")]
    out: PathBuf,
}

#[derive(Args)]
pub struct InferArgs {
    /// A file written by `lth export` (any format; told apart by its metadata).
    file: PathBuf,
    /// Images per forward pass.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Backend of the dense and compact formats (CSR runs on the host).
    #[arg(long, default_value = "flex")]
    backend: BackendArg,
    #[arg(long)]
    data: Option<PathBuf>,
    /// Download the data set into the cache if no local copy is found.
    #[arg(long)]
    download: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn parse_format(text: &str) -> Result<ExportFormat, String> {
    ExportFormat::parse(text).ok_or_else(|| format!("`{text}` is not dense, compact or csr"))
}

/// The trained-weights file of `from`: itself, or a run directory's round.
fn trained_file(from: &Path, round: Option<usize>) -> Result<PathBuf> {
    if from.is_file() {
        if round.is_some() {
            bail!("--round needs a run directory, not a file");
        }
        return Ok(from.to_path_buf());
    }
    // An output directory (`runs/latest`) with one IMP run in its records stands for it.
    let runs: Vec<PathBuf> = std::fs::read_dir(from.join("records"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("imp-"))
        })
        .collect();
    let from = match runs.as_slice() {
        [only] => only.as_path(),
        [] => from,
        _ => bail!(
            "{} holds several IMP runs: name one of {}",
            from.display(),
            runs.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let file = |r: usize| {
        from.join(format!("round-{r:02}"))
            .join("trained.safetensors")
    };
    match round {
        Some(r) => Ok(file(r)),
        None => (0..1000)
            .take_while(|&r| file(r).is_file())
            .last()
            .map(file)
            .with_context(|| format!("{} has no round-NN/trained.safetensors", from.display())),
    }
}

pub fn run_export(args: &ExportArgs) -> Result<()> {
    let path = trained_file(&args.from, args.round)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let ticket =
        Ticket::from_safetensors(&bytes).with_context(|| format!("reading {}", path.display()))?;
    let device = lab_core::base::backend::BackendKind::Ndarray.device()?;
    println!(
        "{} round {} ({}, seed {}): {:.2}% of weights",
        ticket.provenance.model,
        ticket.provenance.round,
        ticket.provenance.run,
        ticket.provenance.seed,
        100.0 * ticket.mask.density()
    );
    for &format in &args.format {
        let out = PathBuf::from(format!(
            "{}.{}.safetensors",
            args.out.display(),
            format.name()
        ));
        let file = export(&ticket, format, &device)?;
        std::fs::write(&out, &file).with_context(|| format!("writing {}", out.display()))?;
        println!(
            "{:<8} {:>10} bytes  {}",
            format.name(),
            file.len(),
            out.display()
        );
    }
    Ok(())
}

pub fn run_infer(args: &InferArgs) -> Result<()> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let device = args.backend.device()?;
    let loaded: Loaded =
        load(&bytes, &device).with_context(|| format!("reading {}", args.file.display()))?;
    let provenance = loaded.provenance().clone();
    let dataset = DatasetKind::parse(&provenance.dataset).unwrap_or(DatasetKind::Mnist);
    let data = load_data(dataset, args.data.clone(), args.download, args.json)?;
    let report = lab_core::block_on(infer(&loaded, &data.test, args.batch, &device))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let engine = match loaded.format() {
        ExportFormat::Csr => "CSR engine, host, 1 thread".to_string(),
        _ => format!("{} backend", args.backend.0.name()),
    };
    println!(
        "{} ({} format, {} weights multiplied; {} round {}, seed {})",
        args.file.display(),
        loaded.format().name(),
        loaded.weights_used(),
        provenance.model,
        provenance.round,
        provenance.seed
    );
    println!(
        "test accuracy {:.2}% ({}/{}), {:.0} images/s at batch {} on the {engine}",
        100.0 * report.accuracy,
        report.correct,
        report.examples,
        report.images_per_second,
        report.batch
    );
    Ok(())
}
