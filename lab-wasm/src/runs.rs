//! Runs: IMP (and plain training, its one-round case), one pruning-at-initialisation
//! experiment, sparse training; cancelling the run. The PaI sweep is in `sweep`.

use js_sys::{Function, Promise};
use lab_core::base::model::ModelKind;
use lab_core::base::naming::with_defaults;
use lab_core::methods::dst::DstExperiment;
use lab_core::methods::imp::{Control, ImpConfig, ImpReport, run_experiment};
use lab_core::methods::pai::PaiExperiment;
use lab_core::report::registry;
use lab_core::training::experiment::{Data, Session};
use lab_core::training::result::RoundResult;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::events::{self, JsObserver};
use crate::{Lab, from_js, js_error};

#[wasm_bindgen]
impl Lab {
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
        // lab-core hands the observer the report after each finished branch.
        observer.report = Some(self.report.clone());
        let report_slot = self.report.clone();
        Ok(future_to_promise(async move {
            let _busy = busy;
            *report_slot.borrow_mut() = None;
            let result = run_experiment(
                &config,
                &controls,
                None,
                &data,
                &mut Session::new(
                    backend.device.clone(),
                    backend.kind.name(),
                    &mut store,
                    &mut observer,
                ),
            )
            .await;
            match result {
                Ok(report) => {
                    let report = serde_json::to_value(&report).map_err(js_error)?;
                    *report_slot.borrow_mut() = Some(report.clone());
                    Ok(events::to_js(&report))
                }
                Err(error) => {
                    // Cancelled or failed in the ticket lineage: keep the rounds that finished.
                    if report_slot.borrow().is_none() {
                        let partial = ImpReport {
                            run: config.run_name(),
                            config: serde_json::to_value(&config).unwrap_or_default(),
                            backend: backend.kind.name().into(),
                            data_seed: config.train.data_order_seed(config.seed),
                            rounds: finished_rounds(&observer.finished, "ticket"),
                            controls: Default::default(),
                        };
                        *report_slot.borrow_mut() = serde_json::to_value(&partial).ok();
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

    /// Runs (or reads back) any experiment of lab-core's registry by its kind (`imp`, `pai`,
    /// `dst`, `lmc`, `early-bird`, `transfer`) from partial JSON over its defaults, on the
    /// loaded data set. Emits the typed progress events and resolves to the report.
    pub fn run(
        &self,
        kind: String,
        config: JsValue,
        on_event: Function,
    ) -> Result<Promise, JsValue> {
        self.run_kind(kind, from_js(&config)?, Value::Null, on_event)
    }

    /// Runs one pruning-at-initialisation experiment (`PaiExperiment` JSON). Resolves to
    /// its `PaiResult`.
    #[wasm_bindgen(js_name = runPai)]
    pub fn run_pai(&self, experiment: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let settings: Value = from_js(&experiment)?;
        let experiment = with_defaults(&PaiExperiment::default(), settings.clone())
            .map_err(|e| js_error(format!("bad experiment: {e}")))?;
        let context = json!({ "score": experiment.pai.score.name(), "compression": experiment.pai.compression });
        self.run_kind("pai".into(), settings, context, on_event)
    }

    /// Runs one sparse-training experiment (`DstExperiment` JSON over its defaults; an
    /// initial mask from a ticket is a CLI feature). Emits `mask-update` events (`{update,
    /// connections}`: the update with Rs, the first layer's connections per pixel) and
    /// resolves to its `DstResult` (`lth dst`'s report is a list of them).
    #[wasm_bindgen(js_name = runDst)]
    pub fn run_dst(&self, experiment: JsValue, on_event: Function) -> Result<Promise, JsValue> {
        let settings: Value = from_js(&experiment)?;
        let experiment = with_defaults(&DstExperiment::new(), settings.clone())
            .map_err(|e| js_error(format!("bad experiment: {e}")))?;
        if experiment.initial_mask.is_some() {
            return Err(js_error("the page starts DST from random masks only"));
        }
        let context = json!({ "method": experiment.sparse.method.name(), "density": experiment.sparse.density });
        self.run_kind(
            "dst".into(),
            json!({ "experiment": settings }),
            context,
            on_event,
        )
    }

    /// The report of the latest IMP run so far (finished rounds only), or undefined.
    #[wasm_bindgen(js_name = currentReport)]
    pub fn current_report(&self) -> JsValue {
        self.report
            .borrow()
            .as_ref()
            .map_or(JsValue::UNDEFINED, events::to_js)
    }
}

impl Lab {
    /// Runs the registry's experiment `kind` on the lab's backend and data, with an observer
    /// that sends `on_event` the `context`; the promise resolves to the report as JSON.
    fn run_kind(
        &self,
        kind: String,
        config: Value,
        context: Value,
        on_event: Function,
    ) -> Result<Promise, JsValue> {
        let described = registry::describe(&kind, config.clone()).map_err(js_error)?;
        let (backend, data, busy) = self.begin()?;
        if let Some(missing) = described.datasets.iter().find(|&&d| d != data.kind) {
            return Err(js_error(format!(
                "{kind} needs {}, and the page has {} loaded",
                missing.name(),
                data.kind.name()
            )));
        }
        let mut observer = JsObserver::new(on_event, self.cancel.clone(), self.trained.clone());
        observer.context = context;
        observer.model = model_of(&config).unwrap_or(observer.model);
        let mut store = self.store.clone();
        Ok(future_to_promise(async move {
            let _busy = busy;
            let mut session = Session {
                device: backend.device.clone(),
                backend: backend.kind.name().into(),
                store: &mut store,
                observer: &mut observer,
            };
            let data = Data::one(data.kind, &data);
            let report = registry::run_json(&kind, config, &data, &mut session)
                .await
                .map_err(js_error)?;
            Ok(events::to_js(&report))
        }))
    }
}

/// The model a config names (`model`, or one level down), so the trained network kept for
/// the digit pad is built as the right architecture.
fn model_of(config: &Value) -> Option<ModelKind> {
    let direct = config.get("model");
    let nested = || config.as_object()?.values().find_map(|v| v.get("model"));
    serde_json::from_value(direct.or_else(nested)?.clone()).ok()
}

/// The results of the finished rounds of `branch`, in order.
fn finished_rounds(finished: &[(String, RoundResult)], branch: &str) -> Vec<RoundResult> {
    finished
        .iter()
        .filter(|(label, _)| label == branch)
        .map(|(_, r)| r.clone())
        .collect()
}
