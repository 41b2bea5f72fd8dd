#!/usr/bin/env bash
# The browser lab's tests: lab-wasm's wasm-bindgen tests in Debian's headless Chromium
# (through chromedriver, flags in lab-wasm/webdriver.json), then the www page end to end
# (Playwright driving the same Chromium; screenshot in tests/browser/artifacts/).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
scripts/setup.sh browser
start=$(date +%s)
# The committed flags give headless Chromium a WebGPU adapter (SwiftShader), so the WebGPU
# test must run rather than skip; LTH_ALLOW_NO_WEBGPU=1 relaxes that on other machines.
[ -z "${LTH_ALLOW_NO_WEBGPU:-}" ] && export LTH_REQUIRE_WEBGPU=1
# Release wasm: the tests train real networks (see docs/measurements.md for dev vs release).
WASM_BINDGEN_TEST_TIMEOUT=1200 wasm-pack test --headless --chrome \
  --chromedriver "$(command -v chromedriver)" --release lab-wasm
echo "test-browser: wasm-bindgen tests passed after $(( $(date +%s) - start ))s"
scripts/build-www.sh
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && node page.test.mjs)
echo "test-browser: all passed in $(( $(date +%s) - start ))s"
