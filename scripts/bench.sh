#!/usr/bin/env bash
# Prints LeNet-300-100 training throughput per backend (ndarray, wgpu): `cargo bench` runs the
# same measurement. Extra flags go to `lth bench` (e.g. --steps 1000 --backend ndarray).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh core
source scripts/env.sh # again: setup may just have installed the software Vulkan driver
# Only the CLI, with the tests' feature set ($LTH_FEATURES), so this build is shared with them.
cargo build --release -p lab-cli --features "$LTH_FEATURES"
"$CARGO_TARGET_DIR/release/lth" bench "$@"
