#!/usr/bin/env bash
# Builds lab-wasm for the page (wasm-pack --target web) into www/pkg.
#   scripts/build-www.sh [--dev]      (release by default: training runs ~10× faster)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh browser
profile=--release
[ "${1:-}" = "--dev" ] && profile=--dev
start=$(date +%s)
# wasm-opt is off in lab-wasm's Cargo.toml: nothing is downloaded.
wasm-pack build lab-wasm $profile --target web --out-dir ../www/pkg --no-pack
echo "build-www: www/pkg built in $(( $(date +%s) - start ))s"
