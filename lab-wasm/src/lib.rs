//! # lab-wasm: LTH Lab in the browser
//!
//! The wasm-bindgen face of `lab-core`. A page creates a [`Lab`], picks a backend (WebGPU
//! when the browser gives an adapter, else burn-ndarray on the CPU), hands it the four MNIST
//! files it fetched, and runs IMP, plain training or pruning at initialisation. Runs stream
//! progress to a JS callback, yield to the event loop between batches, read the GPU only
//! through async reads, can be cancelled, and resolve to the same report JSON as the CLI.
//! Records live in a JS `Map` that the page owns, so finished rounds outlive the instance.
//!
//! `Lab`'s methods are grouped by concern, one `#[wasm_bindgen] impl Lab` per module: setup
//! here, runs in `runs` and `sweep`, charts in `charts`, the digit pad in `pad`, benchmarks in
//! `bench`.
#![cfg(target_arch = "wasm32")]

mod backend;
mod bench;
mod charts;
mod events;
mod pad;
mod runs;
mod store;
mod sweep;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Map, Promise};
use lab_core::base::backend::BackendKind;
use lab_core::base::data::{Checksums, DatasetKind, Mnist};
use lab_core::base::model::ModelKind;
use lab_core::burn::tensor::Device;
use lab_core::methods::dst::Method;
use lab_core::methods::pai::Score;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use events::Trained;
pub use events::next_tick;
use store::JsStore;

/// The `type`s of the progress events runs send (lab-wasm's `Event`, one serialised enum).
#[wasm_bindgen(js_name = eventTypes)]
pub fn event_types() -> js_sys::Array {
    events::EVENT_TYPES
        .iter()
        .map(|t| JsValue::from_str(t))
        .collect()
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// The pruning-at-initialisation scores, from lab-core's list: `["snip", …]`.
#[wasm_bindgen]
pub fn scores() -> JsValue {
    let names: Vec<Value> = Score::ALL.into_iter().map(|s| s.name().into()).collect();
    events::to_js(&Value::Array(names))
}

/// The sparse-training methods, from lab-core's list: `["static", "set", "rigl", "gmp"]`.
#[wasm_bindgen]
pub fn methods() -> JsValue {
    let names: Vec<Value> = Method::ALL.into_iter().map(|m| m.name().into()).collect();
    events::to_js(&Value::Array(names))
}

/// The lab's models, from lab-core's registry: `[{name, summary}]`, for the page's list.
#[wasm_bindgen]
pub fn models() -> JsValue {
    let models: Vec<Value> = ModelKind::ALL
        .into_iter()
        .map(|kind| json!({ "name": kind.name(), "summary": kind.spec().summary }))
        .collect();
    events::to_js(&Value::Array(models))
}

struct Backend {
    kind: BackendKind,
    device: Device,
    note: String,
}

/// One lab per page: a backend, a data set, records, and at most one run at a time.
#[wasm_bindgen]
pub struct Lab {
    backend: Rc<RefCell<Option<Rc<Backend>>>>,
    data: Rc<RefCell<Option<Rc<Mnist>>>>,
    store: JsStore,
    cancel: Rc<Cell<bool>>,
    running: Rc<Cell<bool>>,
    trained: Rc<RefCell<Option<Trained>>>,
    /// The latest IMP run's report so far, as the JSON `currentReport` hands out.
    report: Rc<RefCell<Option<Value>>>,
}

fn js_error(message: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&message.to_string()).into()
}

/// Reads a JS object (or JSON string) as a serde value.
fn from_js<T: serde::de::DeserializeOwned>(value: &JsValue) -> Result<T, JsValue> {
    let text = match value.as_string() {
        Some(text) => text,
        None => js_sys::JSON::stringify(value)
            .map_err(|_| js_error("config is not JSON-serialisable"))?
            .into(),
    };
    serde_json::from_str(&text).map_err(|e| js_error(format!("bad config: {e}")))
}

/// Parses a model name of the page.
fn parse_model(name: &str) -> Result<ModelKind, JsValue> {
    ModelKind::parse(name).ok_or_else(|| js_error(format!("no model {name:?}")))
}

