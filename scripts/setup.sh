#!/usr/bin/env bash
# Installs what LTH Lab needs beyond rustup itself. Idempotent; quick when done before.
#   scripts/setup.sh            everything
#   scripts/setup.sh core       the pinned toolchain (rust-toolchain.toml), a C toolchain,
#                               pkg-config, Debian packages for the native lab
#   scripts/setup.sh browser    + wasm32 target, Node >= 20 and npm, Chromium, chromedriver,
#                               wasm-bindgen-cli, binaryen (wasm-opt)
#   scripts/setup.sh notebooks  + Jupyter (PyPI, in a venv) and the evcxr kernel (crates.io)
#   scripts/setup.sh slurm      + Slurm and munge (Debian's slurm-wlm, munge) for the sweep test
#   scripts/setup.sh system     everything but the cargo-installed tools
#   scripts/setup.sh browser-tools | notebook-tools
#                               only those tools (wasm-bindgen-cli; evcxr_jupyter), as
#                               scripts/test.sh builds them in the background after `system`
# Nothing is fetched outside rustup's, crates.io, PyPI, npm and Debian's servers. What apt
# cannot provide (Node >= 20 on Debian 12, rustup itself) stops the script with what to do.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
what="${1:-all}"
case "$what" in
  core | browser | notebooks | slurm | system | browser-tools | notebook-tools | all) ;;
  *) echo "usage: scripts/setup.sh [core|browser|notebooks|slurm|system|browser-tools|notebook-tools|all]" >&2; exit 2 ;;
esac
setup_start=$(date +%s)

die() { echo "setup: error: $*" >&2; exit 1; }

# Everything below runs cargo or rustup, and rust-toolchain.toml needs rustup to take effect.
if ! command -v cargo >/dev/null || ! command -v rustup >/dev/null; then
  die "cargo and rustup are needed (found: cargo $(command -v cargo || echo none), rustup $(command -v rustup || echo none)). Install rustup from your distribution (Debian 13: apt install rustup) or from https://rustup.rs, then rerun scripts/setup.sh."
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "root is needed for: $* (rerun as root, or install sudo)"; fi
}

apt_updated=
apt_update_once() {
  [ -n "$apt_updated" ] && return 0
  as_root apt-get update -qq
  apt_updated=1
}

# Installs (or upgrades) packages; `env` because sudo drops DEBIAN_FRONTEND.
apt_get_install() {
  command -v apt-get >/dev/null ||
    die "$* missing and no apt-get here: install them (or your system's equivalents), then rerun"
  echo "setup: apt-get install $*"
  local t0
  t0=$(date +%s)
  apt_update_once
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  echo "setup: apt took $(( $(date +%s) - t0 ))s"
}

# Installs the Debian packages not installed yet.
apt_install() {
  if ! command -v dpkg-query >/dev/null; then
    echo "setup: warning: not Debian-based: make sure the equivalents of $* are installed" >&2
    return 0
  fi
  local missing=()
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then apt_get_install "${missing[@]}"; fi
}

