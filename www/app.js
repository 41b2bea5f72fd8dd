// The LTH Lab page: drives lab-wasm (lab-core compiled to WebAssembly).
// Records of finished rounds live in `records`, a Map owned by this page, so they survive a
// crashed wasm instance (e.g. a lost WebGPU device): the run then resumes on the CPU.

const MNIST_FILES = [
  'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
  't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz',
];
const $ = (id) => document.getElementById(id);
const records = new Map();
let wasm = null;      // the lab-wasm module
let lab = null;       // its Lab
let mnistBytes = null;
let report = null;    // the report shown (ImpReport shape)
let paiResults = null; // a PaI strategy's results, `lth pai`'s report.json (null for IMP)
let moduleGeneration = 0;
window.lth = { records, get lab() { return lab; }, get report() { return report; }, events: [] };

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

// The URL of the module instance in use: a trap's stack names the glue file it came through,
// so a late trap of an abandoned instance can be told from one of the current instance.
let moduleUrl = null;
async function loadModule() {
  // A new query string gives a fresh module instance (after a trap, the old one is dead).
  moduleUrl = new URL(`pkg/lab_wasm.js?instance=${++moduleGeneration}`, document.baseURI).href;
  const module = await import(moduleUrl);
  await module.default();
  return module;
}

async function fetchMnist() {
  const base = new URL('data/mnist/', document.baseURI);
  return Promise.all(MNIST_FILES.map(async (name) => {
    const response = await fetch(new URL(name, base));
    if (!response.ok) throw new Error(`fetching ${name}: HTTP ${response.status} (the server must serve data/mnist/)`);
    return new Uint8Array(await response.arrayBuffer());
  }));
}

// The model list comes from lab-core's registry (index.html names only the default).
function fillModelList() {
  const select = document.querySelector('#experiment select[name=model]');
  if (select.dataset.fromRegistry) return;
  const chosen = select.value;
  select.replaceChildren(...wasm.models().map(({ name, summary }) =>
    new Option(`${name}: ${summary}`, name, false, name === chosen)));
  select.dataset.fromRegistry = 'yes';
}

// A fresh module instance only when the old one died; a plain backend switch keeps the
// instance and its decoded data set and only picks the new backend.
async function startLab(preference, { fresh = false } = {}) {
  let sizes = null;
  if (fresh || !lab) {
    wasm = await loadModule();
    fillModelList();
    lab = new wasm.Lab(records);
    sizes = lab.loadDataset('mnist', ...mnistBytes);
  }
  const chosen = await lab.initBackend(preference);
  $('backend').textContent = chosen.note;
  document.body.dataset.backend = chosen.backend;
  document.body.dataset.preference = preference;
  return sizes;
}

function readForm() {
  const form = new FormData($('experiment'));
  const iterations = Number(form.get('iterations'));
  const evalImages = Number(form.get('eval'));
  const rewind = { init: 'init', late: { fraction: 0.05 }, 'fine-tune': 'fine-tune' }[form.get('rewind')];
  const control = form.get('control');
  const controls = control === 'none' ? [] : control === 'both' ? ['reinit', 'random-prune'] : [control];
  return {
    strategy: form.get('strategy'),
    backend: form.get('backend'),
    imp: {
      model: form.get('model'),
      rounds: Number(form.get('rounds')),
      rewind,
      prune: {
        scope: form.get('strategy') === 'imp-global' ? 'global' : 'per-layer',
        rate: 0.2, conv_rate: 0.1, output_rate: form.get('strategy') === 'imp-global' ? 0.2 : 0.1,
      },
      train: { iterations, eval_every: Math.max(10, Math.round(iterations / 8 / 10) * 10) },
      eval_subset: evalImages,
      controls,
    },
  };
}

// --- Progress and results -----------------------------------------------------------------

