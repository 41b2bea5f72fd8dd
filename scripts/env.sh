# Sourced by the other scripts: one build cache outside the checkout, shared by every clone
# on this machine (CI runs on a fresh clone but usually on a machine that already built).
# Cargo tells fresh from stale by file times, so two checkouts edited side by side on one
# machine should each set their own CARGO_TARGET_DIR (a fresh clone is always newer: safe).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/lth-lab/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# The one feature set of every native cargo command (imp.sh, bench.sh, test.sh): cargo keys
# each build of burn and lab-core by its features, so a second set would compile them twice.
export LTH_FEATURES=lab-core/wgpu,lab-core/flex,lab-core/evcxr
# Mesa's lavapipe (software Vulkan) for the wgpu backend where no GPU driver is present.
# Written to survive `set -euo pipefail` in the caller on a machine that has neither yet
# (a fresh CI machine sources this before setup.sh installs Mesa; test.sh sources it again).
if [ -z "${VK_ICD_FILENAMES:-}${VK_DRIVER_FILES:-}" ] && ! compgen -G '/usr/share/vulkan/icd.d/nvidia*' >/dev/null; then
  for lvp in /usr/share/vulkan/icd.d/lvp_icd.*.json; do
    if [ -e "$lvp" ]; then export VK_DRIVER_FILES="$lvp"; fi
    break
  done
fi
# wgpu's Vulkan loader warns without a runtime dir (headless machines, CI).
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  export XDG_RUNTIME_DIR="$HOME/.cache/lth-lab/xdg-runtime"
  mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
fi
# Jupyter lives in its own venv; cargo-installed tools (evcxr_jupyter, wasm-bindgen-cli) in Cargo's bin.
export LTH_VENV="${LTH_VENV:-$HOME/.cache/lth-lab/venv}"
export PATH="$HOME/.cargo/bin:$PATH"
# `lint cargo build|test …`: the workspace's own crates compile through clippy-driver with
# -D warnings, so one compile both lints and builds them. `cargo clippy` would type-check every
# dependency once more in check mode (minutes when cold, for burn and wgpu twice: native and
# wasm32). This is what `cargo clippy -- -D warnings` sets up, applied to a build; the test
# scripts use it, and every cargo command of one test run must, or cargo rebuilds the crates.
lint() {
  RUSTC_WORKSPACE_WRAPPER="$(rustc --print sysroot)/bin/clippy-driver" \
    CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__ "$@"
}
