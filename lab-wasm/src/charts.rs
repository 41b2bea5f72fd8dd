//! The page's pictures: SVG charts of reports and sparse-training runs, weight histograms,
//! the overlap of the page's tickets, and the first layer's surviving connections.

use lab_core::analyses::{histogram, overlap};
use lab_core::base::chart;
use lab_core::base::keys::{DstKeys, PaiKeys, RunKeys};
use lab_core::base::mask::Mask;
use lab_core::base::store::RunStore;
use lab_core::base::ticket::read_ticket;
use lab_core::methods::imp::ImpReport;
use lab_core::report::charts;
use lab_core::training::curve::EvalPoint;
use lab_core::training::policy::MaskUpdate;
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::store::JsStore;
use crate::{Lab, events, from_js, js_error};

#[wasm_bindgen]
impl Lab {
    /// The SVG of a sparse-training run so far: test accuracy and Rs against the iteration,
    /// from `{curve, initial_density, updates}` (a `DstResult`'s fields or the live events).
    #[wasm_bindgen(js_name = dstChartSvg)]
    pub fn dst_chart_svg(progress: JsValue) -> Result<String, JsValue> {
        #[derive(serde::Deserialize)]
        struct Progress {
            curve: Vec<EvalPoint>,
            initial_density: f64,
            updates: Vec<MaskUpdate>,
        }
        let progress: Progress = from_js(&progress)?;
        Ok(chart::to_svg(&lab_core::methods::dst::progress_chart(
            &progress.curve,
            progress.initial_density,
            &progress.updates,
        )))
    }

    /// An SVG chart of a report: "accuracy" (test accuracy vs % weights remaining, the LTH
    /// figure), "early-stop" (early-stop iteration vs % remaining) or "curves" (test
    /// accuracy during training, one line per round).
    #[wasm_bindgen(js_name = chartSvg)]
    pub fn chart_svg(report: JsValue, which: &str) -> Result<String, JsValue> {
        let report: ImpReport = from_js(&report)?;
        let groups = report.groups();
        let chart = match which {
            "accuracy" => charts::accuracy_vs_remaining(&groups),
            "early-stop" => charts::early_stop_vs_remaining(&groups),
            "curves" => charts::training_curves(&report.curves()),
            other => return Err(js_error(format!("unknown chart {other:?}"))),
        };
        Ok(chart::to_svg(&chart))
    }

    /// The weight histograms of round `round` of this page's IMP run `run` (trained before
    /// pruning, kept by pruning, after retraining, rewound), for its layer `layer`: an SVG
    /// chart, or undefined while rounds `round` and `round + 1` are not both finished.
    #[wasm_bindgen(js_name = histogramSvg)]
    pub fn histogram_svg(&self, run: &str, round: usize, layer: usize) -> Option<String> {
        let histograms = histogram::imp_round_histograms(&self.store, run, round, 60).ok()?;
        let layer = histograms.layers.get(layer)?;
        Some(chart::to_svg(&histogram::layer_chart(layer, round)))
    }

    /// The Jaccard overlap of the sparsest ticket of each run this page made (IMP, PaI and
    /// sparse-training runs of the model of the latest one): an SVG matrix, or undefined with
    /// fewer than two such runs.
    #[wasm_bindgen(js_name = overlapSvg)]
    pub fn overlap_svg(&self) -> Option<String> {
        // Only masks of one model compare: the model of the run that wrote last.
        let model = self.trained.borrow().as_ref().map(|t| t.mask.clone())?;
        let same_model = |m: &Mask| {
            m.layers.len() == model.layers.len()
                && m.layers
                    .iter()
                    .zip(&model.layers)
                    .all(|(a, b)| a.name == b.name && a.shape == b.shape)
        };
        let masks: Vec<(String, Mask)> = self
            .store
            .runs()
            .into_iter()
            .filter_map(|run| {
                let (key, of_imp) = sparsest_ticket(&self.store, &run)?;
                let ticket = read_ticket(&self.store, &key).ok().flatten()?;
                let label = if of_imp {
                    format!("{run} r{:02}", ticket.provenance.round)
                } else {
                    run
                };
                Some((label, ticket.mask))
            })
            .filter(|(_, mask)| same_model(mask))
            .collect();
        if masks.len() < 2 {
            return None;
        }
        overlap::overlap_matrix(&masks).ok().map(|m| m.to_svg())
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
}

/// The key of `run`'s sparsest ticket, and whether it is an IMP round's (labelled with its
/// round): IMP's last round with a ticket (the main lineage, not a control), a PaI run's
/// ticket, or a sparse-training run's trained network.
fn sparsest_ticket(store: &JsStore, run: &str) -> Option<(String, bool)> {
    let imp = RunKeys { run: run.into() };
    // IMP writes a ticket for every round from 0 on, so the first missing one ends them.
    let last_round = (0..)
        .map(|round| imp.ticket(round))
        .take_while(|key| store.exists(key))
        .last();
    if let Some(key) = last_round {
        return Some((key, true));
    }
    let pai = PaiKeys { run: run.into() }.ticket();
    let dst = DstKeys { run: run.into() }.trained();
    [pai, dst]
        .into_iter()
        .find(|key| store.exists(key))
        .map(|key| (key, false))
}
