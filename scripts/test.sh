#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints (native and wasm32), unit and integration
# tests of lab-core on every backend (ndarray, flex, and wgpu through software Vulkan), the
# CLI end to end, lab-wasm and the www page in headless Chromium, and the notebooks executed
# with the evcxr kernel, and sweeps through a real one-node Slurm.
#   scripts/test.sh                 everything (what .ci/run runs)
#   scripts/test.sh native|slurm|browser|notebooks   one part
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
part="${1:-all}"
start=$(date +%s)
lap() { echo "scripts/test.sh: $1 after $(( $(date +%s) - start ))s"; }

if [ "$part" = all ] || [ "$part" = native ]; then
  scripts/setup.sh core
  source scripts/env.sh # again: setup may just have installed the software Vulkan driver
  # $LTH_FEATURES (env.sh) is also what imp.sh and bench.sh build with: burn compiles once.
  cargo fmt --all -- --check
  cargo clippy --release --workspace --all-targets --features "$LTH_FEATURES" -- -D warnings
  cargo build --release --workspace --features "$LTH_FEATURES"
  cargo test --release --workspace --features "$LTH_FEATURES"
  lap "native tests passed"
fi
if [ "$part" = all ] || [ "$part" = slurm ]; then
  scripts/test-slurm.sh
  lap "Slurm sweep test passed"
fi
if [ "$part" = all ] || [ "$part" = browser ]; then
  scripts/setup.sh browser
  cargo clippy --release --target wasm32-unknown-unknown -p lab-wasm --all-targets -- -D warnings
  scripts/test-browser.sh
  lap "browser tests passed"
fi
if [ "$part" = all ] || [ "$part" = notebooks ]; then
  scripts/test-notebooks.sh
  lap "notebooks passed"
fi
echo "scripts/test.sh: all passed in $(( $(date +%s) - start ))s"
