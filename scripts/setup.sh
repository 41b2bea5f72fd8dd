#!/usr/bin/env bash
# Installs what LTH Lab needs beyond the Rust toolchain. Idempotent; quick when done before.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: software Vulkan for wgpu, fontconfig and a font for PNG charts, the
# Fashion-MNIST data set (a second real data set of MNIST's format).
packages=(mesa-vulkan-drivers libvulkan1 libfontconfig-dev fonts-dejavu-core pkg-config dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for component in clippy rustfmt; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done
