#!/usr/bin/env bash
# The sweep on a real Slurm (Debian's slurm-wlm and munge, one node on this machine): a
# scaled-down reproduction of Frankle & Carbin runs with the local worker pool and as a Slurm
# job array; the array is cancelled once a run has a checkpoint (what a time limit does),
# submitted again, resumes from the checkpoint, and both collect to the same figures.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
start=$(date +%s)
lap() { echo "test-slurm: $1 after $(( $(date +%s) - start ))s"; }
scripts/setup.sh slurm
# The native tests' build (scripts/test.sh native), found fresh when they ran first.
lint cargo build --release --workspace --features "$LTH_FEATURES"
lth="$CARGO_TARGET_DIR/release/lth"
work=$(mktemp -d /tmp/lth-slurm-test.XXXXXX)
chmod 755 "$work" # the daemons' users (munge) reach the cluster's files under it
cleanup() {
  scripts/slurm-local.sh stop "$work/cluster" || true
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-slurm: FAILED: $*" >&2; exit 1; }

conf=$(scripts/slurm-local.sh start "$work/cluster")
export SLURM_CONF="$conf"
lap "one-node Slurm up ($(sinfo -h -o '%P %D nodes %c CPUs %t'))"

# The paper's protocol as a sweep, scaled down: 2 seeds, 3 rounds of 400 iterations, controls
# at 100% and 51%; checkpoints every 100 iterations so a cancelled run has one to resume.
"$lth" reproduce lth-lenet300 --budget 400 --seeds 2 --rounds 3 --levels 100,51.3 \
  --print-sweep >"$work/sweep.toml"
echo "checkpoint-every = 100" >>"$work/sweep.toml"   # the last table is [part.args]
"$lth" sweep plan "$work/sweep.toml" --out "$work/slurm"

"$lth" sweep run "$work/sweep.toml" --out "$work/local" --workers 2 --threads 1
"$lth" sweep collect "$work/sweep.toml" --out "$work/local" --require-all >/dev/null
lap "local pool done"

wait_for_job() {
  while squeue -h -j "$1" 2>/dev/null | grep -q .; do sleep 0.5; done
}

job=$("$lth" sweep submit "$work/sweep.toml" --out "$work/slurm" --slurm --parallel 2 --cpus-per-task 1)
echo "test-slurm: job array $job"
# Cancel the array as soon as a run has written a checkpoint, as Slurm's time limit would.
for _ in $(seq 600); do
  if find "$work/slurm/runs" -name checkpoint.bin 2>/dev/null | grep -q .; then break; fi
  squeue -h -j "$job" | grep -q . || fail "the array ended before any checkpoint"
  sleep 0.1
done
scancel "$job"
wait_for_job "$job"
status=$("$lth" sweep status "$work/slurm/sweep.toml" --out "$work/slurm")
echo "$status"
grep -Eq "interrupted|pending" <<<"$status" || fail "nothing was left unfinished by the cancel"
find "$work/slurm/runs" -name checkpoint.bin | grep -q . || fail "no checkpoint was left to resume from"
lap "array cancelled with a checkpoint on disk"

job=$("$lth" sweep submit "$work/sweep.toml" --out "$work/slurm" --slurm --parallel 2 --cpus-per-task 1)
echo "test-slurm: resubmitted the unfinished entries as $job"
wait_for_job "$job"
grep -l "resumed at iteration" "$work"/slurm/slurm/"${job}"_*.out >/dev/null ||
  fail "no task of the resubmission resumed from a checkpoint"
# Each task ran its own entry, the one its SLURM_ARRAY_TASK_ID names.
for log in "$work"/slurm/slurm/"${job}"_*.out; do
  task=${log##*_}
  task=${task%.out}
  grep -q "entry $task done in" "$log" || fail "task $task did not run entry $task: $(cat "$log")"
done
"$lth" sweep status "$work/sweep.toml" --out "$work/slurm" | tail -n 1 | grep -q "2 done, 0 running, 0 interrupted, 0 failed, 0 pending" ||
  fail "the resubmission did not finish the sweep"
"$lth" sweep collect "$work/sweep.toml" --out "$work/slurm" --require-all >/dev/null
lap "Slurm array done"

# A resubmission of a finished sweep submits nothing.
"$lth" sweep submit "$work/sweep.toml" --out "$work/slurm" --slurm 2>&1 | grep -q "nothing to submit" ||
  fail "a finished sweep was submitted again"

# The same figures: the table, and every number of reproduction.json but the timings.
diff "$work/local/table.md" "$work/slurm/table.md" || fail "the tables differ"
python3 - "$work/local/reproduction.json" "$work/slurm/reproduction.json" <<'PY'
import json, sys
def strip(value):
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items()
                if k not in ("time", "wall_seconds", "resumed_wall_seconds")}
    if isinstance(value, list):
        return [strip(v) for v in value]
    return value
local, slurm = (strip(json.load(open(p))) for p in sys.argv[1:])
if local != slurm:
    sys.exit("test-slurm: FAILED: reproduction.json differs between the pool and Slurm")
rounds = sum(len(seed) for group in local["groups"].values() for seed in group)
print(f"test-slurm: {rounds} trainings, {len(local['seeds'])} seeds: identical numbers")
PY
lap "passed"
