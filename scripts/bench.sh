#!/usr/bin/env bash
# Prints LeNet-300-100 training throughput per backend (ndarray, wgpu): `cargo bench` runs the
# same measurement. Extra flags go to `lth bench` (e.g. --steps 1000 --backend ndarray).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
cargo build --release --workspace --features lab-core/wgpu,lab-core/flex
"$CARGO_TARGET_DIR/release/lth" bench "$@"
