// The lab-wasm module's life: loading a (fresh) instance, the data set, the backend, and
// watching the WebGPU device that burn-wgpu asks for.
import { MNIST_FILES, notify, state } from './state.js';
import { $, fillListsFromRegistry } from './view.js';

async function loadModule() {
  // A new query string gives a fresh module instance (after a trap, the old one is dead).
  // The URL is kept: a trap's stack names the glue file it came through, so a late trap of
  // an abandoned instance can be told from one of the current instance.
  state.moduleUrl = new URL(`pkg/lab_wasm.js?instance=${++state.moduleGeneration}`, document.baseURI).href;
  const module = await import(state.moduleUrl);
  await module.default();
  return module;
}

export async function fetchMnist() {
  const base = new URL('data/mnist/', document.baseURI);
  return Promise.all(MNIST_FILES.map(async (name) => {
    const response = await fetch(new URL(name, base));
    if (!response.ok) throw new Error(`fetching ${name}: HTTP ${response.status} (the server must serve data/mnist/)`);
    return new Uint8Array(await response.arrayBuffer());
  }));
}

/// A fresh module instance only when asked or when there is none (the old one died); a plain
/// backend switch keeps the instance and its decoded data set and only picks the new backend.
export async function startLab(preference, { fresh = false } = {}) {
  let sizes = null;
  if (fresh || !state.lab) {
    state.wasm = await loadModule();
    fillListsFromRegistry();
    state.lab = new state.wasm.Lab(state.records);
    sizes = state.lab.loadDataset('mnist', ...state.mnistBytes);
  }
  // "auto" calibrates on the model the form has chosen.
  const chosen = await state.lab.initBackend(preference, document.getElementById('experiment')?.elements.model?.value);
  $('backend').textContent = chosen.note;
  document.body.dataset.backend = chosen.backend;
  document.body.dataset.preference = preference;
  return sizes;
}

/// A lost WebGPU device (driver reset, GPU process crash) makes reads wait forever, so the run
/// in progress must be told. burn-wgpu asks `navigator.gpu` for its device itself; wrapping
/// this page's `GPUAdapter.prototype.requestDevice` is the one place to see that device and
/// its `lost` promise. Installed once, before any backend starts.
export function watchGpuDevices() {
  if (!globalThis.GPUAdapter) return;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await requestDevice.apply(this, args);
    state.gpuDevice = device;
    device.lost.then((info) => {
      if (state.gpuDevice !== device) return;
      notify({ type: 'device-lost' });
      state.abortRun?.(new Error(`the WebGPU device was lost (${info.reason}: ${info.message || 'no message'})`));
    });
    return device;
  };
}
