//! Runs: IMP (and plain training, its one-round case), one pruning-at-initialisation
//! experiment, sparse training; cancelling the run. The PaI sweep is in `sweep`.

use std::rc::Rc;

use js_sys::{Function, Promise};
use lab_core::base::model::{ModelKind, Net};
use lab_core::base::naming::with_defaults;
use lab_core::methods::dst::{DstExperiment, run_dst};
use lab_core::methods::imp::{Control, ImpConfig, ImpReport, run_experiment};
use lab_core::methods::pai::{PaiExperiment, run_pai};
use lab_core::training::result::RoundResult;
use lab_core::training::train::Prepared;
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::events::{self, JsObserver};
use crate::store::JsStore;
use crate::{Backend, Lab, from_js, js_error};

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
                &backend.device,
                backend.kind.name(),
                &mut store,
                &mut observer,
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

    /// The report of the latest IMP run so far (finished rounds only), or undefined.
    #[wasm_bindgen(js_name = currentReport)]
    pub fn current_report(&self) -> JsValue {
        self.report
            .borrow()
            .as_ref()
            .map_or(JsValue::UNDEFINED, events::to_js)
    }
}

/// What [`Lab::run_single`] hands its experiment.
struct SingleRun {
    backend: Rc<Backend>,
    prepared: Prepared,
    store: JsStore,
    observer: JsObserver,
}

impl Lab {
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
}

/// The results of the finished rounds of `branch`, in order.
fn finished_rounds(finished: &[(String, RoundResult)], branch: &str) -> Vec<RoundResult> {
    finished
        .iter()
        .filter(|(label, _)| label == branch)
        .map(|(_, r)| r.clone())
        .collect()
}
