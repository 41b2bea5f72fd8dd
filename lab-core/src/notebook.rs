//! Notebooks (evcxr Jupyter): blocking, non-generic entry points and rich display.
//!
//! evcxr compiles every cell as a crate of its own; calling a generic such as
//! `run_imp::<Net>` from a cell would monomorphise burn's training loop in each cell. The
//! functions here are instantiated once, in lab-core, so cells stay quick to compile.
//!
//! Display: a value left at the end of a cell is shown through its `evcxr_display` method:
//! charts as inline SVG, reports and tables as HTML. Progress prints as the run goes.

use std::path::PathBuf;

use crate::backend::BackendKind;
use crate::data::native::{DataSource, load};
use crate::data::{DataError, DatasetKind, Mnist};
use crate::imp::{Control, ImpConfig, ImpError, ImpObserver, run_experiment};
use crate::model::Net;
use crate::pai::{PaiError, PaiExperiment, PaiResult, run_pai};
use crate::plot::{Chart, to_svg};
use crate::record::{ImpReport, RoundResult};
use crate::store::DirStore;
use crate::train::{EvalPoint, Observer, Prepared};

/// Loads MNIST or Fashion-MNIST from the usual places (`LTH_DATA`, `data/` or `shared/`
/// beside the notebook or an ancestor, the cache), downloading into the cache if allowed.
pub fn load_dataset(kind: DatasetKind) -> Result<Mnist, DataError> {
    let source = DataSource {
        explicit_dir: None,
        allow_download: cfg!(feature = "download"),
    };
    let (data, dir) = load(kind, &source, &mut |_, _, _| {})?;
    println!(
        "{}: {} train / {} validation / {} test images from {}",
        kind.name(),
        data.train.len(),
        data.validation.len(),
        data.test.len(),
        dir.display()
    );
    Ok(data)
}

/// Where notebook runs keep their records (`runs/` beside the notebook): re-running a cell
/// reads finished rounds back instead of training them again.
pub fn records_dir() -> PathBuf {
    std::env::var_os("LTH_NOTEBOOK_RUNS").map_or_else(|| PathBuf::from("runs"), PathBuf::from)
}

fn cpu() -> (crate::burn::tensor::Device, BackendKind) {
    // Flex is the faster CPU backend where it is compiled in; NdArray otherwise.
    for kind in [BackendKind::Flex, BackendKind::Ndarray] {
        if let Ok(device) = kind.device() {
            return (device, kind);
        }
    }
    panic!("lab-core was built without a CPU backend: enable `ndarray` or `flex`")
}

/// Runs (or reads back) an IMP experiment with its controls on the CPU, printing progress.
pub fn imp(config: &ImpConfig, controls: &[Control], data: &Mnist) -> Result<ImpReport, ImpError> {
    let (device, backend) = cpu();
    let mut store = DirStore::new(records_dir());
    let mut progress = Progress::default();
    crate::block_on(run_experiment(
        config,
        controls,
        None,
        data,
        &device,
        backend.name(),
        &mut store,
        &mut progress,
        &mut |_| {},
    ))
}

/// Runs (or reads back) one pruning-at-initialisation experiment on the CPU.
pub fn pai(experiment: &PaiExperiment, data: &Mnist) -> Result<PaiResult, PaiError> {
    let (device, backend) = cpu();
    let data = data.limited(experiment.train_subset, experiment.eval_subset);
    let prepared = Prepared::new(&data, &device);
    let mut store = DirStore::new(records_dir());
    let mut progress = Progress::default();
    let result = crate::block_on(run_pai::<Net>(
        experiment,
        &prepared,
        &device,
        backend.name(),
        &mut store,
        &mut progress,
    ))?;
    println!(
        "{} at {:.2}% remaining: {}",
        result.score,
        100.0 * result.weights_remaining,
        match &result.training {
            Some(t) => format!("test accuracy {:.2}%", 100.0 * t.test_accuracy),
            None => "layer collapse (not trained)".into(),
        }
    );
    Ok(result)
}

