//! Notebooks (evcxr Jupyter): blocking, non-generic entry points and rich display.
//!
//! evcxr compiles every cell as a crate of its own; calling a generic such as
//! `run_imp::<Net>` from a cell would monomorphise burn's training loop in each cell. The
//! functions here are instantiated once, in lab-core, so cells stay quick to compile.
//!
//! Display: a value left at the end of a cell is shown through its `evcxr_display` method:
//! charts as inline SVG, reports and tables as HTML. Progress prints as the run goes.

use std::path::PathBuf;

use crate::base::backend::BackendKind;
use crate::base::chart::{Chart, to_svg};
use crate::base::data::native::{DataSource, load};
use crate::base::data::{DataError, DatasetKind, Mnist};
use crate::base::store::DirStore;
use crate::methods::imp::ImpReport;
use crate::methods::imp::{ImpConfig, ImpError};
use crate::training::curve::EvalPoint;
use crate::training::experiment::{Data, Experiment, Session};
use crate::training::observer::Observer;
use crate::training::observer::RunObserver;
use crate::training::result::RoundResult;

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

/// Runs (or reads back) any experiment — IMP with its controls, a PaI or DST run, an
/// analysis — on the CPU, printing progress; `data` holds the data sets it names.
pub fn run<E: Experiment>(experiment: &E, data: &[&Mnist]) -> Result<E::Report, E::Error> {
    let (device, backend) = cpu();
    let mut store = DirStore::new(records_dir());
    let mut progress = Progress::default();
    let data = data
        .iter()
        .fold(Data::default(), |sets, set| sets.with(set.kind, set));
    crate::block_on(experiment.run(
        &data,
        &mut Session {
            device,
            backend: backend.name().into(),
            store: &mut store,
            observer: &mut progress,
        },
    ))
}

/// The weight histograms of round `round` of the IMP run `config` names, from the records.
pub fn histograms(
    config: &ImpConfig,
    round: usize,
    bins: usize,
) -> Result<crate::analyses::histogram::RoundHistograms, crate::analyses::histogram::HistogramError>
{
    let store = DirStore::new(records_dir());
    crate::analyses::histogram::imp_round_histograms(&store, &config.run_name(), round, bins)
}

/// The mask of the ticket of round `round` of the IMP run `config` names, from the records.
pub fn ticket_mask(config: &ImpConfig, round: usize) -> Result<crate::base::mask::Mask, ImpError> {
    let store = DirStore::new(records_dir());
    let key = crate::base::keys::RunKeys {
        run: config.run_name(),
    }
    .ticket(round);
    crate::base::ticket::read_ticket(&store, &key)?
        .map(|ticket| ticket.mask)
        .ok_or(ImpError::Store(crate::base::store::StoreError::Missing {
            key,
        }))
}

/// The trained network of round `round` of the IMP run `config` names (trained weights and
/// the round's mask), from the records: what `lth export` writes for inference.
pub fn trained_ticket(
    config: &ImpConfig,
    round: usize,
) -> Result<crate::base::ticket::Ticket, ImpError> {
    let store = DirStore::new(records_dir());
    let key = crate::base::keys::RunKeys {
        run: config.run_name(),
    }
    .trained(round);
    crate::base::ticket::read_ticket(&store, &key)?.ok_or(ImpError::Store(
        crate::base::store::StoreError::Missing { key },
    ))
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

impl RunObserver for Progress {
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

impl crate::analyses::overlap::OverlapMatrix {
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
