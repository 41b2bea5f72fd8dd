// The LTH Lab page: drives lab-wasm (lab-core compiled to WebAssembly). This file wires the
// form to the modules in js/: state (all of it, one object), view (the DOM), lab (the wasm
// module, data and backend), runner (a run, its failure modes, the CPU fallback), pad (the
// digit pad). Test hooks load only with `?test` in the URL.
import { state } from './js/state.js';
import { $, showAnalyses, showEvent, showReport, status } from './js/view.js';
import { fetchMnist, startLab, watchGpuDevices } from './js/lab.js';
import { isCancel, run, watchTraps } from './js/runner.js';
import { setUpPad } from './js/pad.js';

const query = new URLSearchParams(location.search);
if (query.has('test')) (await import('./js/test-hooks.js')).install();
state.listeners.push(showEvent);
watchTraps();
watchGpuDevices();

function readForm() {
  const form = new FormData($('experiment'));
  const iterations = Number(form.get('iterations'));
  const evalImages = Number(form.get('eval'));
  const rewind = { init: 'init', late: { fraction: 0.05 }, 'fine-tune': 'fine-tune' }[form.get('rewind')];
  const control = form.get('control');
  const controls = control === 'none' ? [] : control === 'both' ? ['reinit', 'random-prune'] : [control];
  const global = form.get('strategy') === 'imp-global';
  return {
    strategy: form.get('strategy'),
    density: Number(form.get('density')),
    backend: form.get('backend'),
    imp: {
      model: form.get('model'),
      rounds: Number(form.get('rounds')),
      rewind,
      // The rates are lab-core's defaults (20% hidden, 10% output; global: 20% everywhere).
      prune: { scope: global ? 'global' : 'per-layer' },
      train: { iterations, eval_every: Math.max(10, Math.round(iterations / 8 / 10) * 10) },
      eval_subset: evalImages,
      controls,
    },
  };
}

$('experiment').addEventListener('submit', async (e) => {
  e.preventDefault();
  const settings = readForm();
  $('run').disabled = true;
  $('cancel').disabled = false;
  document.body.dataset.state = 'running';
  const started = performance.now();
  try {
    await run(settings);
    showAnalyses(settings.strategy);
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    status(`Done in ${seconds} s on ${$('backend').textContent}. Draw a digit to test the ticket.`);
    document.body.dataset.state = 'done';
  } catch (error) {
    const cancelled = isCancel(error);
    status(cancelled ? 'Cancelled: finished rounds are kept; Run again resumes.' : `Error: ${error.message ?? error}`, !cancelled);
    if (state.report?.rounds.length) showReport();
    document.body.dataset.state = cancelled ? 'cancelled' : 'error';
  } finally {
    $('run').disabled = false;
    $('cancel').disabled = true;
  }
});
$('cancel').addEventListener('click', () => state.lab?.cancel());
setUpPad();

try {
  status('Fetching MNIST…');
  state.mnistBytes = await fetchMnist();
  status('Starting…');
  const preference = query.get('backend') ?? 'auto';
  $('experiment').elements.backend.value = preference;
  const sizes = await startLab(preference);
  status(`Ready: MNIST ${sizes.train} train / ${sizes.validation} validation / ${sizes.test} test images, on ${state.lab.backendNote}.`);
  $('run').disabled = false;
  document.body.dataset.state = 'ready';
} catch (error) {
  status(`Could not start: ${error.message ?? error}`, true);
  document.body.dataset.state = 'error';
}
