// Training throughput in the browser: lab-wasm (burn-ndarray on the CPU, burn-wgpu on WebGPU)
// against TensorFlow.js (cpu, wasm, webgl, webgpu backends) training the same LeNet-300-100
// (784-300-100-10, ReLU, Adam 1.2e-3, batch 60) in the same headless Chromium.
//   node bench.mjs [steps]        prints a table; needs www/pkg (scripts/build-www.sh)
//   node bench.mjs inference [s]  the inference table instead (dense vs CSR vs compacted, as
//                                 `lth bench`), in wasm on the CPU, s seconds per cell
import path from 'node:path';
import { createRequire } from 'node:module';
import { launch, startServer } from './harness.mjs';

const require = createRequire(import.meta.url);
const inferenceOnly = process.argv[2] === 'inference';
const steps = inferenceOnly ? 0 : Number(process.argv[2] ?? 200);
const budget = Number(process.argv[3] ?? 0.3);
const server = await startServer();
const context = await launch();
const page = context.pages()[0] ?? await context.newPage();
page.on('pageerror', (e) => console.error(`pageerror: ${e.message}`));
const rows = [];

// tfjs from node_modules, served under /tfjs/ to the page.
const files = {
  'tf.min.js': require.resolve('@tensorflow/tfjs/dist/tf.min.js'),
  'tf-backend-wasm.min.js': require.resolve('@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js'),
  'tf-backend-webgpu.min.js': require.resolve('@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.min.js'),
};
const wasmDir = path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js'));
await page.route('**/tfjs/**', (route) => {
  const name = new URL(route.request().url()).pathname.split('/').pop();
  route.fulfill({ path: files[name] ?? path.join(wasmDir, name) });
});

async function labWasm(backend, n) {
  await page.goto(`${server.url}?test&backend=${backend}`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  const note = await page.textContent('#backend');
  if (backend === 'webgpu' && !note.includes('WebGPU')) return console.log(`lab-wasm webgpu: unavailable (${note})`);
  const result = await page.evaluate((count) => window.lth.lab.benchmark(count), n);
  rows.push({ implementation: 'lab-wasm (burn)', backend: `${result.backend}`, steps: n, ms_per_step: result.ms_per_step, samples_per_second: result.samples_per_second });
}

async function tfjs(backend, n) {
  await page.goto(`${server.url}?test&backend=cpu`);
  await page.addScriptTag({ url: '/tfjs/tf.min.js' });
  if (backend === 'wasm') await page.addScriptTag({ url: '/tfjs/tf-backend-wasm.min.js' });
  if (backend === 'webgpu') await page.addScriptTag({ url: '/tfjs/tf-backend-webgpu.min.js' });
  const result = await page.evaluate(async ({ backend, n }) => {
    const tf = window.tf;
    if (backend === 'wasm') tf.wasm.setWasmPaths('/tfjs/');
    if (!(await tf.setBackend(backend).catch(() => false))) return { error: `tfjs backend ${backend} unavailable` };
    await tf.ready();
    const model = tf.sequential({ layers: [
      tf.layers.dense({ inputShape: [784], units: 300, activation: 'relu', kernelInitializer: 'glorotNormal' }),
      tf.layers.dense({ units: 100, activation: 'relu', kernelInitializer: 'glorotNormal' }),
      tf.layers.dense({ units: 10, kernelInitializer: 'glorotNormal' }),
    ] });
    const optimizer = tf.train.adam(1.2e-3);
    const batches = Array.from({ length: 8 }, () => tf.tidy(() => [
      tf.randomUniform([60, 784]),
      tf.oneHot(tf.randomUniform([60], 0, 10, 'int32'), 10),
    ]));
    const step = (i) => {
      const [x, y] = batches[i % batches.length];
      optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x)), false);
    };
    for (let i = 0; i < 20; i++) step(i);
    await model.layers[0].getWeights()[0].data();
    const started = performance.now();
    for (let i = 0; i < n; i++) step(i);
    await model.layers[0].getWeights()[0].data();
    const seconds = (performance.now() - started) / 1000;
    return { ms_per_step: 1000 * seconds / n, samples_per_second: 60 * n / seconds };
  }, { backend, n });
  if (result.error) return console.log(result.error);
  rows.push({ implementation: 'TensorFlow.js 4.22', backend, steps: n, ...result });
}

async function inference() {
  await page.goto(`${server.url}?test&backend=cpu`);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.state), null, { timeout: 300_000 });
  const result = await page.evaluate((s) => window.lth.lab.inferenceBench(['lenet300', 'lenet5'], s), budget);
  const version = await page.evaluate(() => navigator.userAgent);
  console.log(`\nInference in headless Chromium (${version}), wasm32 + SIMD128, µs per forward pass, dense and compacted on ${result.backend}, CSR in wasm, ${budget} s per cell:`);
  console.log('| model | batch | density | dense µs | CSR µs | CSR × | compact µs | compact × | compact density |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of result.rows) {
    console.log(`| ${r.model} | ${r.batch} | ${100 * r.density}% | ${r.dense_us.toFixed(1)} | ${r.csr_us.toFixed(1)} | ${(r.dense_us / r.csr_us).toFixed(2)} | ${r.compact_us.toFixed(1)} | ${(r.dense_us / r.compact_us).toFixed(2)} | ${(100 * r.compact_density).toFixed(1)}% |`);
  }
  for (const b of result.break_even) {
    console.log(`${b.model} batch ${b.batch}: CSR beats dense below ${b.density === null ? 'no measured density' : `${(100 * b.density).toFixed(1)}% density`}`);
  }
}

try {
  const chromiumVersion = context.browser()?.version() ?? '(persistent context)';
  if (inferenceOnly) await inference();
  else await training(chromiumVersion);
} finally {
  await context.close();
  server.stop();
}

async function training(chromiumVersion) {
  await labWasm('cpu', steps);
  await tfjs('cpu', Math.max(20, steps / 4));
  await tfjs('wasm', steps);
  await tfjs('webgl', Math.max(20, steps / 4));
  // Software WebGPU (SwiftShader) here is slow: fewer steps.
  await labWasm('webgpu', Math.max(10, steps / 10));
  await tfjs('webgpu', Math.max(10, steps / 10));
  console.log(`\nLeNet-300-100 training in headless Chromium ${chromiumVersion}, batch 60, Adam:`);
  console.log('| implementation | backend | steps | ms/step | samples/s |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) {
    console.log(`| ${r.implementation} | ${r.backend} | ${r.steps} | ${r.ms_per_step.toFixed(2)} | ${Math.round(r.samples_per_second)} |`);
  }
}
