//! The page's pruning-at-initialisation sweep: one PaI experiment per density of IMP's
//! rounds, reported in IMP's shape so the two compare on one chart and table.

use js_sys::{Function, Promise};
use lab_core::base::model::{ModelKind, Net};
use lab_core::base::naming::with_defaults;
use lab_core::methods::imp::{ImpConfig, ImpReport};
use lab_core::methods::pai::{PaiConfig, PaiExperiment, Score, run_pai};
use lab_core::report::reproduce;
use lab_core::training::experiment::Session;
use lab_core::training::observer::RunObserver;
use lab_core::training::train::{Prepared, TrainConfig};
use serde_json::{Value, json};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::events::{self, Event, JsObserver};
use crate::{Lab, from_js, js_error};

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

#[wasm_bindgen]
impl Lab {
    /// Pruning at initialisation at the densities of IMP's rounds (lab-core's counting rule
    /// for the model's default pruning rates, round k < `rounds`), one experiment each, so
    /// the page's IMP chart and table compare: `{model, score, rounds, train, eval_subset}`.
    /// Emits a `round` event per density (a collapsed network at chance level) and resolves
    /// to `{report, results}`: the IMP-shaped report and `lth pai`'s list of results.
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
        // The densities an IMP run of this model reaches, so its rounds and these line up.
        let imp = ImpConfig::new()
            .with_model(sweep.model)
            .with_rounds(sweep.rounds);
        let densities = reproduce::densities::<Net>(&imp, &backend.device);
        let mut store = self.store.clone();
        let mut observer = JsObserver::new(on_event, self.cancel.clone(), self.trained.clone());
        observer.model = sweep.model;
        Ok(future_to_promise(async move {
            let _busy = busy;
            let data = data.limited(None, sweep.eval_subset);
            let prepared = Prepared::new(&data, &backend.device);
            let mut results = Vec::new();
            let mut rounds = Vec::new();
            for (round, density) in densities.into_iter().enumerate() {
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
                    &mut Session::new(
                        backend.device.clone(),
                        backend.kind.name(),
                        &mut store,
                        &mut observer,
                    ),
                )
                .await
                .map_err(js_error)?;
                // The page keeps each result as it arrives: a cancelled sweep still saves
                // `lth pai`'s format for what finished.
                observer.emit(Event::PaiResult { result: &result });
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
}
