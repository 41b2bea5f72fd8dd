//! # lab-wasm: LTH Lab in the browser
//!
//! The wasm-bindgen face of `lab-core`. A page creates a [`Lab`], picks a backend (WebGPU
//! when the browser gives an adapter, else burn-ndarray on the CPU), hands it the four MNIST
//! files it fetched, and runs IMP, plain training or pruning at initialisation. Runs stream
//! progress to a JS callback, yield to the event loop between batches, read the GPU only
//! through async reads, can be cancelled, and resolve to the same report JSON as the CLI.
//! Records live in a JS `Map` that the page owns, so finished rounds outlive the instance.
#![cfg(target_arch = "wasm32")]

mod backend;
mod events;
mod store;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Map, Promise};
use lab_core::backend::BackendKind;
use lab_core::burn::tensor::activation::softmax;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
use lab_core::data::{Checksums, DatasetKind, Mnist};
use lab_core::dst::{DstExperiment, MaskUpdate, Method, run_dst};
use lab_core::imp::ImpObserver;
use lab_core::imp::{Control, ImpConfig, run_experiment};
use lab_core::model::{Classifier, ModelKind, Net, init_model};
use lab_core::pai::{PaiConfig, PaiExperiment, Score, run_pai};
use lab_core::params::load_weights;
use lab_core::plot;
use lab_core::record::{ImpReport, RoundResult, with_defaults};
use lab_core::store::RunStore;
use lab_core::train::TrainConfig;
use lab_core::train::{Pause, Prepared};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

pub use events::next_tick;
use events::{JsObserver, Trained};
use store::JsStore;