/// Marks a lab busy for the lifetime of a run, also when the run fails.
struct Busy(Rc<Cell<bool>>);
impl Drop for Busy {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

#[wasm_bindgen]
impl Lab {
    /// `records`: a `Map` the page keeps across runs (and module reloads); a new one if absent.
    #[wasm_bindgen(constructor)]
    pub fn new(records: Option<Map>) -> Lab {
        Lab {
            backend: Rc::default(),
            data: Rc::default(),
            store: JsStore::new(records.unwrap_or_default()),
            cancel: Rc::default(),
            running: Rc::default(),
            trained: Rc::default(),
            report: Rc::default(),
        }
    }

    /// Chooses the backend: "auto" (WebGPU only on a hardware adapter and only if a short
    /// training calibration on `model`, default LeNet-300-100, finds it faster than the CPU;
    /// needs the data set loaded, else WebGPU when available), "calibrate" (the same, timing a
    /// software adapter too), "webgpu" (an error without it) or "cpu". Resolves to
    /// `{backend, note, calibration: {cpu_ms, webgpu_ms} | null}`.
    #[wasm_bindgen(js_name = initBackend)]
    pub fn init_backend(&self, preference: String, model: Option<String>) -> Promise {
        let slot = self.backend.clone();
        let data = self.data.borrow().clone();
        future_to_promise(async move {
            let model = match model {
                Some(name) => parse_model(&name)?,
                None => ModelKind::Lenet300,
            };
            let (chosen, calibration) =
                backend::choose(&preference, data.as_deref().map(|d| (d, model)))
                    .await
                    .map_err(js_error)?;
            let answer = json!({ "backend": chosen.kind.name(), "note": chosen.note, "calibration": calibration });
            *slot.borrow_mut() = Some(Rc::new(Backend {
                kind: chosen.kind,
                device: chosen.device,
                note: chosen.note,
            }));
            Ok(events::to_js(&answer))
        })
    }

    /// The backend in use ("wgpu" or "ndarray"), or undefined before `initBackend`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> Option<String> {
        self.backend
            .borrow()
            .as_ref()
            .map(|b| b.kind.name().to_string())
    }

    #[wasm_bindgen(getter, js_name = backendNote)]
    pub fn backend_note(&self) -> Option<String> {
        self.backend.borrow().as_ref().map(|b| b.note.clone())
    }

    /// Loads MNIST (or Fashion-MNIST: `kind` "fashion-mnist") from the bytes of the four IDX
    /// files, gzipped or raw, in the order train images, train labels, test images, test
    /// labels. Checksums are verified. Returns the split sizes.
    #[wasm_bindgen(js_name = loadDataset)]
    pub fn load_dataset(
        &self,
        kind: &str,
        train_images: Vec<u8>,
        train_labels: Vec<u8>,
        test_images: Vec<u8>,
        test_labels: Vec<u8>,
    ) -> Result<JsValue, JsValue> {
        let kind = DatasetKind::parse(kind)
            .ok_or_else(|| js_error(format!("unknown data set {kind:?}")))?;
        let files = [train_images, train_labels, test_images, test_labels];
        let data = Mnist::from_file_bytes(kind, files, Checksums::Verify).map_err(js_error)?;
        let sizes = json!({
            "dataset": kind.name(),
            "train": data.train.len(),
            "validation": data.validation.len(),
            "test": data.test.len(),
        });
        *self.data.borrow_mut() = Some(Rc::new(data));
        Ok(events::to_js(&sizes))
    }
}

impl Lab {
    fn backend_in_use(&self) -> Result<Rc<Backend>, JsValue> {
        let backend = self.backend.borrow().clone();
        backend.ok_or_else(|| js_error("call initBackend first"))
    }

    /// Checks that a run can start (a backend, a data set, no other run) and marks the lab
    /// busy until the returned [`Busy`] drops.
    fn begin(&self) -> Result<(Rc<Backend>, Rc<Mnist>, Busy), JsValue> {
        if self.running.get() {
            return Err(js_error(
                "an experiment is already running: cancel it or wait",
            ));
        }
        let backend = self.backend_in_use()?;
        let data = self
            .data
            .borrow()
            .clone()
            .ok_or_else(|| js_error("call loadDataset first"))?;
        self.cancel.set(false);
        self.running.set(true);
        Ok((backend, data, Busy(self.running.clone())))
    }
}
