#!/usr/bin/env bash
# Executes every notebook headlessly with the evcxr kernel; fails on an error cell or a
# missing chart. The first cell compiles lab-core (cold: several minutes; warm: `:cache`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh notebooks
start=$(date +%s)
# A fresh evcxr compile cache (`:cache`, in $XDG_CACHE_HOME/evcxr) for each test run: on this
# machine the shared one got into a state in which every kernel after the first died at
# start-up (its cargo probe of rustc failed), and a fresh one passed (measured 2026-11-23).
# The first notebook then compiles lab-core's dependencies cold (≈ 5 min), the rest reuse them.
export XDG_CACHE_HOME="$HOME/.cache/lth-lab/notebook-test-cache"
rm -rf "$XDG_CACHE_HOME" && mkdir -p "$XDG_CACHE_HOME"
# Records of notebook runs go to a fresh directory, so the test trains for real.
export LTH_NOTEBOOK_RUNS="${LTH_NOTEBOOK_RUNS:-$(mktemp -d)}"
PATH="$LTH_VENV/bin:$PATH" python tests/notebooks/run_notebooks.py "$@"
echo "test-notebooks: all notebooks ran in $(( $(date +%s) - start ))s"