/// A pruning-at-initialisation sweep of the page (see [`Lab::run_pai_sweep`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct PaiSweep {
    model: ModelKind,
    score: String,
    rounds: usize,
    /// `TrainConfig` fields; the rest take their defaults.
    #[serde(default)]
    train: Value,
    #[serde(default)]
    eval_subset: Option<usize>,
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
    report: Rc<RefCell<Option<ImpReport>>>,
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
                Some(name) => {
                    ModelKind::parse(&name).ok_or_else(|| js_error(format!("no model {name:?}")))?
                }
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

    /// Asks the running experiment to stop after the current batch; its promise then
    /// rejects with "cancelled" and finished rounds stay in the records.
    pub fn cancel(&self) {
        self.cancel.set(true);
    }

    #[wasm_bindgen(getter)]
    pub fn running(&self) -> bool {
        self.running.get()
    }

    /// Runs IMP (`ImpConfig` JSON, plus optional `controls: ["reinit", "random-prune"]`),
    /// resuming from the records. `onEvent` receives `{type: "round-start" | "step" | "eval" |
    /// "round", ...}`. Resolves to the report (the CLI's `report.json`).
    #[wasm_bindgen(js_name = runImp)]
    pub fn run_imp(&self, config: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let mut settings: Value = from_js(&config)?;
        let controls: Vec<Control> =
            match settings.as_object_mut().and_then(|m| m.remove("controls")) {
                Some(list) => {
                    serde_json::from_value(list).map_err(|e| js_error(format!("controls: {e}")))?
                }
                None => Vec::new(),
            };
        let config = with_defaults(&ImpConfig::new(), settings)
            .map_err(|e| js_error(format!("bad config: {e}")))?;
        config.validate().map_err(js_error)?;
        let (backend, data, busy) = self.begin()?;
        let mut store = self.store.clone();
        let mut observer = JsObserver::new(on_event, self.cancel.clone(), self.trained.clone());
        observer.model = config.model;
        let report_slot = self.report.clone();
        Ok(future_to_promise(async move {
            let _busy = busy;
            *report_slot.borrow_mut() = None;
            let mut keep = |report: &ImpReport| *report_slot.borrow_mut() = Some(report.clone());
            let result = run_experiment(
                &config,
                &controls,
                None,
                &data,
                &backend.device,
                backend.kind.name(),
                &mut store,
                &mut observer,
                &mut keep,
            )
            .await;
            match result {
                Ok(report) => {
                    keep(&report);
                    Ok(events::to_js(
                        &serde_json::to_value(&report).map_err(js_error)?,
                    ))
                }
                Err(error) => {
                    // Cancelled or failed in the ticket lineage: keep the rounds that finished.
                    if report_slot.borrow().is_none() {
                        keep(&ImpReport {
                            run: config.run_name(),
                            config: serde_json::to_value(&config).unwrap_or_default(),
                            backend: backend.kind.name().into(),
                            data_seed: config.train.data_order_seed(config.seed),
                            rounds: finished_rounds(&observer.finished, "ticket"),
                            controls: Default::default(),
                        });
                    }
                    Err(js_error(error))
                }
            }
        }))
    }

    /// Trains the dense network once: an IMP run of one round (the same `ImpConfig` JSON;
    /// `rounds` and `controls` are ignored), so its record is IMP's round 0 and a later IMP
    /// run with the same settings starts from it. Resolves to the round's result (curve,
    /// early-stop iteration, accuracies), and `classify` then uses the trained network.
    pub fn train(&self, config: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let mut settings: Value = from_js(&config)?;
        let object = settings
            .as_object_mut()
            .ok_or_else(|| js_error("bad config: expected an object"))?;
        object.insert("rounds".into(), 1.into());
        object.remove("controls");
        let run = self.run_imp(events::to_js(&settings), on_event)?;
        Ok(future_to_promise(async move {
            let report = wasm_bindgen_futures::JsFuture::from(run).await?;
            let rounds = js_sys::Reflect::get(&report, &"rounds".into())?;
            js_sys::Reflect::get_u32(&rounds, 0)
        }))
    }

    /// Runs one pruning-at-initialisation experiment (`PaiExperiment` JSON). Resolves to
    /// its `PaiResult`.
    #[wasm_bindgen(js_name = runPai)]
    pub fn run_pai(&self, experiment: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let experiment = with_defaults(&PaiExperiment::default(), from_js(&experiment)?)
            .map_err(|e| js_error(format!("bad experiment: {e}")))?;
        let context = json!({ "score": experiment.pai.score.name(), "compression": experiment.pai.compression });
        let subsets = (experiment.train_subset, experiment.eval_subset);
        self.run_single(
            on_event,
            context,
            experiment.model,
            subsets,
            move |mut run| async move {
                run_pai::<Net>(
                    &experiment,
                    &run.prepared,
                    &run.backend.device,
                    run.backend.kind.name(),
                    &mut run.store,
                    &mut run.observer,
                )
                .await
                .map_err(js_error)
            },
        )
    }

    /// Pruning at initialisation at the densities of IMP's rounds (0.8^k for k < `rounds`),
    /// one experiment each, so the page's IMP chart and table compare: `{model, score,
    /// rounds, train, eval_subset}`. Emits a `round` event per density (a collapsed network
    /// at chance level) and resolves to `{report, results}`: the IMP-shaped report and
    /// `lth pai`'s list of results.
    #[wasm_bindgen(js_name = runPaiSweep)]
    pub fn run_pai_sweep(&self, sweep: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let sweep: PaiSweep = from_js(&sweep)?;
        let score = Score::parse(&sweep.score)
            .ok_or_else(|| js_error(format!("unknown score {:?}", sweep.score)))?;
        let overrides = match &sweep.train {
            Value::Null => json!({}),
            train => train.clone(),
        };
        let train = with_defaults(&TrainConfig::new(), overrides)
            .map_err(|e| js_error(format!("bad train config: {e}")))?;
        let (backend, data, busy) = self.begin()?;
        let mut store = self.store.clone();
        let mut observer = JsObserver::new(on_event, self.cancel.clone(), self.trained.clone());
        observer.model = sweep.model;
        Ok(future_to_promise(async move {
            let _busy = busy;
            let data = data.limited(None, sweep.eval_subset);
            let prepared = Prepared::new(&data, &backend.device);
            let mut results = Vec::new();
            let mut rounds = Vec::new();
            for round in 0..sweep.rounds {
                let density = 0.8f64.powi(round as i32);
                let experiment = PaiExperiment {
                    model: sweep.model,
                    pai: PaiConfig::new(score, -density.log10()),
                    train: train.clone(),
                    eval_subset: sweep.eval_subset,
                    ..PaiExperiment::default()
                };
                observer.context =
                    json!({ "score": score.name(), "compression": experiment.pai.compression });
                let result = run_pai::<Net>(
                    &experiment,
                    &prepared,
                    &backend.device,
                    backend.kind.name(),
                    &mut store,
                    &mut observer,
                )
                .await
                .map_err(js_error)?;
                // The page keeps each result as it arrives: a cancelled sweep still saves
                // `lth pai`'s format for what finished.
                observer.emit("pai-result", json!({ "result": &result }));
                let as_round = result.as_round(round);
                observer.on_round(&as_round, "ticket");
                rounds.push(as_round);
                results.push(result);
            }
            let report = ImpReport {
                run: format!("pai-sweep:{}", score.name()),
                config: serde_json::to_value(&sweep).map_err(js_error)?,
                backend: backend.kind.name().into(),
                data_seed: train.data_order_seed(0),
                rounds,
                controls: Default::default(),
            };
            Ok(events::to_js(
                &json!({ "report": report, "results": results }),
            ))
        }))
    }

    /// Runs one sparse-training experiment (`DstExperiment` JSON over its defaults; an
    /// initial mask from a ticket is a CLI feature). Emits `mask-update` events (`{update,
    /// connections}`: the update with Rs, the first layer's connections per pixel) and
    /// resolves to its `DstResult` (`lth dst`'s report is a list of them).
    #[wasm_bindgen(js_name = runDst)]
    pub fn run_dst(&self, experiment: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let experiment = with_defaults(&DstExperiment::new(), from_js(&experiment)?)
            .map_err(|e| js_error(format!("bad experiment: {e}")))?;
        if experiment.initial_mask.is_some() {
            return Err(js_error("the page starts DST from random masks only"));
        }
        let context = json!({ "method": experiment.sparse.method.name(), "density": experiment.sparse.density });
        let subsets = (experiment.train_subset, experiment.eval_subset);
        self.run_single(
            on_event,
            context,
            experiment.model,
            subsets,
            move |mut run| async move {
                run_dst::<Net>(
                    &experiment,
                    None,
                    &run.prepared,
                    &run.backend.device,
                    run.backend.kind.name(),
                    &mut run.store,
                    &mut run.observer,
                )
                .await
                .map_err(js_error)
            },
        )
    }

    /// The SVG of a sparse-training run so far: test accuracy and Rs against the iteration,
    /// from `{curve, initial_density, updates}` (a `DstResult`'s fields or the live events).
    #[wasm_bindgen(js_name = dstChartSvg)]
    pub fn dst_chart_svg(progress: JsValue) -> Result<String, JsValue> {
        #[derive(serde::Deserialize)]
        struct Progress {
            curve: Vec<lab_core::train::EvalPoint>,
            initial_density: f64,
            updates: Vec<MaskUpdate>,
        }
        let progress: Progress = from_js(&progress)?;
        Ok(plot::to_svg(&lab_core::dst::progress_chart(
            &progress.curve,
            progress.initial_density,
            &progress.updates,
        )))
    }

    /// The report of the latest IMP run so far (finished rounds only), or undefined.
    #[wasm_bindgen(js_name = currentReport)]
    pub fn current_report(&self) -> JsValue {
        match &*self.report.borrow() {
            Some(report) => serde_json::to_value(report)
                .map(|v| events::to_js(&v))
                .unwrap_or(JsValue::NULL),
            None => JsValue::UNDEFINED,
        }
    }

    /// An SVG chart of a report: "accuracy" (test accuracy vs % weights remaining, the LTH
    /// figure), "early-stop" (early-stop iteration vs % remaining) or "curves" (test
    /// accuracy during training, one line per round).
    #[wasm_bindgen(js_name = chartSvg)]
    pub fn chart_svg(report: JsValue, which: &str) -> Result<String, JsValue> {
        let report: ImpReport = from_js(&report)?;
        let groups = report.groups();
        let chart = match which {
            "accuracy" => plot::accuracy_vs_remaining(&groups),
            "early-stop" => plot::early_stop_vs_remaining(&groups),
            "curves" => plot::training_curves(&report.curves()),
            other => return Err(js_error(format!("unknown chart {other:?}"))),
        };
        Ok(plot::to_svg(&chart))
    }

    /// The weight histograms of round `round` of this page's IMP run `run` (trained before
    /// pruning, kept by pruning, after retraining, rewound), for its layer `layer`: an SVG
    /// chart, or undefined while rounds `round` and `round + 1` are not both finished.
    #[wasm_bindgen(js_name = histogramSvg)]
    pub fn histogram_svg(&self, run: &str, round: usize, layer: usize) -> Option<String> {
        let histograms =
            lab_core::histogram::imp_round_histograms(&self.store, run, round, 60).ok()?;
        let layer = histograms.layers.get(layer)?;
        Some(plot::to_svg(&lab_core::histogram::layer_chart(
            layer, round,
        )))
    }

    /// The Jaccard overlap of the sparsest ticket of each run this page made (IMP, PaI and
    /// sparse-training runs of the model of the latest one): an SVG matrix, or undefined with
    /// fewer than two such runs.
    #[wasm_bindgen(js_name = overlapSvg)]
    pub fn overlap_svg(&self) -> Option<String> {
        let mut latest: Vec<(String, String)> = Vec::new();
        for key in self.store.keys() {
            let is_ticket = (key.ends_with("/ticket.safetensors") && !key.contains("/control-"))
                || (key.starts_with("dst-") && key.ends_with("/trained.safetensors"));
            let Some((run, _)) = key.split_once('/') else {
                continue;
            };
            if !is_ticket {
                continue;
            }
            // Sorted keys: a run's last round comes last.
            match latest.iter_mut().find(|(r, _)| r == run) {
                Some(entry) => entry.1 = key.clone(),
                None => latest.push((run.to_string(), key.clone())),
            }
        }
        let masks: Vec<(String, lab_core::mask::Mask)> = latest
            .iter()
            .filter_map(|(run, key)| {
                let ticket =
                    lab_core::ticket::Ticket::from_safetensors(&self.store.read(key)?).ok()?;
                let label = if run.starts_with("imp-") {
                    format!("{run} r{:02}", ticket.provenance.round)
                } else {
                    run.clone()
                };
                Some((label, ticket.mask))
            })
            .collect();
        // Only masks of one model compare: the model of the run that wrote last.
        let model = self.trained.borrow().as_ref().map(|t| t.mask.clone())?;
        let same_model = |m: &lab_core::mask::Mask| {
            m.layers.len() == model.layers.len()
                && m.layers
                    .iter()
                    .zip(&model.layers)
                    .all(|(a, b)| a.name == b.name && a.shape == b.shape)
        };
        let masks: Vec<_> = masks.into_iter().filter(|(_, m)| same_model(m)).collect();
        if masks.len() < 2 {
            return None;
        }
        lab_core::overlap::overlap_matrix(&masks)
            .ok()
            .map(|m| m.to_svg())
    }

    /// Round of the network that `classify` and the first-layer picture use, if any.
    #[wasm_bindgen(getter, js_name = trainedRound)]
    pub fn trained_round(&self) -> Option<usize> {
        self.trained.borrow().as_ref().map(|t| t.round)
    }

    /// The first layer's surviving connections in the latest trained network: `{inputs,
    /// units, counts}` (per input pixel, how many hidden units still see it), and `keep`,
    /// units × inputs flags (1 = kept) for drawing each unit's 28×28 mask.
    #[wasm_bindgen(js_name = firstLayer)]
    pub fn first_layer(&self) -> JsValue {
        let trained = self.trained.borrow();
        let Some(trained) = trained.as_ref() else {
            return JsValue::UNDEFINED;
        };
        let Some(picture) = trained.mask.input_connections() else {
            return JsValue::UNDEFINED;
        };
        let layer = &trained.mask.layers[0];
        // Transpose [inputs, units] to units × inputs, so each unit's mask is contiguous.
        let mut keep = vec![0u8; picture.inputs * picture.units];
        for (index, &kept) in layer.keep.iter().enumerate() {
            let (input, unit) = (index / picture.units, index % picture.units);
            keep[unit * picture.inputs + input] = u8::from(kept);
        }
        let object = events::to_js(&serde_json::to_value(&picture).unwrap_or(Value::Null));
        let _ = js_sys::Reflect::set(
            &object,
            &"keep".into(),
            &js_sys::Uint8Array::from(&keep[..]),
        );
        object
    }

    /// Class probabilities for a 28×28 image (row-major intensities in [0, 1], white on
    /// black) from the latest trained ticket.
    pub fn classify(&self, pixels: Vec<f32>) -> Result<Promise, JsValue> {
        let (trained, backend, input) = self.pad_request(&pixels)?;
        let model_kind = trained.model;
        Ok(future_to_promise(async move {
            let input = Tensor::<2>::from_data(TensorData::new(input, [1, 784]), &backend.device);
            let probabilities = forward(model_kind, &trained, input, &backend.device);
            let values = probabilities
                .into_data_async()
                .await
                .map_err(|e| js_error(format!("{e:?}")))?
                .try_to_vec::<f32>()
                .map_err(|e| js_error(format!("{e:?}")))?;
            Ok(js_sys::Float32Array::from(&values[..]).into())
        }))
    }

    /// The digit pad's answer from the sparse ticket: class probabilities computed by the CSR
    /// engine (on the page's thread, wasm SIMD128) from the latest trained network, next to
    /// the dense forward pass on the current backend, each timed over repeated calls (about
    /// 30 ms each, as one call is below the browser clock's resolution). Resolves to
    /// `{probabilities, dense_probabilities, sparse_us, dense_us, nonzeros, weights}`;
    /// `sparse_us` is null for a network that is not sequential (the ViT).
    #[wasm_bindgen(js_name = classifyTimed)]
    pub fn classify_timed(&self, pixels: Vec<f32>) -> Result<Promise, JsValue> {
        let (trained, backend, input) = self.pad_request(&pixels)?;
        Ok(future_to_promise(async move {
            let model: Net = load_weights(
                init_model(trained.model, 0, &backend.device),
                &trained.weights,
            );
            let sparse = match model.stages() {
                Some(stages) => Some(
                    lab_core::sparse::SparseNet::new(&stages, &trained.weights, &trained.mask)
                        .map_err(js_error)?,
                ),
                None => None,
            };
            let dense_once = || async {
                let x = Tensor::<2>::from_data(
                    TensorData::new(input.clone(), [1, 784]),
                    &backend.device,
                );
                softmax(model.forward(x), 1)
                    .into_data_async()
                    .await
                    .map_err(|e| js_error(format!("{e:?}")))?
                    .try_to_vec::<f32>()
                    .map_err(|e| js_error(format!("{e:?}")))
            };
            let dense = dense_once().await?;
            let started = web_time::Instant::now();
            let mut calls = 0;
            while calls < 3 || started.elapsed().as_secs_f64() < 0.03 {
                dense_once().await?;
                calls += 1;
            }
            let dense_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
            let (probabilities, sparse_us, nonzeros) = match &sparse {
                Some(net) => {
                    let logits = net.forward(&input).map_err(js_error)?;
                    let started = web_time::Instant::now();
                    let mut calls = 0;
                    while calls < 3 || started.elapsed().as_secs_f64() < 0.03 {
                        std::hint::black_box(
                            net.forward(std::hint::black_box(&input))
                                .map_err(js_error)?,
                        );
                        calls += 1;
                    }
                    let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
                    (softmax_host(&logits), Some(us), net.size().nonzeros)
                }
                None => (dense.clone(), None, trained.mask.remaining()),
            };
            Ok(events::to_js(&json!({
                "probabilities": probabilities,
                "dense_probabilities": dense,
                "sparse_us": sparse_us,
                "dense_us": dense_us,
                "nonzeros": nonzeros,
                "weights": trained.mask.total(),
                "backend": backend.kind.name(),
            })))
        }))
    }

    /// The inference table in this browser (lab-core's `inference_table`, as `lth bench`):
    /// dense and compacted on the current backend, CSR in wasm, densities 100…1%, batches
    /// 1, 60 and 1000, `budget_s` seconds per cell. Resolves to `{rows, break_even}`.
    #[wasm_bindgen(js_name = inferenceBench)]
    pub fn inference_bench(&self, models: Vec<String>, budget_s: f64) -> Result<Promise, JsValue> {
        let (backend, data, busy) = self.begin()?;
        let models: Vec<ModelKind> = models
            .iter()
            .map(|m| ModelKind::parse(m).ok_or_else(|| js_error(format!("no model {m:?}"))))
            .collect::<Result<_, _>>()?;
        Ok(future_to_promise(async move {
            let _busy = busy;
            let images = data
                .test
                .standardised(&(0..1000.min(data.test.len())).collect::<Vec<_>>());
            let mut rows = Vec::new();
            let mut break_even = Vec::new();
            for model in models {
                let table = lab_core::bench::inference_table(
                    model,
                    &backend.device,
                    &images,
                    &lab_core::bench::INFERENCE_DENSITIES,
                    &lab_core::bench::INFERENCE_BATCHES,
                    budget_s,
                    &mut |_| {},
                )
                .await
                .map_err(js_error)?;
                for batch in lab_core::bench::INFERENCE_BATCHES {
                    let density = lab_core::bench::break_even_density(&table, model.name(), batch);
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
            let timing = lab_core::bench::training_throughput_async(
                &data,
                &backend.device,
                steps,
                &mut pause,
            )
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

impl Lab {
    /// What classifying a drawn digit needs: 784 pixels, a trained network, a backend; the
    /// pixels standardised as the network's data set was.
    fn pad_request(&self, pixels: &[f32]) -> Result<(Trained, Rc<Backend>, Vec<f32>), JsValue> {
        if pixels.len() != 784 {
            return Err(js_error(format!(
                "expected 784 pixels, got {}",
                pixels.len()
            )));
        }
        let trained = self
            .trained
            .borrow()
            .clone()
            .ok_or_else(|| js_error("no trained network yet: run an experiment first"))?;
        let backend = self.backend_in_use()?;
        // The network was trained on the loaded data set's standardisation.
        let stats = self
            .data
            .borrow()
            .as_ref()
            .map(|data| data.train.pixels)
            .unwrap_or_default();
        Ok((
            trained,
            backend,
            pixels.iter().map(|&p| stats.standardise(p)).collect(),
        ))
    }

    fn backend_in_use(&self) -> Result<Rc<Backend>, JsValue> {
        let backend = self.backend.borrow().clone();
        backend.ok_or_else(|| js_error("call initBackend first"))
    }

    /// Checks that a run can start and marks the lab busy.
    /// Runs one experiment (`run`) on the lab's backend and data (limited to `subsets`, train
    /// and evaluation), with an observer that sends `on_event` the `context`; the promise
    /// resolves to the result as JSON.
    fn run_single<T, F, Fut>(
        &self,
        on_event: Function,
        context: Value,
        model: ModelKind,
        subsets: (Option<usize>, Option<usize>),
        run: F,
    ) -> Result<Promise, JsValue>
    where
        T: serde::Serialize,
        F: FnOnce(SingleRun) -> Fut + 'static,
        Fut: std::future::Future<Output = Result<T, JsValue>> + 'static,
    {
        let (backend, data, busy) = self.begin()?;
        let mut observer = JsObserver::new(on_event, self.cancel.clone(), self.trained.clone());
        observer.context = context;
        observer.model = model;
        let store = self.store.clone();
        Ok(future_to_promise(async move {
            let _busy = busy;
            let data = data.limited(subsets.0, subsets.1);
            let prepared = Prepared::new(&data, &backend.device);
            let single = SingleRun {
                backend,
                prepared,
                store,
                observer,
            };
            let result = run(single).await?;
            Ok(events::to_js(
                &serde_json::to_value(&result).map_err(js_error)?,
            ))
        }))
    }

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

/// What [`Lab::run_single`] hands its experiment.
struct SingleRun {
    backend: Rc<Backend>,
    prepared: Prepared,
    store: JsStore,
    observer: JsObserver,
}

fn finished_rounds(finished: &[(String, RoundResult)], branch: &str) -> Vec<RoundResult> {
    finished
        .iter()
        .filter(|(label, _)| label == branch)
        .map(|(_, r)| r.clone())
        .collect()
}

fn softmax_host(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|&v| v / sum).collect()
}

fn forward(kind: ModelKind, trained: &Trained, input: Tensor<2>, device: &Device) -> Tensor<2> {
    let model: Net = load_weights(init_model(kind, 0, device), &trained.weights);
    softmax(model.forward(input), 1)
}
