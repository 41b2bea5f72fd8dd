//! Finds real MNIST for the browser tests, which embed it (a browser test cannot read
//! files): `LTH_DATA`, else `data/mnist` or `shared/mnist` beside any ancestor directory,
//! else the cache `lth imp --download` fills (`$LTH_CACHE`, `$XDG_CACHE_HOME/lth-lab` or
//! `~/.cache/lth-lab`, then `mnist/`) — the order of lab-core's `data::native`.

use std::path::{Path, PathBuf};

const PROBE: &str = "t10k-labels-idx1-ubyte.gz";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for variable in ["LTH_DATA", "LTH_CACHE", "XDG_CACHE_HOME", "HOME"] {
        println!("cargo:rerun-if-env-changed={variable}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut candidates: Vec<PathBuf> = std::env::var_os("LTH_DATA")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    for dir in manifest.ancestors() {
        candidates.push(dir.join("data/mnist"));
        candidates.push(dir.join("shared/mnist"));
    }
    let cache = std::env::var_os("LTH_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("lth-lab")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/lth-lab")));
    candidates.extend(cache.map(|c| c.join("mnist")));
    let found = candidates.iter().find(|dir| dir.join(PROBE).is_file());
    // Until the data appears, look again on every build rather than caching "not found".
    match found {
        Some(dir) => println!("cargo:rerun-if-changed={}", dir.join(PROBE).display()),
        None => {
            for dir in &candidates {
                println!("cargo:rerun-if-changed={}", dir.display());
            }
        }
    }
    // Without the files, only the tests fail to compile, naming this path.
    let dir = found.map_or_else(
        || Path::new("MNIST-not-found-set-LTH_DATA").to_path_buf(),
        Clone::clone,
    );
    println!("cargo:rustc-env=LTH_WASM_TEST_MNIST={}", dir.display());
}
