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
# wasm-pack's wasm-opt is off in lab-wasm's Cargo.toml (it would download binaryen); Debian's
# binaryen (setup.sh) optimises the release module instead. Its features are those rustc's
# wasm32 target emits, plus SIMD128 (.cargo/config.toml).
wasm-pack build lab-wasm $profile --target web --out-dir ../www/pkg --no-pack
wasm=www/pkg/lab_wasm_bg.wasm
if [ "$profile" = --release ]; then
  before=$(stat -c %s "$wasm")
  wasm-opt -O2 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$wasm" -o "$wasm.opt"
  mv "$wasm.opt" "$wasm"
  echo "build-www: wasm-opt -O2: $before -> $(stat -c %s "$wasm") bytes," \
    "$(gzip -9 -c "$wasm" | wc -c) gzipped"
fi
echo "build-www: www/pkg built in $(( $(date +%s) - start ))s"
