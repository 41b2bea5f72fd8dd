//! Handing a plan to a cluster's scheduler: a Slurm job array (written, then submitted with
//! `sbatch`) or a Kubernetes Indexed Job (printed). Each task is `lth sweep run` of one
//! entry; the entry's index comes from `SLURM_ARRAY_TASK_ID` or `JOB_COMPLETION_INDEX`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Args;

use super::dir::SweepDir;
use super::plan::Plan;

#[derive(Args, Debug, Clone)]
pub struct SlurmOptions {
    /// At most this many array tasks run at once (`--array=…%P`).
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// CPUs per task; each run uses as many threads.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// Time limit per task (Slurm's format, e.g. 2:00:00): a run it stops resumes from its
    /// checkpoint in the next submission.
    #[arg(long)]
    pub time: Option<String>,
    /// Memory per task (e.g. 4G).
    #[arg(long)]
    pub mem: Option<String>,
    #[arg(long)]
    pub partition: Option<String>,
    #[arg(long)]
    pub account: Option<String>,
    /// The `lth` binary the tasks run (default: this one); it must be reachable from every
    /// node, as must the sweep file, OUT and the data.
    #[arg(long)]
    pub lth: Option<PathBuf>,
    /// Container image of `lth` (Kubernetes).
    #[arg(long, default_value = "lth-lab:latest")]
    pub image: String,
    /// PersistentVolumeClaim shared by the pods, mounted at /work (Kubernetes).
    #[arg(long, default_value = "lth-records")]
    pub claim: String,
}

/// `0-3,5,7-9`: indices as Slurm's array ranges.
pub fn array_ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

/// The sbatch script of the entries `indices`.
pub fn slurm_script(
    dir: &SweepDir,
    plan: &Plan,
    file: &Path,
    indices: &[usize],
    data: Option<&Path>,
    options: &SlurmOptions,
) -> Result<String> {
    let lth = match &options.lth {
        Some(path) => absolute(path)?,
        None => std::env::current_exe().context("finding the lth binary")?,
    };
    let out = absolute(&dir.root)?;
    let mut script = String::from("#!/bin/bash\n");
    let mut directive = |line: String| script.push_str(&format!("#SBATCH {line}\n"));
    directive(format!("--job-name=lth-{}", plan.name));
    directive(format!(
        "--array={}%{}",
        array_ranges(indices),
        options.parallel.max(1)
    ));
    directive(format!("--cpus-per-task={}", options.cpus_per_task.max(1)));
    directive(format!("--output={}/slurm/%A_%a.out", out.display()));
    for (flag, value) in [
        ("time", &options.time),
        ("mem", &options.mem),
        ("partition", &options.partition),
        ("account", &options.account),
    ] {
        if let Some(value) = value {
            directive(format!("--{flag}={value}"));
        }
    }
    script.push_str(&format!(
        "# The sweep `{}`: {} of its {} entries. Each task runs the entry SLURM_ARRAY_TASK_ID;\n\
         # a finished entry is skipped and one stopped by the time limit resumes from its\n\
         # checkpoint when submitted again (`lth sweep submit` submits what is unfinished).\n",
        plan.name,
        indices.len(),
        plan.entries.len()
    ));
    script.push_str("export RAYON_NUM_THREADS=\"${SLURM_CPUS_PER_TASK:-1}\"\n");
    script.push_str(&format!(
        "exec {} sweep run {} --out {}",
        quote(&lth.display().to_string()),
        quote(&absolute(file)?.display().to_string()),
        quote(&out.display().to_string())
    ));
    if let Some(data) = data {
        script.push_str(&format!(
            " --data {}",
            quote(&absolute(data)?.display().to_string())
        ));
    }
    script.push('\n');
    Ok(script)
}

/// Writes the script to `OUT/slurm/` and submits it; returns the job id.
pub fn submit_slurm(dir: &SweepDir, script: &str) -> Result<String> {
    let folder = dir.root.join("slurm");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = folder.join(format!("submit-{stamp}.sh"));
    crate::output::write_file(&path, script)?;
    let output = Command::new("sbatch")
        .arg("--parsable")
        .arg(&path)
        .output()
        .context("running sbatch (is Slurm installed here? --dry-run prints the script)")?;
    if !output.status.success() {
        bail!(
            "sbatch refused {}: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let id = String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    eprintln!("submitted {} as job {id}", path.display());
    Ok(id)
}

/// A Kubernetes Indexed Job running every entry of the plan (finished ones exit at once):
/// the sweep file and OUT live on the claim, mounted at /work, with paths relative to it.
pub fn k8s_manifest(
    plan: &Plan,
    file: &Path,
    out: &Path,
    data: Option<&Path>,
    options: &SlurmOptions,
) -> String {
    let name: String = format!("lth-{}", plan.name)
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    // Paths as given, relative ones under the claim's mount point.
    let in_pod = |path: &Path| Path::new("/work").join(path).display().to_string();
    let mut command = vec![
        "lth".to_string(),
        "sweep".into(),
        "run".into(),
        in_pod(file),
        "--out".into(),
        in_pod(out),
    ];
    if let Some(data) = data {
        command.extend(["--data".into(), in_pod(data)]);
    }
    let command: Vec<String> = command
        .iter()
        .map(|word| serde_json::to_string(word).expect("a string serialises"))
        .collect();
    let cpus = options.cpus_per_task.max(1);
    let memory = options
        .mem
        .as_deref()
        .map(|m| format!("\n              memory: {m}"))
        .unwrap_or_default();
    format!(
        "# The sweep `{sweep}`: {n} entries, one pod per index (JOB_COMPLETION_INDEX).\n\
apiVersion: batch/v1\n\
kind: Job\n\
metadata:\n\
  name: {name}\n\
spec:\n\
  completionMode: Indexed\n\
  completions: {n}\n\
  parallelism: {parallel}\n\
  backoffLimit: {backoff}\n\
  template:\n\
    spec:\n\
      restartPolicy: OnFailure\n\
      containers:\n\
        - name: lth\n\
          image: {image}\n\
          workingDir: /work\n\
          command: [{command}]\n\
          env:\n\
            - name: RAYON_NUM_THREADS\n\
              value: \"{cpus}\"\n\
          resources:\n\
            requests:\n\
              cpu: \"{cpus}\"{memory}\n\
          volumeMounts:\n\
            - name: work\n\
              mountPath: /work\n\
      volumes:\n\
        - name: work\n\
          persistentVolumeClaim:\n\
            claimName: {claim}\n",
        sweep = plan.name,
        n = plan.entries.len(),
        parallel = options.parallel.max(1),
        backoff = 3 * plan.entries.len().max(1),
        image = options.image,
        command = command.join(", "),
        claim = options.claim,
    )
}

#[cfg(test)]
mod tests {
    use super::array_ranges;

    #[test]
    fn indices_become_slurm_ranges() {
        assert_eq!(array_ranges(&[0, 1, 2, 3, 5, 7, 8, 9]), "0-3,5,7-9");
        assert_eq!(array_ranges(&[4]), "4");
        assert_eq!(array_ranges(&[]), "");
    }
}
