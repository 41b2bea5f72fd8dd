#!/usr/bin/env bash
# Builds lab-wasm for the page into www/pkg: cargo (wasm32), then binaryen's wasm-opt -O2 on
# rustc's module, then wasm-bindgen --target web.
#   scripts/build-www.sh [--dev] [--lint]   (release by default: training runs ~10x faster;
#                                           --lint: clippy's lints in the same compile, as the
#                                           browser test builds, so its crates are reused)
#
# wasm-opt runs BEFORE wasm-bindgen: Debian's binaryen 108 rewrites the externref table that
# wasm-bindgen adds as anyref, which Chromium rejects, so it cannot run on wasm-bindgen's
# output (as wasm-pack would run it); rustc's module has no externref yet. Measured
# 2026-11-23: 46.7 MB -> 28.5 MB raw, 7.2 MB -> 6.1 MB gzipped, the page test passing.
# Without wasm-opt (not Debian, say), the module is left unoptimised and the script says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh browser
profile=release
linted=()
for arg in "$@"; do
  case "$arg" in
    --dev) profile=dev ;;
    --lint) linted=(lint) ;;
    *) echo "usage: scripts/build-www.sh [--dev] [--lint]" >&2; exit 2 ;;
  esac
done
start=$(date +%s)
if [ "$profile" = release ]; then
  "${linted[@]}" cargo build --release --target wasm32-unknown-unknown -p lab-wasm
  built="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/lab_wasm.wasm"
else
  "${linted[@]}" cargo build --target wasm32-unknown-unknown -p lab-wasm
  built="$CARGO_TARGET_DIR/wasm32-unknown-unknown/debug/lab_wasm.wasm"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$profile" = release ] && command -v wasm-opt >/dev/null; then
  # The features rustc 1.95 emits for wasm32 (+simd128 from .cargo/config.toml).
  wasm-opt -O2 --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    "$built" -o "$work/lab_wasm.wasm"
  echo "build-www: wasm-opt -O2: $(stat -c %s "$built") -> $(stat -c %s "$work/lab_wasm.wasm") bytes"
else
  [ "$profile" = release ] && echo "build-www: no wasm-opt (binaryen) here: the module stays unoptimised" >&2
  cp "$built" "$work/lab_wasm.wasm"
fi
rm -rf www/pkg
wasm-bindgen --target web --out-dir www/pkg "$work/lab_wasm.wasm"
echo "build-www: www/pkg built in $(( $(date +%s) - start ))s ($(stat -c %s www/pkg/lab_wasm_bg.wasm) bytes, $(gzip -9 -c www/pkg/lab_wasm_bg.wasm | wc -c) gzipped)"
