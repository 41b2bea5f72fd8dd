//! End-to-end: `lth sweep` on real MNIST — plan, run (one entry, a pool), status, collect,
//! two workers on one entry, a killed worker's entry resumed, and bad sweep files. The
//! Slurm path runs in `scripts/test-slurm.sh` against a real one-node Slurm.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{lth, strip_timing};

fn scratch(name: &str) -> PathBuf {
    let dir = common::scratch("sweep", name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A short IMP on a subset of MNIST, as in the CLI test.
const QUICK: &str =
    "iterations = 150, eval-every = 50, train-subset = 6000, eval-subset = 1000, rounds = 2";

fn write_sweep(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("sweep.toml");
    std::fs::write(&path, body).unwrap();
    path
}

fn sweep(args: &[&str], file: &Path, out: &Path) -> Command {
    let mut command = Command::new(lth());
    command
        .arg("sweep")
        .arg(args[0])
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(&args[1..]);
    command
}

fn ok(output: Output) -> Output {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn states(file: &Path, out: &Path) -> Vec<String> {
    let output = ok(sweep(&["status", "--json"], file, out).output().unwrap());
    let statuses: Value = serde_json::from_slice(&output.stdout).unwrap();
    statuses
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_string())
        .collect()
}

/// `lth imp` alone, with the settings of one entry.
fn imp_alone(out: &Path, extra: &[&str]) -> Value {
    ok(Command::new(lth())
        .args(["imp", "--quiet", "--out"])
        .arg(out)
        .args(common::QUICK)
        .args(["--rounds", "2"])
        .args(extra)
        .output()
        .unwrap());
    json(&out.join("report.json"))
}

#[test]
fn a_sweep_plans_runs_and_collects_what_its_runs_give_alone() {
    let dir = scratch("grid");
    let out = dir.join("out");
    let file = write_sweep(
        &dir,
        &format!(
            "name = \"grid\"\n[[part]]\ncommand = \"imp\"\n\
             args = {{ {QUICK}, control = [\"reinit\"], control-at = [100] }}\n\
             axes = {{ seed = [0, 1], lr = [1.2e-3, 3e-3] }}\n"
        ),
    );
    let plan = ok(sweep(&["plan"], &file, &out).output().unwrap());
    let plan_text = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan_text.contains("grid: 4 entries"), "{plan_text}");
    let frozen = json(&out.join("plan.json"));
    let entries = frozen["entries"].as_array().unwrap();
    // The last axis (by name: seed after lr) varies fastest.
    assert_eq!(entries[1]["axes"]["seed"], 1);
    assert_eq!(entries[1]["axes"]["lr"], 1.2e-3);
    assert_eq!(entries[3]["axes"]["lr"], 3e-3);

    // One entry here, as a Slurm task would; the dry-run script then holds the other three.
    ok(sweep(&["run", "--index", "0"], &file, &out)
        .output()
        .unwrap());
    assert_eq!(
        states(&file, &out),
        ["done", "pending", "pending", "pending"]
    );
    let script = ok(sweep(
        &["submit", "--slurm", "--dry-run", "--parallel", "3"],
        &file,
        &out,
    )
    .output()
    .unwrap());
    let script = String::from_utf8_lossy(&script.stdout).to_string();
    assert!(script.contains("#SBATCH --array=1-3%3\n"), "{script}");
    assert!(script.contains(" sweep run "), "{script}");
    let manifest = ok(sweep(&["submit", "--k8s"], &file, &out).output().unwrap());
    let manifest = String::from_utf8_lossy(&manifest.stdout).to_string();
    assert!(manifest.contains("completionMode: Indexed"), "{manifest}");
    assert!(manifest.contains("completions: 4\n"), "{manifest}");

    // The rest with the pool, then one report.
    ok(
        sweep(&["run", "--workers", "2", "--threads", "1"], &file, &out)
            .output()
            .unwrap(),
    );
    assert_eq!(states(&file, &out), ["done"; 4]);
    ok(sweep(&["collect", "--require-all"], &file, &out)
        .output()
        .unwrap());
    let collected = json(&out.join("reproduction.json"));
    assert_eq!(collected["seeds"], serde_json::json!([0, 1]));
    assert_eq!(collected["control_rounds"], serde_json::json!([0]));
    for file in ["table.md", "accuracy.svg", "early_stop.svg", "collect.json"] {
        assert!(out.join(file).is_file(), "{file}");
    }

    // Entry 3 run alone: the same record name, and the same numbers in the collected groups.
    let alone = imp_alone(
        &dir.join("alone"),
        &[
            "--seed",
            "1",
            "--lr",
            "0.003",
            "--control",
            "reinit",
            "--control-at",
            "100",
        ],
    );
    assert_eq!(alone["run"], entries[3]["name"]);
    let group = |name: &str, seed: usize| collected["groups"][name][seed].clone();
    assert_eq!(
        strip_timing(&group("lr=0.003 ticket", 1)),
        strip_timing(&alone["rounds"])
    );
    assert_eq!(
        strip_timing(&group("lr=0.003 reinit", 1)),
        strip_timing(&alone["controls"]["reinit"])
    );
    assert_ne!(
        strip_timing(&group("lr=0.003 ticket", 0)),
        strip_timing(&alone["rounds"]),
        "seeds 0 and 1 gave the same run"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn one_entry(dir: &Path, extra: &str) -> PathBuf {
    write_sweep(
        dir,
        &format!("name = \"one\"\n[[part]]\ncommand = \"imp\"\nargs = {{ {QUICK}{extra} }}\n"),
    )
}

#[test]
fn two_workers_given_one_entry_run_it_once() {
    let dir = scratch("twice");
    let out = dir.join("out");
    let file = one_entry(&dir, "");
    ok(sweep(&["plan"], &file, &out).output().unwrap());
    let start = || {
        sweep(&["run", "--index", "0"], &file, &out)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (start(), start());
    let said: Vec<String> = [first, second]
        .into_iter()
        .map(|child| {
            let output = ok(child.wait_with_output().unwrap());
            String::from_utf8_lossy(&output.stderr).to_string()
        })
        .collect();
    let ran = said
        .iter()
        .filter(|s| s.contains("entry 0 done in"))
        .count();
    assert_eq!(ran, 1, "{said:?}");
    assert!(
        said.iter().any(|s| s.contains("entry 0 is already done")),
        "{said:?}"
    );
    assert_eq!(states(&file, &out), ["done"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}

#[test]
fn a_killed_worker_leaves_its_entry_interrupted_and_the_next_resumes_it() {
    let dir = scratch("killed");
    let out = dir.join("out");
    let file = one_entry(&dir, ", checkpoint-every = 50");
    let mut worker = sweep(&["run", "--index", "0"], &file, &out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    // Killed inside round 1, once it has a checkpoint.
    while find_file(&out.join("runs"), "checkpoint.bin")
        .is_none_or(|p| !p.to_string_lossy().contains("round-01"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        assert!(worker.try_wait().unwrap().is_none(), "finished too soon");
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.kill().unwrap();
    assert!(!worker.wait().unwrap().success());
    assert_eq!(states(&file, &out), ["interrupted"]);

    let rerun = ok(sweep(&["run", "--index", "0"], &file, &out)
        .output()
        .unwrap());
    let said = String::from_utf8_lossy(&rerun.stderr);
    assert!(said.contains("from its checkpoint"), "{said}");
    assert_eq!(states(&file, &out), ["done"]);
    let resumed = find_file(&out.join("runs"), "report.json").unwrap();
    let alone = imp_alone(&dir.join("alone"), &["--checkpoint-every", "50"]);
    assert_eq!(
        strip_timing(&json(&resumed)["rounds"]),
        strip_timing(&alone["rounds"])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_sweeps_get_clear_errors() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let refused = |body: &str, args: &[&str], expected: &str| {
        let file = write_sweep(&dir, body);
        let _ = std::fs::remove_dir_all(&out);
        let output = sweep(args, &file, &out).output().unwrap();
        let said = String::from_utf8_lossy(&output.stderr).to_string();
        assert!(!output.status.success(), "accepted: {body}");
        assert!(said.contains(expected), "{body}: {said}");
    };
    let part = |args: &str| format!("name = \"bad\"\n[[part]]\ncommand = \"imp\"\n{args}\n");
    refused(
        &part("axes = { control = [\"reinit\", \"random-prune\"] }"),
        &["plan"],
        "are the same run",
    );
    refused(
        &part("args = { out = \"x\" }"),
        &["plan"],
        "set by the sweep",
    );
    refused(&part("args = { learning-rate = 1 }"), &["plan"], "lth imp");
    refused(
        "name = \"bad\"\n[[part]]\ncommand = \"bench\"\n",
        &["plan"],
        "a sweep runs",
    );
    refused(
        &part(""),
        &["run", "--index", "7"],
        "entry 7 does not exist",
    );
    // A sweep file edited under a frozen plan.
    let file = write_sweep(&dir, &part("axes = { seed = [0, 1] }"));
    let _ = std::fs::remove_dir_all(&out);
    ok(sweep(&["plan"], &file, &out).output().unwrap());
    write_sweep(&dir, &part("axes = { seed = [1, 0] }"));
    let output = sweep(&["status"], &file, &out).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no longer expands"));
    std::fs::remove_dir_all(&dir).unwrap();
}
