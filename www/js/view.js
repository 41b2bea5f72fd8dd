// What the page shows: status line, progress, the report's chart and table, and the
// first-layer picture. Reads `state`; changes only the DOM.
import { state } from './state.js';

export const $ = (id) => document.getElementById(id);

export function status(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

// The model list and the pruning-at-init scores come from lab-core (index.html names only the
// default model and the IMP strategies).
export function fillListsFromRegistry() {
  const models = document.querySelector('#experiment select[name=model]');
  if (models.dataset.fromRegistry) return;
  const chosen = models.value;
  models.replaceChildren(...state.wasm.models().map(({ name, summary }) =>
    new Option(`${name}: ${summary}`, name, false, name === chosen)));
  const strategies = document.querySelector('#experiment select[name=strategy]');
  strategies.append(...state.wasm.scores().map((score) =>
    new Option(`At init: ${score}${score === 'synflow' ? ' (iterative)' : ''}, at each round's density`, `pai-${score}`)));
  strategies.append(...state.wasm.methods().map((method) =>
    new Option(`Sparse training: ${method}${method === 'gmp' ? ' (dense start, gradual pruning)' : ''}, at the density below`, `dst-${method}`)));
  models.dataset.fromRegistry = 'yes';
}

/// The view's listener of run events: progress, and the report as rounds finish.
export function showEvent(event) {
  if (event.type === 'round-start') {
    $('progress-text').textContent =
      `${event.branch}: round ${event.round}, ${(100 * event.weights_remaining).toFixed(1)}% of weights`;
  } else if (event.type === 'step') {
    $('progress').value = (state.runsDone + event.iteration / event.total) / state.runsTotal;
  } else if (event.type === 'mask-update' && state.dst) {
    state.dst.updates.push(event.update);
    showSparseTraining();
    if (event.connections) drawConnections(event.connections);
  } else if (event.type === 'eval' && state.dst) {
    state.dst.curve.push(event.point);
    showSparseTraining();
    $('progress-text').textContent = `${event.context.method} at ${(100 * event.context.density).toFixed(1)}%: ` +
      `iteration ${event.point.iteration}, test accuracy ${(100 * event.point.test_accuracy).toFixed(1)}%, ` +
      `Rs ${(100 * (state.dst.updates.at(-1)?.explored ?? state.dst.initial_density)).toFixed(1)}%`;
  } else if (event.type === 'round' && state.dst) {
    state.runsDone += 1;
  } else if (event.type === 'round') {
    state.runsDone += 1;
    $('progress').value = state.runsDone / state.runsTotal;
    const branch = event.branch;
    if (branch === 'ticket') state.report.rounds.push(event.result);
    else (state.report.controls[branch] ??= []).push(event.result);
    showReport();
  } else if (event.type === 'pai-result') {
    state.paiResults?.push(event.result);
  } else if (event.type === 'eval' && event.context) {
    $('progress-text').textContent = `${event.context.score} at 10^-${event.context.compression.toFixed(2)}: ` +
      `iteration ${event.point.iteration}, test accuracy ${(100 * event.point.test_accuracy).toFixed(1)}%`;
  }
}

/// The live accuracy-and-Rs chart of a sparse-training run.
function showSparseTraining() {
  $('dst').hidden = false;
  $('dst-chart').innerHTML = state.wasm.Lab.dstChartSvg(state.dst);
}

export function showReport() {
  const report = state.report;
  if (!report?.rounds.length) return;
  $('chart').innerHTML = state.wasm.Lab.chartSvg(report, 'accuracy');
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
  $('dst').hidden = !state.dst;
  if (state.dst) showSparseTraining();
  // The download has the CLI's format: `lth imp`'s report, or `lth pai`'s or `lth dst`'s
  // list of results.
  const saved = state.dstResults ?? state.paiResults ?? report;
  $('report').textContent = JSON.stringify(saved, null, 1).slice(0, 20000);
  const blob = new Blob([JSON.stringify(saved, null, 2)], { type: 'application/json' });
  $('download').href = URL.createObjectURL(blob);
  $('download-format').textContent = state.dstResults ? 'lth dst' : state.paiResults ? 'lth pai' : 'lth imp';
  drawFirstLayer();
}

/// Per input pixel, how many first-layer units connect to it (`{inputs, units, counts}`).
function drawConnections(picture) {
  const connections = $('connections').getContext('2d');
  const side = Math.round(Math.sqrt(picture.inputs));
  const heat = connections.createImageData(side, side);
  // Sparse masks are faint at full scale: scale to the densest pixel.
  const top = Math.max(1, ...picture.counts);
  picture.counts.forEach((count, i) => {
    const v = Math.round(255 * count / top);
    heat.data.set([v, v, v, 255], 4 * i);
  });
  drawScaled(connections, heat, 224 / side);
}

function drawFirstLayer() {
  const picture = state.lab.firstLayer();
  const units = $('units').getContext('2d');
  if (!picture) {
    $('connections').getContext('2d').clearRect(0, 0, 224, 224);
    units.clearRect(0, 0, 560, 420);
    return;
  }
  drawConnections(picture);
  const side = Math.round(Math.sqrt(picture.inputs));
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

/// The analyses of this page's runs: weight histograms of the last IMP run (its
/// second-to-last round against the last) and the overlap of every run's sparsest ticket.
export function showAnalyses(strategy) {
  const report = state.report;
  const rounds = report?.rounds?.length ?? 0;
  if (strategy.startsWith('imp') && report?.run && rounds >= 2) {
    const layers = report.rounds[0].layers.length;
    const svg = state.lab.histogramSvg(report.run, rounds - 2, Math.floor(layers / 2));
    $('histogram-view').hidden = !svg;
    if (svg) $('histogram').innerHTML = svg;
  }
  const overlap = state.lab.overlapSvg();
  $('overlap-view').hidden = !overlap;
  if (overlap) $('overlap').innerHTML = overlap;
}
