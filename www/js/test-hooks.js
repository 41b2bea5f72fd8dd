// Hooks for scripts that drive the page (tests/browser): loaded only when the page's URL has
// `test` in its query, so what users load defines no globals.
import { state } from './state.js';

export function install() {
  const hooks = {
    events: [],     // the type of every run event, in order
    onEvent: null,  // called with every run event
    get lab() { return state.lab; },
    get wasm() { return state.wasm; },
    get report() { return state.report; },
    get gpuDevice() { return state.gpuDevice; },
    records: state.records,
  };
  state.listeners.unshift((event) => {
    hooks.events.push(event.type);
    hooks.onEvent?.(event);
  });
  window.lth = hooks;
}
