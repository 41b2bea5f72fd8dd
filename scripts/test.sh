#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints, unit and integration tests of lab-core on
# both backends (ndarray, and wgpu through software Vulkan), and the CLI end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh

start=$(date +%s)
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets --features lab-core/wgpu,lab-core/flex -- -D warnings
cargo build --release --workspace --features lab-core/wgpu,lab-core/flex
cargo test --release --workspace --features lab-core/wgpu,lab-core/flex
echo "scripts/test.sh: all passed in $(( $(date +%s) - start ))s"