let runsDone = 0;
let runsTotal = 1;
function onEvent(event) {
  window.lth.events.push(event.type);
  window.lth.onEvent?.(event); // a hook for scripts that drive the page (the page test)
  if (event.type === 'round-start') {
    $('progress-text').textContent =
      `${event.branch}: round ${event.round}, ${(100 * event.weights_remaining).toFixed(1)}% of weights`;
  } else if (event.type === 'step') {
    $('progress').value = (runsDone + event.iteration / event.total) / runsTotal;
  } else if (event.type === 'round') {
    runsDone += 1;
    $('progress').value = runsDone / runsTotal;
    const branch = event.branch;
    if (branch === 'ticket') report.rounds.push(event.result);
    else (report.controls[branch] ??= []).push(event.result);
    showReport();
  } else if (event.type === 'eval' && event.context) {
    $('progress-text').textContent = `${event.context.score} at 10^-${event.context.compression.toFixed(2)}: ` +
      `iteration ${event.point.iteration}, test accuracy ${(100 * event.point.test_accuracy).toFixed(1)}%`;
  }
}

function showReport() {
  if (!report.rounds.length) return;
  $('chart').innerHTML = wasm.Lab.chartSvg(report, 'accuracy');
  const body = $('layers').tBodies[0];
  const layerNames = report.rounds[0].layers.map((l) => l.name);
  const head = $('layers').tHead.rows[0];
  while (head.cells.length > 4) head.deleteCell(4);
  for (const name of layerNames) head.insertCell().outerHTML = `<th>${name}</th>`;
  body.innerHTML = '';
  for (const r of report.rounds) {
    const row = body.insertRow();
    const cells = [r.round, (100 * r.weights_remaining).toFixed(1), (100 * r.test_accuracy).toFixed(2),
      r.early_stop_iteration, ...r.layers.map((l) => (100 * l.remaining).toFixed(1) + '%')];
    for (const c of cells) row.insertCell().textContent = c;
  }
  // The download has the CLI's format: `lth imp`'s report, or `lth pai`'s list of results.
  const saved = paiResults ?? report;
  $('report').textContent = JSON.stringify(saved, null, 1).slice(0, 20000);
  const blob = new Blob([JSON.stringify(saved, null, 2)], { type: 'application/json' });
  $('download').href = URL.createObjectURL(blob);
  $('download-format').textContent = paiResults ? 'lth pai' : 'lth imp';
  drawFirstLayer();
}

function drawFirstLayer() {
  const picture = lab.firstLayer();
  const connections = $('connections').getContext('2d');
  const units = $('units').getContext('2d');
  if (!picture) {
    connections.clearRect(0, 0, 224, 224);
    units.clearRect(0, 0, 560, 420);
    return;
  }
  const side = Math.round(Math.sqrt(picture.inputs));
  const heat = connections.createImageData(side, side);
  picture.counts.forEach((count, i) => {
    const v = Math.round(255 * count / picture.units);
    heat.data.set([v, v, v, 255], 4 * i);
  });
  drawScaled(connections, heat, 224 / side);
  const columns = 20;
  const grid = units.createImageData(columns * side, Math.ceil(picture.units / columns) * side);
  for (let u = 0; u < picture.units; u++) {
    const [gx, gy] = [(u % columns) * side, Math.floor(u / columns) * side];
    for (let p = 0; p < picture.inputs; p++) {
      const i = 4 * ((gy + Math.floor(p / side)) * grid.width + gx + (p % side));
      const v = picture.keep[u * picture.inputs + p] ? 255 : 30;
      grid.data.set([v, v, v, 255], i);
    }
  }
  units.putImageData(grid, 0, 0);
}

function drawScaled(context, image, scale) {
  const buffer = new OffscreenCanvas(image.width, image.height);
  buffer.getContext('2d').putImageData(image, 0, 0);
  context.imageSmoothingEnabled = false;
  context.drawImage(buffer, 0, 0, image.width * scale, image.height * scale);
}

// --- Running ----------------------------------------------------------------------------

async function runImp(settings) {
  runsTotal = settings.imp.rounds * (1 + settings.imp.controls.length);
  return lab.runImp(settings.imp, onEvent);
}

