//! The progress observer of training runs: a step bar and result lines on stderr.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use lab_core::training::curve::EvalPoint;
use lab_core::training::observer::Observer;
use lab_core::training::observer::RunObserver;
use lab_core::training::result::RoundResult;

/// Keeps one partial report (writes `report.json`, say).
pub type SavePart = Box<dyn FnMut(&serde_json::Value) -> anyhow::Result<()>>;

/// Shows a bar of the current training's steps and prints a line per finished round; draws
/// nothing when quiet or when stderr is not a terminal (lines are then plain `eprintln!`s).
pub struct Progress {
    bars: MultiProgress,
    step: ProgressBar,
    quiet: bool,
    /// Keeps each partial report of a run (see `Runner::run`); the first failure stops it.
    pub on_part: Option<SavePart>,
    pub part_error: Option<anyhow::Error>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let bars = MultiProgress::new();
        if quiet || !console_is_interactive() {
            bars.set_draw_target(ProgressDrawTarget::hidden());
        }
        let step = bars.add(ProgressBar::new(0));
        step.set_style(
            ProgressStyle::with_template(
                "{prefix} {wide_bar} {pos}/{len} it {per_sec} eta {eta} {msg}",
            )
            .expect("template"),
        );
        Self {
            bars,
            step,
            quiet,
            on_part: None,
            part_error: None,
        }
    }

    /// Prints a line (unless quiet) above the bar.
    pub fn line(&self, text: String) {
        if self.quiet {
            return;
        }
        if self.bars.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.bars.println(text);
        }
    }

    /// Labels the bar (what is being trained).
    pub fn set_prefix(&self, text: String) {
        self.step.set_prefix(text);
    }

    /// Removes the bar once the work is done.
    pub fn finish(&self) {
        self.step.finish_and_clear();
    }
}

fn console_is_interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

impl Observer for Progress {
    fn on_step(&mut self, iteration: usize, total: usize) {
        if iteration == 1 {
            self.step.set_length(total as u64);
            self.step.reset();
        }
        if iteration.is_multiple_of(20) || iteration == total {
            self.step.set_position(iteration as u64);
        }
    }

    fn on_resume(&mut self, iteration: usize) {
        self.line(format!(
            "resumed at iteration {iteration} from its checkpoint"
        ));
    }

    fn on_eval(&mut self, point: &EvalPoint) {
        self.step.set_message(format!(
            "val loss {:.4} test acc {:.2}%",
            point.validation_loss,
            100.0 * point.test_accuracy
        ));
    }
}

impl RunObserver for Progress {
    fn on_report(&mut self, report: &serde_json::Value) {
        if let (Some(save), None) = (self.on_part.as_mut(), &self.part_error)
            && let Err(error) = save(report)
        {
            self.part_error = Some(error);
        }
    }

    fn on_round_start(&mut self, round: usize, remaining: f64, label: &str) {
        self.step.set_prefix(format!(
            "{label} round {round} ({:.1}% left)",
            100.0 * remaining
        ));
    }

    fn on_round(&mut self, r: &RoundResult, label: &str) {
        self.line(format!(
            "{label:>12} round {:>2}: {:>6.2}% weights left, early stop at {:>6}, test acc {:.2}% (final {:.2}%), {:.1}s",
            r.round,
            100.0 * r.weights_remaining,
            r.early_stop_iteration,
            100.0 * r.test_accuracy,
            100.0 * r.final_test_accuracy,
            r.wall_seconds
        ));
    }
}
