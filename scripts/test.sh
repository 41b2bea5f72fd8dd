#!/usr/bin/env bash
# Sets up and runs every test: formatting, lints (native and wasm32), unit and integration
# tests of lab-core on every backend (ndarray, flex, and wgpu through software Vulkan), the
# CLI end to end, lab-wasm and the www page in headless Chromium, and the notebooks executed
# with the evcxr kernel, and sweeps through a real one-node Slurm.
#   scripts/test.sh                 everything (what .ci/run runs)
#   scripts/test.sh native|slurm|browser|notebooks   one part
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
part="${1:-all}"
start=$(date +%s)
lap() { echo "scripts/test.sh: $1 after $(( $(date +%s) - start ))s"; }

# All of it: the system's packages first; then the cargo-installed tools (wasm-bindgen-cli,
# evcxr_jupyter: about 10 min of compiling on a fresh machine) build niced in the background,
# one after the other, in the time the native tests, Slurm and the browser leave a core idle;
# each part waits for its tool when it needs it. On a set-up machine they are found at once.
tools="$HOME/.cache/lth-lab/setup-tools"
tools_pid=
if [ "$part" = all ]; then
  scripts/setup.sh system
  rm -rf "$tools" && mkdir -p "$tools"
  (
    for tool in browser-tools notebook-tools; do
      status=0
      nice -n 19 scripts/setup.sh "$tool" >"$tools/$tool.log" 2>&1 || status=$?
      echo "$status" >"$tools/$tool.rc"
    done
  ) &
  tools_pid=$!
fi
# Waits for one background tool (its log printed); a failed install fails the run here.
await_tool() {
  [ -n "$tools_pid" ] || return 0
  local waited=$(date +%s)
  while [ ! -e "$tools/$1.rc" ]; do sleep 2; done
  sed 's/^/  (background) /' "$tools/$1.log"
  [ "$(cat "$tools/$1.rc")" = 0 ] || { echo "scripts/test.sh: setup.sh $1 failed" >&2; exit 1; }
  lap "$1 ready (waited $(( $(date +%s) - waited ))s)"
}

if [ "$part" = all ] || [ "$part" = native ]; then
  scripts/setup.sh core
  source scripts/env.sh # again: setup may just have installed the software Vulkan driver
  # $LTH_FEATURES (env.sh) is also what bench.sh builds with: burn compiles once. `lint`
  # (env.sh) makes the build the clippy run too: every target, benches included.
  cargo fmt --all -- --check
  lint cargo build --release --workspace --all-targets --features "$LTH_FEATURES"
  lint cargo test --release --workspace --features "$LTH_FEATURES"
  lap "native tests passed"
fi
if [ "$part" = all ] || [ "$part" = slurm ]; then
  scripts/test-slurm.sh
  lap "Slurm sweep test passed"
fi
if [ "$part" = all ] || [ "$part" = browser ]; then
  await_tool browser-tools
  scripts/test-browser.sh
  lap "browser tests passed"
fi
if [ "$part" = all ] || [ "$part" = notebooks ]; then
  await_tool notebook-tools
  scripts/test-notebooks.sh
  lap "notebooks passed"
fi
echo "scripts/test.sh: all passed in $(( $(date +%s) - start ))s"
