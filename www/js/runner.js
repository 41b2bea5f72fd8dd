// Running an experiment: IMP or a PaI sweep through lab-wasm, raced against the two ways a
// GPU run dies without its promise settling, with the fallback to the CPU.
import { notify, state } from './state.js';
import { $, showReport, status } from './view.js';
import { startLab } from './lab.js';

export const isCancel = (error) => String(error?.message ?? error).includes('cancel');

/// A Rust panic aborts the wasm instance inside a task of wasm-bindgen-futures: the trap
/// surfaces as an uncaught RuntimeError, which rejects the run's race (unless it comes from
/// an abandoned instance). A lost device does the same through `watchGpuDevices`.
export function watchTraps() {
  for (const type of ['error', 'unhandledrejection']) {
    window.addEventListener(type, (event) => {
      const error = event.reason ?? event.error;
      if (!(error instanceof WebAssembly.RuntimeError) || !state.abortRun) return;
      const stack = String(error.stack ?? '');
      const fromOldInstance = stack.includes('lab_wasm.js?instance=') && !stack.includes(state.moduleUrl);
      if (!fromOldInstance) state.abortRun(error);
    });
  }
}

function died() {
  return new Promise((_, reject) => { state.abortRun = reject; });
}

/// One sparse-training run; its result becomes a one-round report for the table and pad.
async function sparseTraining(settings) {
  state.runsTotal = 1;
  const iterations = settings.imp.train.iterations;
  const sparse = {
    method: settings.strategy.replace('dst-', ''),
    density: settings.density,
    // About 20 updates per run (RigL's ΔT = 100 at 2,000 iterations and more).
    update_every: Math.max(5, Math.min(100, Math.round(iterations / 20))),
  };
  state.dst = { curve: [], initial_density: sparse.method === 'gmp' ? 1 : settings.density, updates: [] };
  const result = await state.lab.runDst({
    model: settings.imp.model,
    sparse,
    train: settings.imp.train,
    eval_subset: settings.imp.eval_subset,
  }, notify);
  state.dstResults = [result];
  state.dst = { curve: result.training.curve, initial_density: result.initial_density, updates: result.updates };
  return { run: result.run, config: settings.imp, backend: result.backend, rounds: [result.training], controls: {} };
}

async function work(settings) {
  if (settings.strategy.startsWith('dst-')) return sparseTraining(settings);
  if (!settings.strategy.startsWith('pai-')) {
    state.runsTotal = settings.imp.rounds * (1 + settings.imp.controls.length);
    return state.lab.runImp(settings.imp, notify);
  }
  // lab-wasm runs the sweep over IMP's densities, so the chart and table compare.
  state.runsTotal = settings.imp.rounds;
  state.paiResults = []; // filled by `pai-result` events as each density finishes
  const { report, results } = await state.lab.runPaiSweep({
    model: settings.imp.model,
    score: settings.strategy.replace('pai-', ''),
    rounds: settings.imp.rounds,
    train: settings.imp.train,
    eval_subset: settings.imp.eval_subset,
  }, notify);
  state.paiResults = results;
  return report;
}

async function runOnce(settings) {
  state.report = { run: '', config: settings.imp, backend: state.lab.backend, rounds: [], controls: {} };
  state.paiResults = null;
  state.dstResults = null;
  state.dst = null;
  state.runsDone = 0;
  // A late trap of an abandoned instance must not reach a later run: each run owns its race.
  state.report = await Promise.race([work(settings), died()]);
  showReport();
  return state.report;
}

/// Runs `settings` on the backend chosen; a GPU run that fails for any reason but Cancel (a
/// trap, a lost device, or an error such as a failed buffer map after the device went away)
/// resumes from the records on the CPU; an error that is not the GPU's recurs there.
export async function run(settings) {
  if (settings.backend !== document.body.dataset.preference) await startLab(settings.backend);
  status(`Running on ${state.lab.backendNote}…`);
  try {
    return await runOnce(settings);
  } catch (error) {
    if (isCancel(error) || state.lab.backend === 'ndarray') throw error;
    state.abortRun = null;
    try { state.lab.cancel(); } catch { /* a trapped instance cannot be called */ } // if it wakes, it stops
    notify({ type: 'fallback-to-cpu' });
    status(`The GPU run failed (${error.message}); resuming on the CPU from the finished rounds…`, true);
    $('experiment').elements.backend.value = 'cpu';
    await startLab('cpu', { fresh: true });
    $('backend').textContent = 'CPU (burn-ndarray), after the WebGPU run failed';
    return runOnce(settings);
  }
}
