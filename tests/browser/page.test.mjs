// End to end: the www page in headless Chromium. Loads the page (real MNIST fetched from the
// dev server), runs a short IMP experiment with a control on the CPU, and checks the report,
// the chart, the sparsity table, the first-layer picture, cancel/resume, the digit pad, and
// (where the browser has WebGPU) the fallback to the CPU when the GPU device is lost. The
// page loads its test hooks (`window.lth`) only with `?test` in the URL.
// A screenshot is kept in tests/browser/artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { launch, root, startServer } from './harness.mjs';

const artifacts = path.join(root, 'tests/browser/artifacts');
mkdirSync(artifacts, { recursive: true });
const server = await startServer();
const context = await launch();
const page = context.pages()[0] ?? await context.newPage();
const consoleLines = [];
page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
const started = Date.now();

async function waitForState(states, timeout) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

try {
  // 0. What users load defines no test hooks.
  await page.goto(`${server.url}?backend=cpu`);
  assert.equal(await waitForState(['ready', 'error'], 120_000), 'ready', await page.textContent('#status'));
  assert.equal(await page.evaluate(() => typeof window.lth), 'undefined');

  // 1. With backend "auto" the page says which backend it uses.
  await page.goto(`${server.url}?test`);
  assert.equal(await waitForState(['ready', 'error'], 120_000), 'ready', await page.textContent('#status'));
  const autoBackend = await page.textContent('#backend');
  console.log(`auto backend: ${autoBackend}`);
  assert.match(autoBackend, /WebGPU|CPU/);
  // The model list is lab-core's registry (the ViT included), the default still chosen; the
  // pruning-at-init strategies are lab-core's scores.
  const registry = await page.evaluate(() => ({
    models: window.lth.wasm.models().map((m) => m.name), scores: window.lth.wasm.scores(), methods: window.lth.wasm.methods(),
  }));
  assert.ok(registry.models.includes('vit') && registry.scores.includes('prospr'), JSON.stringify(registry));
  const models = await page.$$eval('select[name=model] option', (options) =>
    options.map((o) => ({ value: o.value, selected: o.selected })));
  assert.deepEqual(models.map((m) => m.value), registry.models);
  assert.equal(models.find((m) => m.selected)?.value, 'lenet300');
  const strategies = await page.$$eval('select[name=strategy] option', (options) => options.map((o) => o.value));
  assert.deepEqual(strategies.filter((s) => s.startsWith('pai-')), registry.scores.map((s) => `pai-${s}`));
  if (process.env.LTH_REQUIRE_WEBGPU) {
    // This Chromium's only adapter is SwiftShader (software): "auto" must not pick it, and
    // must say why.
    assert.equal(await page.evaluate(() => document.body.dataset.backend), 'ndarray', autoBackend);
    assert.match(autoBackend, /software WebGPU adapter/);
    // 1b. "calibrate" times both paths on the model and takes the faster, saying the numbers.
    const calibrated = await page.evaluate(() => window.lth.lab.initBackend('calibrate', 'lenet300'));
    console.log(`calibrate: ${calibrated.note}`);
    const { cpu_ms: cpu, webgpu_ms: gpu } = calibrated.calibration;
    assert.ok(cpu > 0 && gpu > 0, JSON.stringify(calibrated));
    assert.equal(calibrated.backend, gpu < cpu ? 'wgpu' : 'ndarray', calibrated.note);
    assert.match(calibrated.note, /ms\/step on the CPU/);
  }

  // 2. A short experiment on the CPU.
  await page.goto(`${server.url}?test&backend=cpu`);
  assert.equal(await waitForState(['ready', 'error'], 120_000), 'ready', await page.textContent('#status'));
  assert.match(await page.textContent('#status'), /55000 train \/ 5000 validation \/ 10000 test/);
  await page.fill('input[name=rounds]', '3');
  await page.fill('input[name=iterations]', '60');
  await page.fill('input[name=eval]', '500');
  await page.selectOption('select[name=control]', 'reinit');
  await page.click('#run');
  assert.equal(await waitForState(['done', 'error'], 300_000), 'done', await page.textContent('#status'));

  const report = await page.evaluate(() => window.lth.report);
  assert.equal(report.backend, 'ndarray');
  assert.equal(report.rounds.length, 3);
  assert.equal(report.controls.reinit.length, 3);
  const hidden = report.rounds.map((r) => r.layers[0].remaining_weights);
  assert.deepEqual(hidden, [235200, 188160, 150528], 'per-layer pruning, 20% per round');
  for (const r of report.rounds) assert.ok(r.test_accuracy > 0.6, `round ${r.round}: ${r.test_accuracy}`);

  // The chart is an SVG with one line per branch, and the table a row per round.
  const chart = await page.evaluate(() => {
    const svg = document.querySelector('#chart svg');
    return svg && { paths: svg.querySelectorAll('polyline, path').length, text: svg.textContent };
  });
  assert.ok(chart, 'the accuracy chart was drawn');
  assert.ok(chart.paths >= 2 && chart.text.includes('reinit'), JSON.stringify(chart).slice(0, 300));
  assert.equal(await page.locator('#layers tbody tr').count(), 3);

  // The first-layer picture: pixel connection counts, brighter in the centre than the corners.
  const picture = await page.evaluate(() => {
    const data = document.getElementById('connections').getContext('2d').getImageData(0, 0, 224, 224).data;
    const at = (x, y) => data[4 * (y * 224 + x)];
    return { centre: at(112, 112), corner: at(2, 2) };
  });
  assert.ok(picture.centre > picture.corner, JSON.stringify(picture));

  // 3. Draw a "1" on the pad: the ticket answers with ten probabilities.
  const pad = await page.locator('#pad').boundingBox();
  await page.mouse.move(pad.x + 140, pad.y + 40);
  await page.mouse.down();
  for (let y = 40; y <= 240; y += 10) await page.mouse.move(pad.x + 140, pad.y + y);
  await page.mouse.up();
  await page.waitForFunction(() => document.querySelectorAll('#prediction li').length === 10, null, { timeout: 30_000 });
  const best = await page.evaluate(() => [...document.querySelectorAll('#prediction li')].findIndex((li) => li.classList.contains('best')));
  // The CPU run is seeded end to end (θ0, data order), so this is a fixed network: a wrong
  // answer means the pad's MNIST-style preprocessing or the classifier broke.
  assert.equal(best, 1, `drawn "1" classified as ${best}`);
  // The pad's answer comes from the sparse ticket (CSR in wasm), equal to the dense forward
  // pass, with both timed.
  const answer = await page.evaluate(() => window.lth.pad);
  const gap = Math.max(...answer.probabilities.map((p, i) => Math.abs(p - answer.dense_probabilities[i])));
  assert.ok(gap < 1e-5, `sparse and dense probabilities differ by ${gap}`);
  assert.ok(answer.sparse_us > 0 && answer.dense_us > 0, JSON.stringify(answer));
  assert.equal(answer.weights, 266200);
  assert.equal(answer.nonzeros, 150528 + 19200 + 810, 'the round-2 ticket: 64%, 64% and 81% of its layers');
  assert.match(await page.textContent('#pad-speed'), /Sparse ticket \(CSR.*µs per digit · dense on ndarray/);
  console.log(`pad: ${await page.textContent('#pad-speed')}`);
  await page.screenshot({ path: path.join(artifacts, 'page.png'), fullPage: true });

  // 4. Cancel keeps finished rounds; Run again resumes after them.
  await page.fill('input[name=rounds]', '4');
  await page.selectOption('select[name=control]', 'none');
  // Cancel from inside the first step event of the new round: round 3 takes well under a
  // second, so a click from outside could arrive after it finished.
  await page.evaluate(() => {
    window.lth.onEvent = (event) => {
      if (event.type !== 'step') return;
      window.lth.onEvent = null;
      document.getElementById('cancel').click();
    };
  });
  await page.click('#run');
  assert.equal(await waitForState(['cancelled', 'done', 'error'], 120_000), 'cancelled', await page.textContent('#status'));
  await page.click('#run');
  assert.equal(await waitForState(['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const resumed = await page.evaluate(() => window.lth.report);
  assert.equal(resumed.rounds.length, 4);
  assert.deepEqual(resumed.rounds.slice(0, 3).map((r) => r.test_accuracy), report.rounds.map((r) => r.test_accuracy),
    'rounds 0–2 are read back from the records, not retrained');
  // 4b. The weight histograms of the run: round 2 against round 3, of the middle layer.
  assert.ok(!(await page.isHidden('#histogram-view')), 'the histogram view is hidden');
  const histogram = await page.evaluate(() => {
    const svg = document.querySelector('#histogram svg');
    return svg && { paths: svg.querySelectorAll('polyline, path').length, text: svg.textContent };
  });
  assert.ok(histogram && histogram.text.includes('layers.1.weight'), JSON.stringify(histogram)?.slice(0, 300));
  // Counts in the legend: of the second layer's 30,000 weights, 19,200 in round 2 and the
  // 15,360 that pruning keeps for round 3.
  assert.ok(histogram.text.includes('before pruning (19200)') && histogram.text.includes('kept by pruning (15360)'),
    histogram.text.slice(0, 400));

  // 5. Pruning at initialisation: SynFlow at each round's density (1, 0.8), then trained.
  await page.selectOption('select[name=strategy]', 'pai-synflow');
  await page.fill('input[name=rounds]', '2');
  await page.fill('input[name=iterations]', '30');
  await page.click('#run');
  assert.equal(await waitForState(['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const pai = await page.evaluate(() => window.lth.report);
  assert.equal(pai.rounds.length, 2);
  assert.ok(Math.abs(pai.rounds[1].weights_remaining - 0.8) < 0.001, `${pai.rounds[1].weights_remaining}`);
  assert.ok(pai.rounds.every((r) => r.test_accuracy > 0.5), JSON.stringify(pai.rounds.map((r) => r.test_accuracy)));
  // Its report.json is `lth pai`'s: the list of PaI results.
  const saved = JSON.parse(await page.evaluate(async () => (await fetch(document.getElementById('download').href)).text()));
  assert.deepEqual(saved.map((r) => [r.score, r.weights_remaining]), pai.rounds.map((r) => ['synflow', r.weights_remaining]));
  // The picture and the digit pad now use the last SynFlow network, not the IMP ticket.
  const paiPicture = await page.evaluate(() => window.lth.lab.firstLayer().counts.reduce((a, b) => a + b, 0));
  assert.equal(paiPicture, pai.rounds[1].layers[0].remaining_weights);

  // 5b. Dynamic sparse training: RigL at 5% moves the mask, Rs rises and is drawn live,
  // the connections picture follows the moving mask, and report.json is `lth dst`'s.
  const methods = await page.$$eval('select[name=strategy] option', (options) =>
    options.map((o) => o.value).filter((v) => v.startsWith('dst-')));
  assert.deepEqual(methods, registry.methods.map((m) => `dst-${m}`));
  await page.selectOption('select[name=strategy]', 'dst-rigl');
  await page.fill('input[name=density]', '0.05');
  await page.fill('input[name=iterations]', '200');
  await page.evaluate(() => { window.lth.maskUpdates = []; window.lth.onEvent = (e) => { if (e.type === 'mask-update') window.lth.maskUpdates.push(e); }; });
  await page.click('#run');
  assert.equal(await waitForState(['done', 'error'], 300_000), 'done', await page.textContent('#status'));
  const updates = await page.evaluate(() => window.lth.maskUpdates);
  // 200 iterations, ΔT = 10, updates before 75%: 10, 20, …, 140.
  assert.deepEqual(updates.map((e) => e.update.iteration), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140]);
  const rs = updates.map((e) => e.update.explored);
  assert.ok(rs.every((r, i) => i === 0 || r >= rs[i - 1]), `Rs falls: ${rs}`);
  assert.ok(rs.at(-1) > 0.06, `RigL explored only ${rs.at(-1)}`);
  assert.ok(updates.every((e) => Math.abs(e.update.density - updates[0].update.density) < 1e-12), 'RigL keeps its density');
  const pixels = (e) => e.connections.counts.reduce((a, b) => a + b, 0);
  assert.ok(updates.every((e) => pixels(e) === pixels(updates[0])), 'the first layer keeps its count while connections move');
  assert.notDeepEqual(updates[0].connections.counts, updates.at(-1).connections.counts, 'the connections did not move');
  assert.ok(!(await page.isHidden('#dst')), 'the Rs chart is hidden');
  assert.ok((await page.innerHTML('#dst-chart')).includes('Rs (weights ever active)'));
  const dstSaved = JSON.parse(await page.evaluate(async () => (await fetch(document.getElementById('download').href)).text()));
  assert.equal(dstSaved.length, 1);
  assert.equal(dstSaved[0].method, 'rigl');
  assert.equal(dstSaved[0].explored, rs.at(-1));
  assert.ok(dstSaved[0].training.test_accuracy > 0.5, `${dstSaved[0].training.test_accuracy}`);
  assert.equal(await page.textContent('#download-format'), 'lth dst');
  // 5c. The overlap of this page's runs: the IMP ticket, the SynFlow network and the RigL mask.
  assert.ok(!(await page.isHidden('#overlap-view')), 'the overlap view is hidden');
  const overlap = await page.textContent('#overlap');
  for (const kind of ['imp-', 'pai-', 'dst-']) assert.ok(overlap.includes(kind), `no ${kind} run in the overlap: ${overlap.slice(0, 300)}`);
  await page.evaluate(() => { window.lth.onEvent = null; });
  await page.selectOption('select[name=strategy]', 'imp-per-layer');

  // 6. WebGPU device lost mid-run: the page resumes on the CPU from the finished rounds
  // (WebGPU asked for by name: "auto" skips a software adapter).
  await page.goto(`${server.url}?test&backend=webgpu`);
  assert.equal(await waitForState(['ready', 'error'], 120_000), 'ready', await page.textContent('#status'));
  if (await page.evaluate(() => document.body.dataset.backend) !== 'wgpu') {
    assert.ok(!process.env.LTH_REQUIRE_WEBGPU, 'LTH_REQUIRE_WEBGPU is set but the page fell back to the CPU');
    console.log('no WebGPU in this browser: device-loss fallback not exercised');
  } else {
    await page.fill('input[name=rounds]', '2');
    await page.fill('input[name=iterations]', '10');
    await page.fill('input[name=eval]', '100');
    await page.selectOption('select[name=control]', 'none');
    await page.click('#run');
    // Round 0 finishes on the GPU; then the device goes away during round 1.
    await page.waitForFunction(() => window.lth.events.includes('round'), null, { timeout: 180_000 });
    const gpuRound = await page.evaluate(() => window.lth.report.rounds[0]);
    await page.evaluate(() => window.lth.gpuDevice.destroy());
    assert.equal(await waitForState(['done', 'error'], 180_000), 'done', await page.textContent('#status'));
    const events = await page.evaluate(() => window.lth.events);
    assert.ok(events.includes('device-lost') && events.includes('fallback-to-cpu'), events.join(','));
    assert.equal(await page.evaluate(() => document.body.dataset.backend), 'ndarray');
    const fallback = await page.evaluate(() => window.lth.report);
    assert.equal(fallback.rounds.length, 2);
    assert.equal(fallback.rounds[0].test_accuracy, gpuRound.test_accuracy, 'round 0 kept from the GPU run');
    assert.equal(fallback.rounds[1].layers[0].remaining_weights, 188160);
    console.log(`device lost after round 0 on WebGPU; resumed on the CPU: ${await page.textContent('#status')}`);
  }
  console.log(`page test passed in ${((Date.now() - started) / 1000).toFixed(0)} s`);
} catch (error) {
  await page.screenshot({ path: path.join(artifacts, 'failure.png'), fullPage: true }).catch(() => {});
  console.error(consoleLines.slice(-30).join('\n'));
  throw error;
} finally {
  await context.close();
  server.stop();
}
