#!/usr/bin/env bash
# Training throughput in headless Chromium: lab-wasm (CPU and WebGPU) against TensorFlow.js
# on the same LeNet-300-100. Prints a markdown table.   scripts/bench-browser.sh [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build-www.sh
cd tests/browser
npm ci --no-audit --no-fund --loglevel=error
node bench.mjs "$@"
# The page's default experiment, timed end to end on the CPU path.
node defaults.mjs cpu
