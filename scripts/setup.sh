#!/usr/bin/env bash
# Installs what LTH Lab needs beyond the Rust toolchain. Idempotent; quick when done before.
#   scripts/setup.sh            everything
#   scripts/setup.sh core       Debian packages and rustup components for the native lab
#   scripts/setup.sh browser    + wasm32 target, Chromium, chromedriver, wasm-pack, wasm-bindgen-cli
#   scripts/setup.sh notebooks  + Jupyter (PyPI, in a venv) and the evcxr kernel (crates.io)
# Nothing is fetched outside crates.io, PyPI, npm and Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
what="${1:-all}"

apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# `cargo install` only when the wanted version is not there yet (a few minutes each otherwise).
cargo_tool() {
  local crate=$1 version=$2 binary=$3
  if command -v "$binary" >/dev/null && cargo install --list | grep -q "^$crate v$version:"; then
    return 0
  fi
  echo "setup: cargo install $crate $version"
  local t0=$(date +%s)
  # --locked reproduces the tool's own lockfile; when the registry lacks a locked version
  # (wasm-bindgen-cli 0.2.130 pins a webpki-roots that the mirror here does not carry),
  # fall back to a fresh resolution.
  cargo install --locked --quiet "$crate" --version "$version" ||
    cargo install --quiet "$crate" --version "$version"
  echo "setup: $crate took $(( $(date +%s) - t0 ))s"
}

setup_core() {
  # Software Vulkan for wgpu, fontconfig and a font for PNG charts, the Fashion-MNIST data set.
  apt_install mesa-vulkan-drivers libvulkan1 libfontconfig-dev fonts-dejavu-core pkg-config dataset-fashion-mnist
  for component in clippy rustfmt; do
    rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
  done
}

setup_browser() {
  apt_install chromium chromium-driver
  rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  # The CLI must match the wasm-bindgen in Cargo.lock exactly.
  local bindgen
  bindgen=$(awk '/^name = "wasm-bindgen"$/ {getline; gsub(/[version="]/, "", $0); gsub(/ /, "", $0); print; exit}' Cargo.lock)
  cargo_tool wasm-bindgen-cli "$bindgen" wasm-bindgen
  cargo_tool wasm-pack 0.15.1 wasm-pack
}

setup_notebooks() {
  local venv="$LTH_VENV"
  if [ ! -x "$venv/bin/jupyter-execute" ]; then
    echo "setup: Jupyter into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check jupyterlab nbclient nbconvert nbformat
  fi
  cargo_tool evcxr_jupyter 0.22.0 evcxr_jupyter
  # Registers the "rust" kernel for this user (kernel.json points at evcxr_jupyter).
  if ! "$venv/bin/jupyter" kernelspec list 2>/dev/null | grep -q '^ *rust '; then
    PATH="$venv/bin:$PATH" evcxr_jupyter --install >/dev/null
  fi
}

case "$what" in
  core) setup_core ;;
  browser) setup_core; setup_browser ;;
  notebooks) setup_core; setup_notebooks ;;
  all) setup_core; setup_browser; setup_notebooks ;;
  *) echo "usage: scripts/setup.sh [core|browser|notebooks|all]" >&2; exit 2 ;;
esac