# The major number of a version (v20.1.0, 1:20.19.2+dfsg-1), 0 for anything else.
major() {
  local v=${1#*:}
  v=${v#v}
  v=${v%%.*}
  if [[ "$v" =~ ^[0-9]+$ ]]; then echo "$v"; else echo 0; fi
}

# `cargo install` only when the wanted version is not there yet (a few minutes each otherwise),
# in a target dir of its own (cargo's temporary one): the shared one's lock would make a tool
# built in the background wait for the tests' builds, and the reverse.
# --force: the wanted version is missing (checked here), so replace any other, from any source.
# --locked builds with the tool's own Cargo.lock. When the registry lacks a version pinned there
# (wasm-bindgen-cli 0.2.130 pins webpki-roots 1.0.11, which the crates.io mirror here lacks),
# that lockfile is kept but for the packages cargo names, moved one at a time with
# `cargo update -p name@version` (each move printed), and the tool installed --locked from that
# copy in ~/.cache/lth-lab/tools/ (its Cargo.lock there is what was built). A fresh resolution
# (every dependency at its newest compatible version) is the last resort. Both say so loudly.
cargo_tool() {
  local crate=$1 version=$2 binary=$3
  # Here-strings, not pipes, into grep -q: with pipefail an early exit would read as failure.
  if command -v "$binary" >/dev/null &&
    grep -Eq "^$crate v${version//./\\.}[ :]" <<<"$(cargo install --list)"; then
    return 0
  fi
  echo "setup: cargo install $crate $version"
  local t0 log reason
  t0=$(date +%s)
  log=$(mktemp)
  if ! env -u CARGO_TARGET_DIR cargo install --locked --force --quiet "$crate" --version "$version" 2>"$log"; then
    if ! grep -q 'locked to\|lock file' "$log"; then
      cat "$log" >&2
      die "cargo install $crate $version failed"
    fi
    reason=$(grep -m1 '^error' "$log" | sed 's/^error: //' || true)
    echo "setup: warning: cargo install --locked $crate $version failed ($reason);" \
      "installing with its Cargo.lock, moving only what this registry lacks" >&2
    if ! cargo_tool_relocked "$crate" "$version"; then
      echo "setup: warning: $crate $version: its Cargo.lock could not be kept;" \
        "installing with a fresh resolution (every dependency at its newest compatible version)" >&2
      env -u CARGO_TARGET_DIR cargo install --force --quiet "$crate" --version "$version"
    fi
  fi
  rm -f "$log"
  echo "setup: $crate took $(( $(date +%s) - t0 ))s; installed: $(cargo install --list | grep "^$crate v")"
}

# "name version" per package of a Cargo.lock.
lock_versions() {
  awk '/^name = / {n = $3} /^version = / {v = $3; gsub(/"/, "", n); gsub(/"/, "", v); print n " " v}' "$1" | sort
}

# See cargo_tool. Runs in an `if`, where bash ignores `set -e`: every step checks itself.
cargo_tool_relocked() {
  local crate=$1 version=$2 src dir log spec before moved
  # The failed `cargo install --locked` unpacked the crate here.
  src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"$crate-$version" 2>/dev/null | head -n1)
  [ -n "$src" ] && [ -f "$src/Cargo.lock" ] || return 1
  dir="$HOME/.cache/lth-lab/tools/$crate-$version"
  rm -rf "$dir" && mkdir -p "$(dirname "$dir")" && cp -R "$src" "$dir" || return 1
  log=$(mktemp)
  # --manifest-path (no cd): cargo runs here, on the toolchain rust-toolchain.toml pins.
  for _ in 1 2 3 4 5 6 7 8; do
    if cargo fetch --locked --quiet --manifest-path "$dir/Cargo.toml" 2>"$log"; then
      rm -f "$log"
      env -u CARGO_TARGET_DIR cargo install --locked --force --quiet --path "$dir" || die "cargo install $crate $version failed"
      return 0
    fi
    spec=$(sed -n 's/.*failed to select a version for the requirement `\([^ `]*\) = .*(locked to \([^)]*\)).*/\1@\2/p' "$log" | head -n1)
    [ -n "$spec" ] || break
    before=$(lock_versions "$dir/Cargo.lock")
    cargo update --quiet --manifest-path "$dir/Cargo.toml" -p "$spec" 2>"$log" || break
    moved=$(comm -13 <(echo "$before") <(lock_versions "$dir/Cargo.lock") | paste -sd ' ' -)
    echo "setup: warning: $crate $version: ${spec/@/ } (locked) is not in this registry; using ${moved:-?}" >&2
  done
  cat "$log" >&2
  rm -f "$log"
  return 1
}

# rust-toolchain.toml pins the toolchain: install it here, visibly and timed, rather than on
# the first cargo command. Only when missing, so a set-up machine needs no network.
setup_toolchain() {
  local channel t0
  channel=$(sed -n 's/^channel = "\(.*\)"$/\1/p' rust-toolchain.toml)
  if [ -n "$channel" ] && ! grep -q "^$channel-" <<<"$(rustup toolchain list)"; then
    echo "setup: rustup toolchain install $channel"
    t0=$(date +%s)
    rustup toolchain install "$channel" --profile minimal --component clippy,rustfmt
    echo "setup: toolchain $channel took $(( $(date +%s) - t0 ))s"
  fi
  for component in clippy rustfmt; do
    grep -q "^$component" <<<"$(rustup component list --installed)" || rustup component add "$component"
  done
}

setup_core() {
  setup_toolchain
  # rustc links through cc, and ring, zstd-sys and freetype-sys compile C.
  if ! command -v cc >/dev/null; then apt_install gcc libc6-dev; fi
  command -v cc >/dev/null || die "no C compiler (cc): install gcc or clang, then rerun"
  # Software Vulkan for wgpu, fontconfig (found through pkg-config) and a font for PNG charts,
  # the Fashion-MNIST data set.
  apt_install mesa-vulkan-drivers libvulkan1 libfontconfig-dev fonts-dejavu-core pkg-config dataset-fashion-mnist
  command -v pkg-config >/dev/null || die "no pkg-config: install pkg-config (or pkgconf), then rerun"
}

node_major() { major "$(node --version 2>/dev/null || echo none)"; }

# Node and npm run the page tests (Playwright) and the TensorFlow.js benchmark.
setup_node() {
  local found offered=none
  found=$(node --version 2>/dev/null || echo none)
  if [ "$(node_major)" -lt 20 ] && command -v apt-get >/dev/null; then
    echo "setup: Node.js >= 20 needed (found: $found), asking apt"
    apt_update_once
    offered=$(apt-cache policy nodejs | awk '/Candidate:/ {print $2}')
    # Debian 12 offers 18: then the message below, not an install of a Node too old.
    if [ "$(major "$offered")" -ge 20 ]; then apt_get_install nodejs; fi # installs or upgrades
  fi
  [ "$(node_major)" -ge 20 ] ||
    die "Node.js >= 20 is needed for the browser part (found: $found; apt offers: ${offered:-none}). Install Node 20 or later (https://nodejs.org/en/download: NodeSource's apt repository or nvm), then rerun."
  if ! command -v npm >/dev/null; then apt_install npm; fi
  command -v npm >/dev/null ||
    die "npm is missing: install it (Debian: apt install npm; it comes with Node.js from nodejs.org and NodeSource), then rerun"
}

setup_browser() {
  setup_node
  # binaryen: wasm-opt shrinks the page's module (scripts/build-www.sh).
  apt_install chromium chromium-driver binaryen
  grep -q wasm32-unknown-unknown <<<"$(rustup target list --installed)" || rustup target add wasm32-unknown-unknown
}

# wasm-bindgen (the page) and wasm-bindgen-test-runner (cargo's runner for the wasm32 tests).
browser_tools() {
  # The CLI must match the wasm-bindgen in Cargo.lock exactly.
  local bindgen
  bindgen=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version="]/, "", $0); gsub(/ /, "", $0); print; exit}' Cargo.lock)
  cargo_tool wasm-bindgen-cli "$bindgen" wasm-bindgen
}

setup_notebooks() {
  local venv="$LTH_VENV" t0
  if [ ! -x "$venv/bin/jupyter-execute" ]; then
    echo "setup: Jupyter into $venv"
    t0=$(date +%s)
    if ! command -v python3 >/dev/null; then apt_install python3; fi
    # Creating the venv is the test: Debian ships venv's pip bootstrap in python3-venv.
    if ! python3 -m venv --clear "$venv" >/dev/null 2>&1; then
      apt_install python3-venv
      python3 -m venv --clear "$venv" ||
        die "$(command -v python3) cannot create a virtual environment: install its venv module (Debian: python3-venv), then rerun"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check jupyterlab nbclient nbconvert nbformat
    echo "setup: Jupyter took $(( $(date +%s) - t0 ))s"
  fi
}

notebook_tools() {
  local venv="$LTH_VENV"
  cargo_tool evcxr_jupyter 0.22.0 evcxr_jupyter
  # Registers the "rust" kernel for this user (kernel.json points at evcxr_jupyter).
  if ! grep -q '^ *rust ' <<<"$("$venv/bin/jupyter" kernelspec list 2>/dev/null)"; then
    PATH="$venv/bin:$PATH" evcxr_jupyter --install >/dev/null
  fi
}

setup_slurm() {
  # The daemons (slurmctld, slurmd), the client commands, and munge for their authentication;
  # scripts/slurm-local.sh starts a one-node cluster from them.
  apt_install slurm-wlm munge
}

case "$what" in
  core) setup_core ;;
  browser) setup_core; setup_browser; browser_tools ;;
  notebooks) setup_core; setup_notebooks; notebook_tools ;;
  slurm) setup_core; setup_slurm ;;
  system) setup_core; setup_browser; setup_notebooks; setup_slurm ;;
  browser-tools) browser_tools ;;
  notebook-tools) notebook_tools ;;
  all) setup_core; setup_browser; setup_notebooks; setup_slurm; browser_tools; notebook_tools ;;
esac
echo "setup: $what ready in $(( $(date +%s) - setup_start ))s"
