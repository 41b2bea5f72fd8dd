//! Finds real MNIST for the browser tests, which embed it (a browser test cannot read
//! files): `LTH_DATA`, else `data/mnist` or `shared/mnist` beside any ancestor directory.

use std::path::{Path, PathBuf};

const PROBE: &str = "t10k-labels-idx1-ubyte.gz";

fn main() {
    println!("cargo:rerun-if-env-changed=LTH_DATA");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut candidates: Vec<PathBuf> = std::env::var_os("LTH_DATA")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    for dir in manifest.ancestors() {
        candidates.push(dir.join("data/mnist"));
        candidates.push(dir.join("shared/mnist"));
    }
    let found = candidates.iter().find(|dir| dir.join(PROBE).is_file());
    // Without the files, only the tests fail to compile, naming this path.
    let dir = found.map_or_else(
        || Path::new("MNIST-not-found-set-LTH_DATA").to_path_buf(),
        Clone::clone,
    );
    println!("cargo:rustc-env=LTH_WASM_TEST_MNIST={}", dir.display());
}
