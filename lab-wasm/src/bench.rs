//! Benchmarks in this browser, through lab-core's (as `lth bench`): training steps per
//! second and the inference table of dense, compacted and CSR forward passes.

use js_sys::Promise;
use lab_core::base::backend::BackendKind;
use lab_core::base::model::ModelKind;
use lab_core::report::bench::{
    INFERENCE_BATCHES, INFERENCE_DENSITIES, break_even_density, inference_table,
    training_throughput_async,
};
use lab_core::training::observer::Pause;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::{Lab, events, js_error, next_tick, parse_model};

#[wasm_bindgen]
impl Lab {
    /// The inference table in this browser (lab-core's `inference_table`, as `lth bench`):
    /// dense and compacted on the current backend, CSR in wasm, densities 100…1%, batches
    /// 1, 60 and 1000, `budget_s` seconds per cell. Resolves to `{rows, break_even}`.
    #[wasm_bindgen(js_name = inferenceBench)]
    pub fn inference_bench(&self, models: Vec<String>, budget_s: f64) -> Result<Promise, JsValue> {
        let (backend, data, busy) = self.begin()?;
        let models: Vec<ModelKind> = models
            .iter()
            .map(|m| parse_model(m))
            .collect::<Result<_, _>>()?;
        Ok(future_to_promise(async move {
            let _busy = busy;
            let images = data
                .test
                .standardised(&(0..1000.min(data.test.len())).collect::<Vec<_>>());
            let mut rows = Vec::new();
            let mut break_even = Vec::new();
            for model in models {
                let table = inference_table(
                    model,
                    &backend.device,
                    &images,
                    &INFERENCE_DENSITIES,
                    &INFERENCE_BATCHES,
                    budget_s,
                    &mut |_| {},
                )
                .await
                .map_err(js_error)?;
                for batch in INFERENCE_BATCHES {
                    let density = break_even_density(&table, model.name(), batch);
                    break_even
                        .push(json!({ "model": model.name(), "batch": batch, "density": density }));
                }
                rows.extend(table);
            }
            Ok(events::to_js(
                &json!({ "backend": backend.kind.name(), "rows": rows, "break_even": break_even }),
            ))
        }))
    }

    /// Times `steps` LeNet-300-100 training steps (Adam, batch 60) on the current backend
    /// after 20 warm-up steps; resolves to `{backend, steps, ms_per_step, samples_per_second}`.
    pub fn benchmark(&self, steps: usize) -> Result<Promise, JsValue> {
        let (backend, data, busy) = self.begin()?;
        Ok(future_to_promise(async move {
            let _busy = busy;
            // On the CPU nothing runs while the page has the event loop, so yielding time is
            // subtracted; a GPU keeps working meanwhile, so there the loop does not yield
            // (as TensorFlow.js's training loop does not) and the clock runs throughout.
            let on_gpu = backend.kind == BackendKind::Wgpu;
            let mut pause = || -> Option<Pause<'static>> {
                (!on_gpu).then(|| Box::pin(next_tick()) as Pause<'static>)
            };
            let timing = training_throughput_async(&data, &backend.device, steps, &mut pause)
                .await
                .map_err(js_error)?;
            Ok(events::to_js(&json!({
                "backend": backend.kind.name(),
                "steps": steps,
                "ms_per_step": timing.ms_per_step,
                "samples_per_second": timing.samples_per_second,
                "first_step_ms": timing.first_step_ms,
            })))
        }))
    }
}
