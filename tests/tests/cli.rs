//! End-to-end: the `lth` binary on real MNIST, as a user runs it (`cargo test -p lab-cli
//! --test cli` builds the binary it runs).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;

use common::{QUICK, lth, strip_timing};

fn scratch(name: &str) -> PathBuf {
    common::scratch("e2e", name)
}

fn imp(out: &Path, rounds: &str, extra: &[&str]) -> Command {
    let mut cmd = Command::new(lth());
    cmd.args(["imp", "--quiet", "--rounds", rounds, "--out"])
        .arg(out)
        .args(QUICK)
        .args(extra);
    cmd
}

/// Runs `lth` with `args`; fails the test with its stderr unless it succeeds.
fn lth_ok<'a>(args: impl IntoIterator<Item = &'a OsStr>) -> std::process::Output {
    let output = Command::new(lth()).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "lth failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The resumed run in `out` reports what an uninterrupted run of `rounds` does; both removed.
fn same_rounds_as_uninterrupted(out: &Path, rounds: &str, name: &str) {
    let reference = scratch(name);
    assert!(imp(&reference, rounds, &[]).status().unwrap().success());
    assert_eq!(
        strip_timing(&report(out)["rounds"]),
        strip_timing(&report(&reference)["rounds"])
    );
    std::fs::remove_dir_all(out).unwrap();
    std::fs::remove_dir_all(&reference).unwrap();
}

fn report(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap()
}

#[test]
fn imp_writes_the_report_and_charts() {
    let out = scratch("report");
    let status = imp(&out, "2", &["--control", "reinit"]).status().unwrap();
    assert!(status.success());
    let report = report(&out);
    let rounds = report["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2);
    for field in [
        "weights_remaining",
        "early_stop_iteration",
        "test_accuracy",
        "final_test_accuracy",
        "layers",
    ] {
        assert!(rounds[1].get(field).is_some(), "missing {field}");
    }
    let expected = (188_160.0 + 24_000.0 + 900.0) / 266_200.0;
    assert!((rounds[1]["weights_remaining"].as_f64().unwrap() - expected).abs() < 1e-9);
    assert_eq!(rounds[1]["layers"][0]["name"], "layers.0.weight");
    assert!(rounds[0]["test_accuracy"].as_f64().unwrap() > 0.85);
    assert_eq!(report["controls"]["reinit"].as_array().unwrap().len(), 2);
    for chart in [
        "accuracy.svg",
        "accuracy.png",
        "early_stop.svg",
        "curves.svg",
    ] {
        let bytes = std::fs::read(out.join(chart)).unwrap();
        assert!(bytes.len() > 1000, "{chart} is nearly empty");
    }
    let svg = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("reinit"));
    std::fs::remove_dir_all(&out).unwrap();
}

/// `--kernel sparse` trains every round on the kept weights: a run of its own (another
/// records directory than dense), numbers close to dense's; on the ViT it is refused.
#[test]
fn imp_trains_sparse_with_the_kernel_flag() {
    let out = scratch("kernel");
    let (dense, sparse) = (out.join("dense"), out.join("sparse"));
    assert!(imp(&dense, "2", &[]).status().unwrap().success());
    assert!(
        imp(&sparse, "2", &["--kernel", "sparse"])
            .status()
            .unwrap()
            .success()
    );
    let runs = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir.join("records"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    assert_ne!(runs(&dense), runs(&sparse), "the kernel names its own run");
    let (d, s) = (report(&dense), report(&sparse));
    for round in 0..2 {
        let accuracy = |r: &Value| r["rounds"][round]["final_test_accuracy"].as_f64().unwrap();
        let gap = (accuracy(&d) - accuracy(&s)).abs();
        assert!(gap < 0.02, "round {round}: dense and sparse {gap} apart");
    }
    let vit = Command::new(lth())
        .args([
            "imp", "--quiet", "--rounds", "1", "--model", "vit", "--kernel", "sparse",
        ])
        .arg("--out")
        .arg(out.join("vit"))
        .args(QUICK)
        .output()
        .unwrap();
    assert!(!vit.status.success());
    let stderr = String::from_utf8_lossy(&vit.stderr);
    assert!(stderr.contains("sparse training cannot take"), "{stderr}");
    std::fs::remove_dir_all(&out).unwrap();
}

/// The ViT comes from the registry through `--model vit`, and `--layer-rate` sets a layer's
/// rate by path pattern ahead of the model's own per-type rates (10% embedding and head, 15%
/// attention, 20% MLP).
#[test]
fn vit_with_a_layer_rate_override() {
    let out = scratch("vit");
    // A short ViT run (later flags override the helper's QUICK ones).
    const VIT: [&str; 8] = [
        "--model",
        "vit",
        "--iterations",
        "20",
        "--train-subset",
        "600",
        "--eval-subset",
        "100",
    ];
    let status = imp(&out, "2", &VIT)
        .args(["--eval-every", "10"])
        // Fallback rates unlike the model's: a lost model rule changes the counts.
        .args(["--prune-rate", "0.3", "--output-rate", "0.05"])
        .args(["--layer-rate", "blocks.1.*=0.5"])
        .status()
        .unwrap();
    assert!(status.success());
    let report = report(&out);
    let layers = report["rounds"][1]["layers"].as_array().unwrap();
    let kept = |name: &str| {
        let layer = layers.iter().find(|l| l["name"] == name).unwrap();
        layer["remaining_weights"].as_u64().unwrap() as usize
    };
    // One round of the counting rule: n − round(rate · n) survive.
    let after_one = |n: usize, rate: f64| n - (n as f64 * rate).round() as usize;
    assert_eq!(kept("patch_embedding.weight"), after_one(49 * 64, 0.1));
    assert_eq!(kept("head.weight"), after_one(64 * 10, 0.1));
    assert_eq!(
        kept("blocks.0.attention.query.weight"),
        after_one(64 * 64, 0.15)
    );
    assert_eq!(kept("blocks.0.mlp_in.weight"), after_one(64 * 128, 0.2));
    assert_eq!(
        kept("blocks.1.attention.query.weight"),
        after_one(64 * 64, 0.5)
    );
    assert_eq!(kept("blocks.1.mlp_out.weight"), after_one(128 * 64, 0.5));
    // A pattern that names no layer is refused, not silently ignored.
    let typo = imp(&out.join("typo"), "1", &VIT)
        .args(["--layer-rate", "block.*=0.5"])
        .output()
        .unwrap();
    assert!(!typo.status.success());
    assert!(
        String::from_utf8_lossy(&typo.stderr).contains("matches none"),
        "{typo:?}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// `lth analyze overlap` on IMP's own tickets: its masks are nested, so the overlap of rounds
/// 1 and 2 is exactly |m2| / |m1|, and a ticket overlaps itself fully.
#[test]
fn overlap_of_nested_imp_masks_is_their_size_ratio() {
    let out = scratch("overlap");
    assert!(imp(&out, "3", &[]).status().unwrap().success());
    let run = std::fs::read_dir(out.join("records"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("imp-")
        })
        .unwrap();
    let ticket = |round: usize| run.join(format!("round-{round:02}/ticket.safetensors"));
    let analysis = out.join("analysis");
    let status = Command::new(lth())
        .args(["analyze", "overlap"])
        .args([ticket(1), ticket(2), ticket(1)])
        .arg("--out")
        .arg(&analysis)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let result: Value =
        serde_json::from_slice(&std::fs::read(analysis.join("overlap.json")).unwrap()).unwrap();
    let total = |i: usize, j: usize| result["matrix"][i][j]["total"].clone();
    let kept = |round: usize| {
        report(&out)["rounds"][round]["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["remaining_weights"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(total(0, 1)["both"].as_u64().unwrap(), kept(2));
    assert_eq!(total(0, 1)["either"].as_u64().unwrap(), kept(1));
    assert_eq!(total(0, 2)["jaccard"].as_f64().unwrap(), 1.0);
    assert!(total(0, 1)["jaccard"].as_f64().unwrap() > total(0, 1)["chance"].as_f64().unwrap());
    assert!(
        std::fs::read_to_string(analysis.join("overlap.svg"))
            .unwrap()
            .contains("<svg")
    );
    assert!(
        std::fs::read_to_string(analysis.join("table.md"))
            .unwrap()
            .contains("r01")
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// Starts `lth imp`, waits until `round-01/<file>` exists in its records, then kills it
/// (SIGKILL) and checks the kill interrupted it. Returns the file's path.
/// `lth dst`: a sweep of methods writes one result each with its Rs, the tables and charts;
/// an IMP ticket's mask can start a run; an `lth imp` report joins the comparison charts;
/// a rerun reads every result back from the records.
#[test]
fn dst_sweeps_methods_reports_rs_and_compares_with_imp() {
    let out = scratch("dst");
    let imp_out = out.join("imp");
    assert!(imp(&imp_out, "2", &[]).status().unwrap().success());
    let dst = |extra: &[&str]| {
        let mut cmd = Command::new(lth());
        cmd.args(["dst", "--quiet", "--update-every", "25", "--out"])
            .arg(&out)
            .args(QUICK)
            .args(extra);
        let output = cmd.output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    };
    let compare = imp_out.join("report.json");
    let compare = compare.to_str().unwrap();
    let started = Instant::now();
    dst(&[
        "--method",
        "static,set,rigl,gmp",
        "--density",
        "0.05",
        "--compare",
        compare,
    ]);
    let first_run = started.elapsed();
    let results = report(&out);
    let results = results.as_array().unwrap();
    let by = |m: &str| results.iter().find(|r| r["method"] == m).unwrap().clone();
    assert_eq!(results.len(), 4);
    // 150 iterations, ΔT = 25, updates before 75% (112): 25, 50, 75, 100.
    for method in ["set", "rigl"] {
        let updates: Vec<u64> = by(method)["updates"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["iteration"].as_u64().unwrap())
            .collect();
        assert_eq!(updates, [25, 50, 75, 100], "{method}");
        assert!(by(method)["explored"].as_f64().unwrap() > 0.05);
    }
    assert_eq!(
        by("static")["explored"].as_f64().unwrap(),
        by("static")["initial_density"].as_f64().unwrap()
    );
    assert_eq!(by("gmp")["explored"], 1.0);
    for r in results {
        assert!(
            (r["training"]["weights_remaining"].as_f64().unwrap() - 0.05).abs() < 0.001,
            "{r}"
        );
        assert!(r["training"]["test_accuracy"].as_f64().unwrap() > 0.5);
    }
    for file in [
        "table.md",
        "accuracy.svg",
        "cost.svg",
        "rs.svg",
        "accuracy_vs_rs.svg",
        "curves.svg",
    ] {
        assert!(out.join(file).exists(), "{file}");
    }
    let accuracy = std::fs::read_to_string(out.join("accuracy.svg")).unwrap();
    assert!(accuracy.contains("imp ticket") && accuracy.contains("rigl"));
    // A rerun trains nothing: the same results, read back.
    let started = Instant::now();
    dst(&["--method", "static,set,rigl,gmp", "--density", "0.05"]);
    assert!(started.elapsed() < first_run / 2, "the rerun trained again");
    assert_eq!(
        strip_timing(&Value::Array(
            results.iter().map(|r| r["training"].clone()).collect()
        )),
        strip_timing(&Value::Array(
            report(&out)
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["training"].clone())
                .collect()
        ))
    );
    // `lth analyze compare` puts IMP runs on one chart, one line and table rows per run.
    let compared = out.join("compare");
    let status = Command::new(lth())
        .args([
            "analyze",
            "compare",
            compare,
            compare,
            "--labels",
            "first,second",
            "--out",
        ])
        .arg(&compared)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let table = std::fs::read_to_string(compared.join("table.md")).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.starts_with("| first |")).count(),
        2
    );
    assert_eq!(
        table
            .lines()
            .filter(|l| l.starts_with("| second |"))
            .count(),
        2
    );
    let chart = std::fs::read_to_string(compared.join("accuracy.svg")).unwrap();
    assert!(chart.contains("first") && chart.contains("second"));
    // RigL from the IMP round-1 ticket's mask: it starts at that mask's density.
    let ticket = imp_out.join("records");
    let ticket = std::fs::read_dir(&ticket)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .join("round-01/ticket.safetensors");
    dst(&[
        "--method",
        "rigl",
        "--density",
        "0.05",
        "--mask-from",
        ticket.to_str().unwrap(),
    ]);
    let from_ticket = &report(&out)[0];
    let imp_round_1 = report(&imp_out)["rounds"][1]["weights_remaining"]
        .as_f64()
        .unwrap();
    assert_eq!(
        from_ticket["initial_density"].as_f64().unwrap(),
        imp_round_1
    );
}

fn kill_when_round_1_has(out: &Path, rounds: &str, extra: &[&str], file: &str) -> PathBuf {
    let mut child = imp(out, rounds, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let records = out.join("records");
    let started = Instant::now();
    let found = loop {
        let found = std::fs::read_dir(&records).ok().and_then(|mut runs| {
            let run = runs.next()?.ok()?.path();
            let path = run.join("round-01").join(file);
            path.is_file().then_some(path)
        });
        if let Some(path) = found {
            break path;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "round 1 never wrote {file}"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL
    assert!(
        !child.wait().unwrap().success(),
        "the run had already finished"
    );
    found
}

#[test]
fn a_killed_run_resumes_with_the_same_results() {
    let out = scratch("resume");
    let round1_done = kill_when_round_1_has(&out, "5", &[], "result.json");
    // The kill interrupted the run: its last round is unfinished.
    let last_round = round1_done.parent().unwrap().with_file_name("round-04");
    assert!(
        !last_round.join("result.json").exists(),
        "the run had already finished"
    );
    let finished_before = std::fs::read(&round1_done).unwrap();

    let rerun = imp(&out, "5", &[]).output().unwrap();
    assert!(
        rerun.status.success(),
        "{}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    assert_eq!(
        std::fs::read(&round1_done).unwrap(),
        finished_before,
        "round 1 was redone"
    );

    same_rounds_as_uninterrupted(&out, "5", "reference");
}

/// kill -9 inside a round: the rerun resumes from the round's checkpoint (it says so), not
/// from the round's start, and gives the numbers of an uninterrupted run.
#[test]
fn a_run_killed_inside_a_round_resumes_from_its_checkpoint() {
    let out = scratch("checkpoint");
    let every = ["--checkpoint-every", "50"];
    let checkpoint = kill_when_round_1_has(&out, "2", &every, "checkpoint.bin");
    let round = checkpoint.parent().unwrap();
    assert!(
        !round.join("result.json").exists(),
        "round 1 had already finished"
    );
    assert!(checkpoint.is_file());

    // Not --quiet: the rerun says where it resumed.
    let mut rerun = Command::new(lth());
    rerun
        .args(["imp", "--rounds", "2", "--out"])
        .arg(&out)
        .args(QUICK)
        .args(every);
    let rerun = rerun.output().unwrap();
    let said = String::from_utf8_lossy(&rerun.stderr);
    assert!(rerun.status.success(), "{said}");
    assert!(
        said.contains("resumed at iteration 50 from its checkpoint")
            || said.contains("resumed at iteration 100 from its checkpoint"),
        "the rerun did not resume inside round 1: {said}"
    );
    assert!(
        !checkpoint.exists(),
        "a finished round keeps its checkpoint"
    );

    same_rounds_as_uninterrupted(&out, "2", "checkpoint-reference");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let out = scratch("bad");
    let run = imp(&out, "0", &[]).output().unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("rounds must be at least 1"));

    // A data directory with a corrupt (truncated) file.
    let data = scratch("bad-data");
    std::fs::create_dir_all(&data).unwrap();
    let shared = ["../shared/mnist", "../../shared/mnist"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .or_else(|| std::env::var_os("LTH_DATA").map(PathBuf::from))
        .expect("real MNIST");
    for name in [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ] {
        let mut bytes = std::fs::read(shared.join(format!("{name}.gz"))).unwrap();
        if name.starts_with("t10k-labels") {
            bytes.truncate(bytes.len() / 2);
        }
        std::fs::write(data.join(format!("{name}.gz")), bytes).unwrap();
    }
    let run = imp(&out, "1", &["--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("t10k-labels-idx1-ubyte") && stderr.contains("gzip"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&data);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn pai_sweep_reports_collapse_and_synflow_avoids_it() {
    let out = scratch("pai");
    let run = Command::new(lth())
        .args([
            "pai",
            "--quiet",
            "--score",
            "snip,synflow,mag",
            "--compression",
            "1,3.5",
        ])
        .args([
            "--iterations",
            "100",
            "--eval-every",
            "50",
            "--train-subset",
            "3000",
            "--eval-subset",
            "500",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let results: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 6);
    let find = |score: &str, c: f64| {
        results
            .iter()
            .find(|r| r["score"] == score && r["compression"].as_f64() == Some(c))
            .unwrap()
            .clone()
    };
    for score in ["snip", "synflow", "mag"] {
        let r = find(score, 1.0);
        assert!((r["weights_remaining"].as_f64().unwrap() - 0.1).abs() < 1e-5);
        assert!(r["training"]["test_accuracy"].as_f64().unwrap() > 0.5);
    }
    // At 0.03% of weights, magnitude and SNIP empty the first layer; SynFlow keeps a path.
    assert_eq!(find("mag", 3.5)["collapse"]["connected"], false);
    assert_eq!(find("snip", 3.5)["collapse"]["connected"], false);
    assert_eq!(find("synflow", 3.5)["collapse"]["connected"], true);
    assert!(std::fs::read(out.join("accuracy.svg")).unwrap().len() > 1000);
    assert!(
        std::fs::read_to_string(out.join("table.md"))
            .unwrap()
            .contains("| synflow | 3.50 |")
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn a_scaled_down_reproduction_shows_the_robust_direction() {
    let out = scratch("reproduce");
    let run = Command::new(lth())
        .args([
            "reproduce",
            "lth-lenet300",
            "--quiet",
            "--budget",
            "300",
            "--seeds",
            "2",
            "--rounds",
            "4",
        ])
        .args(["--levels", "100,51.3"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let result: Value =
        serde_json::from_slice(&std::fs::read(out.join("reproduction.json")).unwrap()).unwrap();
    assert_eq!(result["control_rounds"], serde_json::json!([0, 3]));
    let accuracy_at = |group: &str, round: u64| -> f64 {
        let runs = result["groups"][group].as_array().unwrap();
        let values: Vec<f64> = runs
            .iter()
            .filter_map(|seed| {
                seed.as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["round"] == round)
            })
            .map(|r| r["test_accuracy"].as_f64().unwrap())
            .collect();
        assert_eq!(values.len(), 2, "{group} round {round}");
        values.iter().sum::<f64>() / 2.0
    };
    // At 51% remaining a 300-iteration ticket is not worse than its reinitialisation beyond
    // noise (a point of accuracy); larger effects need the paper's budgets.
    let ticket = accuracy_at("ticket", 3);
    let reinit = accuracy_at("reinit", 3);
    assert!(
        ticket > 0.9 && ticket >= reinit - 0.01,
        "ticket {ticket} reinit {reinit}"
    );
    for file in ["table.md", "accuracy.svg", "early_stop.svg", "accuracy.png"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    std::fs::remove_dir_all(&out).unwrap();
}

/// Serves `dir` over HTTP on loopback for at most `requests` requests; returns the base URL.
fn serve(dir: PathBuf, requests: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(requests) {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let name = line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_string();
            match std::fs::read(dir.join(&name)) {
                Ok(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
                Err(_) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            }
        }
    });
    url
}

fn shared_mnist() -> PathBuf {
    ["../shared/mnist", "../../shared/mnist"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .or_else(|| std::env::var_os("LTH_DATA").map(PathBuf::from))
        .expect("real MNIST")
        .canonicalize()
        .unwrap()
}

#[test]
fn download_is_checksummed_and_never_leaves_a_bad_file() {
    let names = [
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ];
    let root = scratch("download");
    let (mirror, bad_mirror, home, cache) = (
        root.join("mirror"),
        root.join("bad"),
        root.join("home"),
        root.join("cache"),
    );
    for dir in [&mirror, &bad_mirror, &home] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for name in names {
        let bytes = std::fs::read(shared_mnist().join(format!("{name}.gz"))).unwrap();
        std::fs::write(mirror.join(format!("{name}.gz")), &bytes).unwrap();
        // The bad mirror serves a test-label file with valid gzip but altered content.
        let bytes = if name == "t10k-labels-idx1-ubyte" {
            use std::io::{Read, Write};
            let mut raw = Vec::new();
            flate2_decode(&bytes).read_to_end(&mut raw).unwrap();
            raw[100] = (raw[100] + 1) % 10;
            let mut enc = flate2_encoder();
            enc.write_all(&raw).unwrap();
            enc.finish().unwrap()
        } else {
            bytes
        };
        std::fs::write(bad_mirror.join(format!("{name}.gz")), &bytes).unwrap();
    }
    let run = |url: &str| {
        Command::new(lth())
            .current_dir(&home)
            .env_remove("LTH_DATA")
            .env("LTH_CACHE", &cache)
            .env("LTH_MIRROR", url)
            .args([
                "train",
                "--quiet",
                "--download",
                "--iterations",
                "20",
                "--eval-every",
                "20",
            ])
            .args(["--train-subset", "600", "--eval-subset", "100", "--out"])
            .arg(root.join("out"))
            .output()
            .unwrap()
    };
    let bad = run(&serve(bad_mirror, 8));
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("checksum") && stderr.contains("t10k-labels-idx1-ubyte"),
        "{stderr}"
    );
    assert!(!cache.join("mnist/t10k-labels-idx1-ubyte.gz").exists());

    let good = run(&serve(mirror, 8));
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    for name in names {
        assert!(cache.join(format!("mnist/{name}.gz")).is_file());
    }
    let leftovers: Vec<_> = std::fs::read_dir(cache.join("mnist"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty());
    std::fs::remove_dir_all(&root).unwrap();
}

fn flate2_decode(bytes: &[u8]) -> flate2::read::GzDecoder<&[u8]> {
    flate2::read::GzDecoder::new(bytes)
}

fn flate2_encoder() -> flate2::write::GzEncoder<Vec<u8>> {
    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast())
}

/// The follow-up analyses from the command line, on a subset: each writes its report, table
/// and charts, and a rerun reads its records back instead of training.
#[test]
fn analyses_run_from_the_cli_and_read_their_records_back() {
    let out = scratch("analyses");
    let small = [
        "--iterations",
        "60",
        "--eval-every",
        "30",
        "--train-subset",
        "2000",
        "--eval-subset",
        "300",
        "--quiet",
    ];
    let analyze = |args: &[&str], dir: &str| {
        let output = Command::new(lth())
            .arg("analyze")
            .args(args)
            .args(small)
            .arg("--out")
            .arg(out.join(dir))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&std::fs::read(out.join(dir).join("report.json")).unwrap())
            .unwrap()
    };
    let lmc_args = [
        "lmc",
        "--k",
        "0,20",
        "--ticket-round",
        "0,1",
        "--points",
        "3",
    ];
    let lmc = analyze(&lmc_args, "lmc");
    assert_eq!(lmc.as_array().unwrap().len(), 4);
    for file in [
        "table.md",
        "instability.svg",
        "path-dense.svg",
        "tickets.svg",
    ] {
        assert!(out.join("lmc").join(file).is_file(), "{file}");
    }
    // A rerun trains nothing: the same results, wall times included, from the records.
    let again = analyze(&lmc_args, "lmc");
    assert_eq!(
        again.as_array().unwrap()[3]["wall_seconds"],
        lmc.as_array().unwrap()[3]["wall_seconds"]
    );

    let eb = analyze(
        &[
            "early-bird",
            "--round",
            "1",
            "--draw-every",
            "10",
            "--epsilon",
            "1",
        ],
        "early-bird",
    );
    // Window 5: the fifth draw (iteration 50) is the first with four before it.
    assert_eq!(eb["tickets"][0]["found_at"], 50);
    assert_eq!(eb["draws"].as_array().unwrap().len(), 6);
    assert!(out.join("early-bird/distance.svg").is_file());

    let transfer = analyze(&["transfer", "--rounds", "2"], "transfer");
    assert_eq!(transfer[0]["rounds"].as_array().unwrap().len(), 1);
    assert_eq!(transfer[0]["target"], "fashion-mnist");
    assert!(
        out.join("transfer/accuracy-mnist-to-fashion-mnist.svg")
            .is_file()
    );

    // Histograms of round 0 of the early-bird run's IMP (two rounds in its records).
    let histogram = Command::new(lth())
        .args(["analyze", "histogram"])
        .arg(out.join("early-bird"))
        .args(["--round", "0", "--out"])
        .arg(out.join("histogram"))
        .output()
        .unwrap();
    assert!(
        histogram.status.success(),
        "{}",
        String::from_utf8_lossy(&histogram.stderr)
    );
    let h: Value =
        serde_json::from_slice(&std::fs::read(out.join("histogram/histogram.json")).unwrap())
            .unwrap();
    assert_eq!(h["layers"][0]["stages"][0]["total"], 235_200);
    assert!(
        out.join("histogram/histogram-layers-0-weight.svg")
            .is_file()
    );
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn structured_imp_exports_three_formats_that_classify_alike() {
    let out = scratch("structured");
    let rates = [
        "--granularity",
        "units-l1",
        "--prune-rate",
        "0.5",
        "--conv-rate",
        "0.5",
    ];
    let extra = [&["--model", "lenet5"][..], &rates[..]].concat();
    let status = imp(&out, "2", &extra).status().unwrap();
    assert!(status.success());
    // Round 1 keeps half the units of every hidden layer (6→3 filters, 16→8, 120→60, 84→42)
    // and every weight between kept units: 75 + 600 + 12,000 + 2,520 + 420 of 61,470.
    let rounds = report(&out)["rounds"].clone();
    let remaining = rounds[1]["weights_remaining"].as_f64().unwrap();
    assert!(
        (remaining - 15_615.0 / 61_470.0).abs() < 1e-12,
        "{remaining}"
    );

    let stem = out.join("ticket");
    lth_ok([
        OsStr::new("export"),
        out.as_os_str(),
        OsStr::new("--out"),
        stem.as_os_str(),
    ]);
    let mut sizes = Vec::new();
    let mut correct = Vec::new();
    for format in ["dense", "compact", "csr"] {
        let file = PathBuf::from(format!("{}.{format}.safetensors", stem.display()));
        sizes.push(std::fs::metadata(&file).unwrap().len());
        let infer = lth_ok([
            OsStr::new("infer"),
            file.as_os_str(),
            OsStr::new("--json"),
            OsStr::new("--backend"),
            OsStr::new("ndarray"),
        ]);
        let report: Value = serde_json::from_slice(&infer.stdout).unwrap();
        assert_eq!(report["format"], format);
        assert_eq!(report["examples"], 10_000);
        correct.push(report["correct"].as_u64().unwrap());
    }
    // One network, three files: the same predictions on all 10,000 test images.
    assert_eq!(correct[0], correct[1], "dense vs compact");
    assert_eq!(correct[0], correct[2], "dense vs csr");
    assert!(correct[0] > 8_000, "{correct:?}");
    assert!(
        sizes[1] < sizes[0] / 3 && sizes[2] < sizes[0] / 2,
        "{sizes:?}"
    );

    // A damaged file is an error that says what it read.
    let bad = out.join("bad.safetensors");
    let bytes = std::fs::read(format!("{}.csr.safetensors", stem.display())).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() - 10]).unwrap();
    let infer = Command::new(lth()).arg("infer").arg(&bad).output().unwrap();
    assert!(!infer.status.success());
    assert!(String::from_utf8_lossy(&infer.stderr).contains("bad.safetensors"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn bench_prints_the_inference_table_and_writes_it_as_json() {
    let out = scratch("bench-inference");
    std::fs::create_dir_all(&out).unwrap();
    let json = out.join("inference.json");
    let run = lth_ok(
        [
            "bench",
            "--inference-only",
            "--inference",
            "lenet300",
            "--inference-budget",
            "0.002",
        ]
        .map(OsStr::new)
        .into_iter()
        .chain([
            OsStr::new("--backend"),
            OsStr::new("ndarray"),
            OsStr::new("--json"),
            json.as_os_str(),
        ]),
    );
    let text = String::from_utf8_lossy(&run.stdout);
    assert_eq!(text.matches("lenet300: CSR").count(), 3, "{text}");
    let rows: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    // 7 densities × 3 batches, each with three positive times.
    assert_eq!(rows.len(), 21);
    for r in rows {
        for key in ["dense_us", "csr_us", "compact_us"] {
            assert!(r[key].as_f64().unwrap() > 0.0, "{r}");
        }
        // The structured mask comes within a few units of the target density.
        let (d, c) = (
            r["density"].as_f64().unwrap(),
            r["compact_density"].as_f64().unwrap(),
        );
        assert!((c - d).abs() <= 0.01 + 0.1 * d, "{d} vs {c}");
    }
    let _ = std::fs::remove_dir_all(&out);
}