async function runPai(settings) {
  // One pruning-at-init experiment per IMP-like density (0.8^k), so the chart compares.
  const score = settings.strategy.replace('pai-', '');
  runsTotal = settings.imp.rounds;
  paiResults = [];
  for (let k = 0; k < settings.imp.rounds; k++) {
    const density = Math.pow(0.8, k);
    const result = await lab.runPai({
      model: settings.imp.model,
      pai: { score, compression: -Math.log10(density), scope: 'global', iterations: score === 'synflow' ? 100 : 1 },
      train: settings.imp.train,
      eval_subset: settings.imp.eval_subset,
    }, onEvent);
    paiResults.push(result);
    const training = result.training ?? { ...report.rounds[0], test_accuracy: 0.1, curve: [] };
    onEvent({ type: 'round', branch: 'ticket', result: { ...training, round: k, weights_remaining: result.weights_remaining, layers: result.layers } });
  }
  return report;
}

// Two ways a GPU run dies without its promise settling: a Rust panic aborts the wasm
// instance inside a task of wasm-bindgen-futures (the trap surfaces as an uncaught
// RuntimeError), or the WebGPU device is lost (driver reset, GPU process crash, tab in the
// background on some systems) and reads wait forever. The run is raced against both.
let abortRun = null; // rejects the race of the run in progress
const isCancel = (error) => String(error?.message ?? error).includes('cancel');
for (const type of ['error', 'unhandledrejection']) {
  window.addEventListener(type, (event) => {
    const error = event.reason ?? event.error;
    if (!(error instanceof WebAssembly.RuntimeError) || !abortRun) return;
    const stack = String(error.stack ?? '');
    const fromOldInstance = stack.includes('lab_wasm.js?instance=') && !stack.includes(moduleUrl);
    if (!fromOldInstance) abortRun(error);
  });
}
// burn-wgpu asks navigator.gpu for its device; wrapping requestDevice lets the page watch the
// device's `lost` promise (and lets the page test destroy it).
if (globalThis.GPUAdapter) {
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    window.lth.gpuDevice = device;
    device.lost.then((info) => {
      if (window.lth.gpuDevice !== device) return;
      window.lth.events.push('device-lost');
      abortRun?.(new Error(`the WebGPU device was lost (${info.reason}: ${info.message || 'no message'})`));
    });
    return device;
  };
}
function died() {
  return new Promise((_, reject) => { abortRun = reject; });
}

async function run(settings) {
  report = { run: '', config: settings.imp, backend: lab.backend, rounds: [], controls: {} };
  paiResults = null;
  runsDone = 0;
  const work = settings.strategy.startsWith('pai-') ? runPai(settings) : runImp(settings);
  // A late trap of an abandoned instance must not reach a later run: each run owns its race.
  const done = await Promise.race([work, died()]);
  report = done;
  showReport();
  return done;
}

