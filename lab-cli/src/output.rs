//! Output files. Every one is written atomically: a killed run leaves the old file or the new
//! one, never half of one.

use std::path::Path;

use anyhow::{Context, Result};
use lab_core::base::chart;
use lab_core::base::chart::Chart;
use lab_core::methods::imp::ImpReport;
use lab_core::report::charts;

/// Writes a file atomically (a temporary file synced and renamed into place), creating its
/// directory.
pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    lab_core::base::store::write_atomically(path, contents.as_ref())
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes `value` as pretty JSON, atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_file(path, serde_json::to_string_pretty(value)?)
}

/// Writes `OUT/NAME.svg` and, where the PNG renderer works, `OUT/NAME.png`.
pub fn write_chart(out: &Path, name: &str, chart: &Chart) -> Result<()> {
    write_file(&out.join(format!("{name}.svg")), chart::to_svg(chart))?;
    // The PNG encoder writes to a path and picks its format from the extension: render
    // beside, then rename into place (atomic as well).
    let temporary = out.join(format!("{name}.partial.png"));
    match chart::save_png(chart, &temporary) {
        Ok(()) => {
            let png = out.join(format!("{name}.png"));
            std::fs::rename(&temporary, &png)
                .with_context(|| format!("writing {}", png.display()))?;
        }
        Err(e) => eprintln!("warning: {name}.png not written ({e}); the SVG is"),
    }
    Ok(())
}

/// An IMP report: `report.json` and the accuracy, early-stop and curves charts.
pub fn write_report(out: &Path, report: &ImpReport) -> Result<()> {
    write_json(&out.join("report.json"), report)?;
    write_report_charts(out, report)
}

/// The accuracy, early-stop and curves charts of an IMP report.
pub fn write_report_charts(out: &Path, report: &ImpReport) -> Result<()> {
    let groups = report.groups();
    write_chart(out, "accuracy", &charts::accuracy_vs_remaining(&groups))?;
    write_chart(out, "early_stop", &charts::early_stop_vs_remaining(&groups))?;
    write_chart(out, "curves", &charts::training_curves(&report.curves()))?;
    Ok(())
}

/// The last line of a command: how long it took and where its files are.
pub fn print_done(started: std::time::Instant, out: &Path) {
    eprintln!(
        "done in {:.1}s: {}",
        started.elapsed().as_secs_f64(),
        out.display()
    );
}
