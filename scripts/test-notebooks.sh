#!/usr/bin/env bash
# Executes every notebook headlessly with the evcxr kernel; fails on an error cell or a
# missing chart. The first cell compiles lab-core (cold: several minutes; warm: `:cache`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh notebooks
start=$(date +%s)
# All notebooks run in one kernel, :clear between them, on a fresh evcxr compile cache
# (see tests/notebooks/run_notebooks.py).
export LTH_NOTEBOOK_CACHES="$HOME/.cache/lth-lab/notebook-test-caches"
# Records of notebook runs go to a fresh directory, so the test trains for real.
export LTH_NOTEBOOK_RUNS="${LTH_NOTEBOOK_RUNS:-$(mktemp -d)}"
PATH="$LTH_VENV/bin:$PATH" python tests/notebooks/run_notebooks.py "$@"
echo "test-notebooks: all notebooks ran in $(( $(date +%s) - start ))s"
