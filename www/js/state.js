// The page's state, in one place. Modules read and write it; nothing else is global.

export const MNIST_FILES = [
  'train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
  't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz',
];

export const state = {
  // Records of finished rounds, owned by the page so they survive a crashed wasm instance
  // (e.g. a lost WebGPU device): the run then resumes on the CPU.
  records: new Map(),
  wasm: null,          // the lab-wasm module
  lab: null,           // its Lab
  mnistBytes: null,    // the four IDX files, fetched once
  moduleUrl: null,     // the glue file of the module instance in use
  moduleGeneration: 0,
  report: null,        // the report shown (ImpReport shape)
  paiResults: null,    // a PaI strategy's results, `lth pai`'s report.json (null for IMP)
  dst: null,           // a sparse-training run as it goes: {curve, initial_density, updates}
  dstResults: null,    // its result, `lth dst`'s report.json (null otherwise)
  runsDone: 0,
  runsTotal: 1,
  abortRun: null,      // rejects the race of the run in progress
  gpuDevice: null,     // the WebGPU device burn-wgpu asked for, watched for loss
  listeners: [],       // functions that see every run event (the view; test hooks)
};

/// Passes a run event (`{type, ...}`) to every listener.
export function notify(event) {
  for (const listener of state.listeners) listener(event);
}