$('experiment').addEventListener('submit', async (e) => {
  e.preventDefault();
  const settings = readForm();
  $('run').disabled = true;
  $('cancel').disabled = false;
  document.body.dataset.state = 'running';
  const started = performance.now();
  try {
    if (settings.backend !== document.body.dataset.preference) await startLab(settings.backend);
    status(`Running on ${lab.backendNote}…`);
    try {
      await run(settings);
    } catch (error) {
      // A GPU run that failed for any reason but Cancel (a trap, a lost device, or an error
      // such as a failed buffer map after the device went away) resumes from the records on
      // the CPU; an error that is not the GPU's recurs there and is reported.
      if (isCancel(error) || lab.backend === 'ndarray') throw error;
      abortRun = null;
      try { lab.cancel(); } catch { /* a trapped instance cannot be called */ } // if it wakes, it stops
      window.lth.events.push('fallback-to-cpu');
      status(`The GPU run failed (${error.message}); resuming on the CPU from the finished rounds…`, true);
      $('experiment').elements.backend.value = 'cpu';
      await startLab('cpu', { fresh: true });
      $('backend').textContent = 'CPU (burn-ndarray), after the WebGPU run failed';
      await run(settings);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    status(`Done in ${seconds} s on ${$('backend').textContent}. Draw a digit to test the ticket.`);
    document.body.dataset.state = 'done';
  } catch (error) {
    const cancelled = isCancel(error);
    status(cancelled ? 'Cancelled: finished rounds are kept; Run again resumes.' : `Error: ${error.message ?? error}`, !cancelled);
    if (report?.rounds.length) showReport();
    document.body.dataset.state = cancelled ? 'cancelled' : 'error';
  } finally {
    $('run').disabled = false;
    $('cancel').disabled = true;
  }
});
$('cancel').addEventListener('click', () => lab?.cancel());

// --- Drawing a digit ----------------------------------------------------------------------

const pad = $('pad');
const ink = pad.getContext('2d');
let drawing = false;
function clearPad() {
  ink.fillStyle = '#000';
  ink.fillRect(0, 0, pad.width, pad.height);
  $('prediction').innerHTML = '';
}
pad.addEventListener('pointerdown', (e) => { drawing = true; stroke(e); });
pad.addEventListener('pointermove', (e) => drawing && stroke(e));
window.addEventListener('pointerup', () => { if (drawing) { drawing = false; classifyPad(); } });
$('clear').addEventListener('click', clearPad);
function stroke(e) {
  const r = pad.getBoundingClientRect();
  ink.fillStyle = '#fff';
  ink.beginPath();
  ink.arc((e.clientX - r.left) * pad.width / r.width, (e.clientY - r.top) * pad.height / r.height, 11, 0, 2 * Math.PI);
  ink.fill();
}

// MNIST's preprocessing: the digit's bounding box scaled to 20×20, centred by mass in 28×28.
export function padToMnist(canvas) {
  const { width, height } = canvas;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let [x0, y0, x1, y1] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) {
    if (pixels[4 * (y * width + x)] > 20) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (x1 < 0) return null;
  const size = Math.max(x1 - x0, y1 - y0) + 1;
  const small = new OffscreenCanvas(28, 28).getContext('2d', { willReadFrequently: true });
  small.fillStyle = '#000';
  small.fillRect(0, 0, 28, 28);
  const scale = 20 / size;
  const [w, h] = [(x1 - x0 + 1) * scale, (y1 - y0 + 1) * scale];
  small.drawImage(canvas, x0, y0, x1 - x0 + 1, y1 - y0 + 1, 0, 0, w, h);
  const box = small.getImageData(0, 0, 28, 28).data;
  let [mass, mx, my] = [0, 0, 0];
  for (let i = 0; i < 784; i++) { const v = box[4 * i]; mass += v; mx += v * (i % 28); my += v * Math.floor(i / 28); }
  const [dx, dy] = [Math.round(14 - mx / mass), Math.round(14 - my / mass)];
  const out = new Float32Array(784);
  for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
    const [sx, sy] = [x - dx, y - dy];
    if (sx >= 0 && sx < 28 && sy >= 0 && sy < 28) out[y * 28 + x] = box[4 * (sy * 28 + sx)] / 255;
  }
  return out;
}

async function classifyPad() {
  if (lab?.trainedRound === undefined) { $('prediction').innerHTML = '<li>Run an experiment first.</li>'; return; }
  const input = padToMnist(pad);
  if (!input) return;
  const probabilities = await lab.classify(input);
  const best = probabilities.indexOf(Math.max(...probabilities));
  $('prediction').innerHTML = Array.from(probabilities, (p, digit) =>
    `<li class="${digit === best ? 'best' : ''}">${'█'.repeat(Math.round(20 * p)).padEnd(20, '·')} ${(100 * p).toFixed(1)}%</li>`).join('');
}

// --- Start --------------------------------------------------------------------------------

(async () => {
  clearPad();
  try {
    status('Fetching MNIST…');
    mnistBytes = await fetchMnist();
    status('Starting…');
    const preference = new URLSearchParams(location.search).get('backend') ?? 'auto';
    $('experiment').elements.backend.value = preference;
    const sizes = await startLab(preference);
    status(`Ready: MNIST ${sizes.train} train / ${sizes.validation} validation / ${sizes.test} test images, on ${lab.backendNote}.`);
    $('run').disabled = false;
    document.body.dataset.state = 'ready';
  } catch (error) {
    status(`Could not start: ${error.message ?? error}`, true);
    document.body.dataset.state = 'error';
  }
})();
