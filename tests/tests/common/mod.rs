//! What the end-to-end tests of the `lth` binary share.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// The binary cargo built for this test run (the tests are declared in lab-cli/Cargo.toml).
pub fn lth() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lth"))
}

/// An empty scratch folder of this test process, `lth-<suite>-<pid>-<name>` in the temp dir.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lth-{suite}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A short IMP on a subset of MNIST: `lth imp`'s flags.
pub const QUICK: [&str; 8] = [
    "--iterations",
    "150",
    "--eval-every",
    "50",
    "--train-subset",
    "6000",
    "--eval-subset",
    "1000",
];

/// Rounds without their wall times (which differ between two runs of the same work).
pub fn strip_timing(rounds: &Value) -> Vec<Value> {
    rounds
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let fields = r.as_object_mut().unwrap();
            fields.remove("time");
            fields.remove("wall_seconds");
            r
        })
        .collect()
}
