#!/usr/bin/env bash
# Sets up Jupyter and the evcxr kernel, then opens JupyterLab on notebooks/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh notebooks
cd notebooks
exec "$LTH_VENV/bin/jupyter" lab "$@"
