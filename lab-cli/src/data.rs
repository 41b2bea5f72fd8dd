//! Finding (or downloading) and loading a data set, with a download bar.

use std::path::PathBuf;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use lab_core::base::data::native::{DataSource, load};
use lab_core::base::data::{DatasetKind, Mnist};

/// Loads `kind` from `dir` or the usual places (LTH_DATA, data/, ../shared/, the cache),
/// downloading it into the cache if allowed and no local copy is found; checksums verified.
pub fn load_data(
    kind: DatasetKind,
    dir: Option<PathBuf>,
    download: bool,
    quiet: bool,
) -> Result<Mnist> {
    let source = DataSource {
        explicit_dir: dir,
        allow_download: download,
    };
    let bar = ProgressBar::hidden();
    let mut progress = |file: &str, done: u64, total: Option<u64>| {
        if bar.is_hidden() && !quiet {
            bar.set_draw_target(ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{msg} {bytes}/{total_bytes} {wide_bar}")
                    .expect("template"),
            );
        }
        bar.set_message(format!("downloading {file}"));
        bar.set_length(total.unwrap_or(done));
        bar.set_position(done);
    };
    let (data, dir) = load(kind, &source, &mut progress)?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "data: {} from {} ({} train / {} validation / {} test, checksums verified)",
            kind.name(),
            dir.display(),
            data.train.len(),
            data.validation.len(),
            data.test.len()
        );
    }
    Ok(data)
}
