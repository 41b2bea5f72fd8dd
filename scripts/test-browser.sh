#!/usr/bin/env bash
# The browser lab's tests: lab-wasm's wasm-bindgen tests in Debian's headless Chromium
# (wasm-bindgen-test-runner through chromedriver, flags in lab-wasm/webdriver.json), then the
# www page end to end (Playwright driving the same Chromium; screenshot in
# tests/browser/artifacts/). lab-wasm and lab-core are linted for wasm32 in the same compile.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh browser
start=$(date +%s)
# The committed flags give headless Chromium a WebGPU adapter (SwiftShader), so the WebGPU
# test must run rather than skip; LTH_ALLOW_NO_WEBGPU=1 relaxes that on other machines.
[ -z "${LTH_ALLOW_NO_WEBGPU:-}" ] && export LTH_REQUIRE_WEBGPU=1
# Release wasm: the tests train real networks (see docs/measurements.md for dev vs release).
# The page (build-www.sh below) is the same release build of lab-wasm, so its crates compile
# once. cargo runs the test binary through the runner, in lab-wasm/ (where it reads
# webdriver.json); the runner is headless unless NO_HEADLESS is set.
lint cargo build --release --target wasm32-unknown-unknown -p lab-wasm --all-targets
CHROMEDRIVER="$(command -v chromedriver)" WASM_BINDGEN_TEST_TIMEOUT=1200 \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  lint cargo test --release --target wasm32-unknown-unknown -p lab-wasm
echo "test-browser: wasm-bindgen tests passed after $(( $(date +%s) - start ))s"
scripts/build-www.sh --lint
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && node page.test.mjs)
echo "test-browser: all passed in $(( $(date +%s) - start ))s"