/// Runs (or reads back) one sparse-training experiment (static, SET, RigL, GMP) on the CPU.
pub fn dst(
    experiment: &crate::dst::DstExperiment,
    data: &Mnist,
) -> Result<crate::dst::DstResult, crate::dst::DstError> {
    let (device, backend) = cpu();
    let data = data.limited(experiment.train_subset, experiment.eval_subset);
    let prepared = Prepared::new(&data, &device);
    let mut store = DirStore::new(records_dir());
    let mut progress = Progress::default();
    let result = crate::block_on(crate::dst::run_dst::<Net>(
        experiment,
        None,
        &prepared,
        &device,
        backend.name(),
        &mut store,
        &mut progress,
    ))?;
    println!(
        "{}: Rs {:.2}%, test accuracy {:.2}% (early stop {}), training FLOPs {:.3}× dense",
        experiment.label(),
        100.0 * result.explored,
        100.0 * result.training.test_accuracy,
        result.training.early_stop_iteration,
        result.relative_training_flops
    );
    Ok(result)
}

/// Runs (or reads back) the instability of `experiment` split at each k, on the CPU.
pub fn lmc(
    experiment: &crate::lmc::LmcExperiment,
    ks: &[usize],
    data: &Mnist,
) -> Result<Vec<crate::lmc::LmcResult>, crate::lmc::LmcError> {
    let (device, _) = cpu();
    let data = data.limited(experiment.train_subset, experiment.eval_subset);
    let prepared = Prepared::new(&data, &device);
    let mut store = DirStore::new(records_dir());
    let mut progress = Progress::default();
    let mut results = Vec::with_capacity(ks.len());
    for &k in ks {
        let result = crate::block_on(crate::lmc::run_lmc::<Net>(
            experiment,
            k,
            &prepared,
            &device,
            &mut store,
            &mut progress,
        ))?;
        println!(
            "{} k = {k}: copies {:.2}% and {:.2}%, error barrier {:+.2} points",
            result.label,
            100.0 * result.copies[0].test_accuracy,
            100.0 * result.copies[1].test_accuracy,
            100.0 * result.error_barrier
        );
        results.push(result);
    }
    Ok(results)
}

/// Runs (or reads back) an early-bird experiment on the CPU.
pub fn early_bird(
    experiment: &crate::early_bird::EarlyBirdExperiment,
    criteria: &[crate::early_bird::Criterion],
    retrains: &[crate::early_bird::Retrain],
    data: &Mnist,
) -> Result<crate::early_bird::EarlyBirdReport, crate::early_bird::EarlyBirdError> {
    let (device, _) = cpu();
    let data = data.limited(experiment.train_subset, experiment.eval_subset);
    let prepared = Prepared::new(&data, &device);
    let mut store = DirStore::new(records_dir());
    crate::block_on(crate::early_bird::run_early_bird::<Net>(
        experiment,
        criteria,
        retrains,
        &prepared,
        &device,
        &mut store,
        &mut Progress::default(),
    ))
}

/// Runs (or reads back) a transfer experiment on the CPU (both data sets given whole).
pub fn transfer(
    experiment: &crate::transfer::TransferExperiment,
    source: &Mnist,
    target: &Mnist,
) -> Result<crate::transfer::TransferReport, crate::transfer::TransferError> {
    let (device, _) = cpu();
    let limit = |data: &Mnist| {
        Prepared::new(
            &data.limited(experiment.train_subset, experiment.eval_subset),
            &device,
        )
    };
    let (source, target) = (limit(source), limit(target));
    let mut store = DirStore::new(records_dir());
    crate::block_on(crate::transfer::run_transfer::<Net>(
        experiment,
        &source,
        &target,
        &device,
        &mut store,
        &mut Progress::default(),
    ))
}

/// The weight histograms of round `round` of the IMP run `config` names, from the records.
pub fn histograms(
    config: &ImpConfig,
    round: usize,
    bins: usize,
) -> Result<crate::histogram::RoundHistograms, ImpError> {
    let store = DirStore::new(records_dir());
    crate::histogram::imp_round_histograms(&store, &config.run_name(), round, bins)
}

/// The mask of the ticket of round `round` of the IMP run `config` names, from the records.
pub fn ticket_mask(config: &ImpConfig, round: usize) -> Result<crate::mask::Mask, ImpError> {
    let store = DirStore::new(records_dir());
    let key = crate::imp::RunKeys {
        run: config.run_name(),
    }
    .ticket(round);
    crate::imp::load_blob(&store, &key)?
        .map(|ticket| ticket.mask)
        .ok_or(ImpError::Store(crate::store::StoreError::Missing { key }))
}

