#!/usr/bin/env bash
# Sets up, builds, and runs the main job: IMP on real MNIST (LeNet-300-100, 5 rounds of 2,000
# iterations, with the random-reinit control), then prints the table. Output: runs/quickstart/
# (report.json, accuracy.png/svg, early_stop.png/svg, curves.png/svg). Extra flags go to `lth imp`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh
cargo build --release --workspace --features lab-core/wgpu,lab-core/flex
"$CARGO_TARGET_DIR/release/lth" imp --rounds 5 --iterations 2000 --control reinit \
  --out runs/quickstart "$@"
