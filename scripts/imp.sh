#!/usr/bin/env bash
# Sets up, builds, and runs the main job: IMP on real MNIST (LeNet-300-100, 5 rounds of 2,000
# iterations, with the random-reinit control), then prints the table. Output: runs/quickstart/
# (report.json, accuracy.png/svg, early_stop.png/svg, curves.png/svg). Extra flags go to `lth imp`.
# Ends with the time to this first result, split into set-up, build and run.
set -euo pipefail
start=$(date +%s)
cd "$(dirname "$0")/.."
source scripts/env.sh
# Only what the native run needs: Chromium, the wasm tools and Jupyter come with test.sh.
scripts/setup.sh core
source scripts/env.sh # again: setup may just have installed the software Vulkan driver
set_up=$(date +%s)
# Only what the CPU run needs: the CLI on Flex, without wgpu's GPU stack and NdArray (about
# half of a cold build's work, see docs/measurements.md). scripts/test.sh builds every
# backend in a build of its own: cargo unifies features per build, so almost nothing of this
# one is reused there (measured cold, 2026-12-07).
cargo build --release -p lab-cli --no-default-features --features flex
built=$(date +%s)
# Later flags override earlier ones (clap's args_override_self), so `--out DIR` works too.
# --download fetches MNIST (checksummed) into the cache only when no local copy is found.
out=runs/quickstart
"$CARGO_TARGET_DIR/release/lth" imp --rounds 5 --iterations 2000 --control reinit \
  --download --out "$out" "$@"
end=$(date +%s)
echo "imp: first result (report.json) $(( end - start ))s after start:" \
  "set-up $(( set_up - start ))s, build $(( built - set_up ))s, IMP $(( end - built ))s"