/// The trained network of round `round` of the IMP run `config` names (trained weights and
/// the round's mask), from the records: what `lth export` writes for inference.
pub fn trained_ticket(config: &ImpConfig, round: usize) -> Result<crate::ticket::Ticket, ImpError> {
    let store = DirStore::new(records_dir());
    let key = crate::imp::RunKeys {
        run: config.run_name(),
    }
    .trained(round);
    crate::imp::load_blob(&store, &key)?
        .ok_or(ImpError::Store(crate::store::StoreError::Missing { key }))
}

/// Prints a line per round and a few evaluations per run (cells show output as it comes).
#[derive(Default)]
pub struct Progress {
    evals_in_run: usize,
}

impl Observer for Progress {
    fn on_eval(&mut self, point: &EvalPoint) {
        self.evals_in_run += 1;
        if self.evals_in_run.is_power_of_two() {
            println!(
                "    iteration {:>6}: validation loss {:.4}, test accuracy {:.2}%",
                point.iteration,
                point.validation_loss,
                100.0 * point.test_accuracy
            );
        }
    }
}

impl ImpObserver for Progress {
    fn on_round_start(&mut self, round: usize, weights_remaining: f64, label: &str) {
        self.evals_in_run = 0;
        println!(
            "{label} round {round}: {:.2}% of weights",
            100.0 * weights_remaining
        );
    }

    fn on_round(&mut self, result: &RoundResult, label: &str) {
        println!(
            "{label} round {}: {:.2}% remaining, early stop {}, test accuracy {:.2}% ({:.0} s)",
            result.round,
            100.0 * result.weights_remaining,
            result.early_stop_iteration,
            100.0 * result.test_accuracy,
            result.wall_seconds
        );
    }
}

/// HTML shown as rich output.
pub struct Html(pub String);

impl Html {
    /// A table with a header row; cells are escaped.
    pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Html {
        let escape = |s: &str| {
            s.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        let mut html = String::from("<table><thead><tr>");
        for h in headers {
            html += &format!("<th>{}</th>", escape(h));
        }
        html += "</tr></thead><tbody>";
        for row in rows {
            html += "<tr>";
            for cell in row {
                html += &format!("<td>{}</td>", escape(cell));
            }
            html += "</tr>";
        }
        Html(html + "</tbody></table>")
    }

    pub fn evcxr_display(&self) {
        print_content("text/html", &self.0);
    }
}

/// Emits one rich output in evcxr's protocol.
pub fn print_content(mime: &str, content: &str) {
    println!("EVCXR_BEGIN_CONTENT {mime}\n{content}\nEVCXR_END_CONTENT");
}

impl crate::overlap::OverlapMatrix {
    pub fn evcxr_display(&self) {
        print_content("image/svg+xml", &self.to_svg());
    }
}

impl Chart {
    pub fn evcxr_display(&self) {
        print_content("image/svg+xml", &to_svg(self));
    }
}

/// One row per round of every branch: the numbers behind the LTH figure.
pub fn rounds_table(report: &ImpReport) -> Html {
    let mut headers = vec![
        "branch",
        "round",
        "% remaining",
        "early stop",
        "test acc. %",
    ];
    let layer_names: Vec<String> = report
        .rounds
        .first()
        .map(|r| r.layers.iter().map(|l| format!("{} %", l.name)).collect())
        .unwrap_or_default();
    headers.extend(layer_names.iter().map(String::as_str));
    let rows = report
        .groups()
        .into_iter()
        .flat_map(|(branch, seeds)| {
            seeds.into_iter().flatten().map(move |r| {
                let mut row = vec![
                    branch.clone(),
                    r.round.to_string(),
                    format!("{:.2}", 100.0 * r.weights_remaining),
                    r.early_stop_iteration.to_string(),
                    format!("{:.2}", 100.0 * r.test_accuracy),
                ];
                row.extend(
                    r.layers
                        .iter()
                        .map(|l| format!("{:.1}", 100.0 * l.remaining)),
                );
                row
            })
        })
        .collect::<Vec<_>>();
    Html::table(&headers, &rows)
}

impl ImpReport {
    pub fn evcxr_display(&self) {
        rounds_table(self).evcxr_display();
    }
}
