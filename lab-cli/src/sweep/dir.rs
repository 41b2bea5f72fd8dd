//! A sweep's output directory and the plan frozen in it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::plan::{Entry, Plan, SweepFile};

/// A sweep's output directory: `plan.json`, a copy of the sweep file, `runs/<entry>/`, logs.
#[derive(Debug, Clone)]
pub struct SweepDir {
    pub root: PathBuf,
}

impl SweepDir {
    pub fn entry(&self, entry: &Entry) -> PathBuf {
        self.root.join("runs").join(&entry.name)
    }

    pub fn plan_path(&self) -> PathBuf {
        self.root.join("plan.json")
    }

    /// The plan of `file`, frozen in `plan.json` on first use; a sweep file changed since
    /// (which would renumber the entries under running workers) is refused.
    pub fn freeze(&self, file: &Path) -> Result<Plan> {
        let plan = SweepFile::read(file)?.plan()?;
        let path = self.plan_path();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let frozen: Plan = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{} is not a sweep plan", path.display()))?;
                if frozen != plan {
                    bail!(
                        "{} no longer expands to the plan frozen in {} (entries would be \
                         renumbered under running workers): use another --out, or delete \
                         plan.json once no worker runs",
                        file.display(),
                        path.display()
                    );
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::output::write_json(&path, &plan)?;
                let copy = self.root.join(match file.extension() {
                    Some(ext) if ext == "json" => "sweep.json",
                    _ => "sweep.toml",
                });
                std::fs::copy(file, &copy)
                    .with_context(|| format!("copying the sweep file to {}", copy.display()))?;
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        Ok(plan)
    }
}
