#!/usr/bin/env bash
# The wall time of one 12-run sweep (LeNet-300-100 on MNIST, 4 seeds × 3 learning rates,
# one training of --iterations each, Flex) run four ways on this machine: one worker with
# all threads, one worker with one thread, a pool of one-thread workers (one per core), and
# a Slurm job array (one-node Slurm, one CPU per task). Prints a Markdown table and whether
# every way found the same numbers.
#   scripts/bench-sweep.sh [ITERATIONS]     (default 2000; needs root for Slurm)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
iterations="${1:-2000}"
cargo build --release -p lab-cli --features "$LTH_FEATURES" >&2
lth="$CARGO_TARGET_DIR/release/lth"
cores=$(nproc)
work=$(mktemp -d /tmp/lth-sweep-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  scripts/slurm-local.sh stop "$work/cluster" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
cat >"$work/sweep.toml" <<TOML
name = "bench-12"
[[part]]
command = "train"
args = { iterations = $iterations, eval-every = 100 }
axes = { seed = [0, 1, 2, 3], lr = [6e-4, 1.2e-3, 2.4e-3] }
TOML

rows=()
timed() { # label, out, command…
  local label=$1 out=$2 t0 t1
  shift 2
  t0=$(date +%s.%N)
  "$@" >"$work/$out.log" 2>&1
  t1=$(date +%s.%N)
  "$lth" sweep collect "$work/sweep.toml" --out "$work/$out" --require-all >/dev/null 2>&1
  rows+=("| $label | $(python3 -c "print(f'{$t1 - $t0:.1f}')") |")
}
timed "1 worker × $cores threads" seq-all "$lth" sweep run "$work/sweep.toml" --out "$work/seq-all" --workers 1 --threads "$cores"
timed "1 worker × 1 thread" seq-one "$lth" sweep run "$work/sweep.toml" --out "$work/seq-one" --workers 1 --threads 1
timed "$cores workers × 1 thread (pool)" pool "$lth" sweep run "$work/sweep.toml" --out "$work/pool" --workers "$cores" --threads 1
if command -v sbatch >/dev/null && [ "$(id -u)" -eq 0 ]; then
  conf=$(scripts/slurm-local.sh start "$work/cluster")
  export SLURM_CONF="$conf"
  slurm_array() {
    local job
    job=$("$lth" sweep submit "$work/sweep.toml" --out "$work/slurm" --slurm --parallel "$cores" --cpus-per-task 1)
    while squeue -h -j "$job" 2>/dev/null | grep -q .; do sleep 0.2; done
  }
  timed "Slurm array, $cores tasks × 1 CPU" slurm slurm_array
fi
echo "| 12-run sweep, $iterations iterations each ($(nproc) cores, $(uname -m)) | wall s |"
echo "|---|---:|"
printf '%s\n' "${rows[@]}"
# Every number but the timings, compared with the 1-worker, all-threads run.
for out in seq-one pool slurm; do
  [ -f "$work/$out/reproduction.json" ] || continue
  python3 - "$work/seq-all/reproduction.json" "$work/$out/reproduction.json" "$out" <<'PY'
import json, sys
def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if k not in ("time", "wall_seconds")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
print(f"{sys.argv[3]}: {'the same numbers as' if a == b else 'DIFFERENT numbers from'} seq-all")
PY
done
