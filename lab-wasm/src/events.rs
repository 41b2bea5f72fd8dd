//! Progress events to JavaScript, cancellation, and yielding to the browser's event loop.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{Function, Promise};
use lab_core::base::mask::{InputConnections, Mask};
use lab_core::base::model::ModelKind;
use lab_core::base::params::Weights;
use lab_core::methods::pai::PaiResult;
use lab_core::training::curve::EvalPoint;
use lab_core::training::observer::{Observer, Pause, RunObserver};
use lab_core::training::policy::MaskUpdate;
use lab_core::training::result::RoundResult;
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_time::{Duration, Instant};

#[wasm_bindgen]
extern "C" {
    // The global setTimeout of windows and workers alike.
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, milliseconds: i32);
}

/// Resolves on the next macrotask, letting the browser paint and handle input.
pub async fn next_tick() {
    let promise = Promise::new(&mut |resolve, _| set_timeout(&resolve, 0));
    // A timer promise cannot reject.
    let _ = JsFuture::from(promise).await;
}

/// Converts a serialisable value to a plain JavaScript object.
pub fn to_js(value: &Value) -> JsValue {
    js_sys::JSON::parse(&value.to_string()).unwrap_or(JsValue::NULL)
}

/// The last trained network of a run, kept for classifying drawn digits.
#[derive(Clone)]
pub struct Trained {
    pub round: usize,
    pub model: ModelKind,
    pub mask: Mask,
    pub weights: Weights,
}

/// Streams events to a JS callback. Step events are throttled; the loop yields to the event
/// loop once a frame's worth of work (about 16 ms) has run, not every batch, because each
/// yield costs a few milliseconds of timer clamping.
pub struct JsObserver {
    callback: Function,
    cancel: Rc<Cell<bool>>,
    last_yield: Instant,
    last_step_event: Option<Instant>,
    pub trained: Rc<RefCell<Option<Trained>>>,
    pub finished: Vec<(String, RoundResult)>,
    /// Label prefixed to events (the PaI score, say).
    pub context: Value,
    /// The architecture being trained, kept with the trained network.
    pub model: ModelKind,
    /// Where an IMP run keeps its report after each finished branch (`currentReport`).
    pub report: Option<Rc<RefCell<Option<Value>>>>,
}

/// Every progress event the page receives, as `{type: "<kebab-case name>", …fields,
/// context?}`: one enum, so a new event is added here and nowhere else in Rust.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event<'a> {
    Step {
        iteration: usize,
        total: usize,
    },
    Eval {
        point: &'a EvalPoint,
    },
    MaskUpdate {
        update: &'a MaskUpdate,
        /// The first layer's connections per input pixel, for the page's live picture.
        connections: Option<InputConnections>,
    },
    RoundStart {
        round: usize,
        weights_remaining: f64,
        branch: &'a str,
    },
    Round {
        branch: &'a str,
        result: &'a RoundResult,
    },
    PaiResult {
        result: &'a PaiResult,
    },
}

/// The event names, for the page to check its handlers against (`Lab.eventTypes`).
pub const EVENT_TYPES: [&str; 6] = [
    "step",
    "eval",
    "mask-update",
    "round-start",
    "round",
    "pai-result",
];

const FRAME: Duration = Duration::from_millis(16);
const STEP_EVENT_EVERY: Duration = Duration::from_millis(100);

impl JsObserver {
    pub fn new(
        callback: Function,
        cancel: Rc<Cell<bool>>,
        trained: Rc<RefCell<Option<Trained>>>,
    ) -> Self {
        Self {
            callback,
            cancel,
            last_yield: Instant::now(),
            last_step_event: None,
            trained,
            finished: Vec::new(),
            context: Value::Null,
            model: ModelKind::Lenet300,
            report: None,
        }
    }

    pub fn emit(&self, event: Event) {
        let mut payload = serde_json::to_value(&event).unwrap_or_default();
        if let (Value::Object(map), false) = (&mut payload, self.context.is_null()) {
            map.insert("context".into(), self.context.clone());
        }
        // An exception in the page's handler must not abort the experiment.
        let _ = self.callback.call1(&JsValue::NULL, &to_js(&payload));
    }
}

impl Observer for JsObserver {
    fn on_step(&mut self, iteration: usize, total: usize) {
        let due = self
            .last_step_event
            .is_none_or(|at| at.elapsed() >= STEP_EVENT_EVERY);
        if due || iteration == total {
            self.last_step_event = Some(Instant::now());
            self.emit(Event::Step { iteration, total });
        }
    }

    fn on_eval(&mut self, point: &EvalPoint) {
        self.emit(Event::Eval { point });
    }

    fn on_mask_update(&mut self, update: &MaskUpdate, mask: &Mask) {
        self.emit(Event::MaskUpdate {
            update,
            connections: mask.input_connections(),
        });
    }

    fn cancelled(&self) -> bool {
        self.cancel.get()
    }

    fn pause(&mut self) -> Option<Pause<'_>> {
        if self.last_yield.elapsed() < FRAME {
            return None;
        }
        Some(Box::pin(async move {
            next_tick().await;
            self.last_yield = Instant::now();
        }))
    }
}

impl RunObserver for JsObserver {
    fn on_round_start(&mut self, round: usize, weights_remaining: f64, label: &str) {
        self.emit(Event::RoundStart {
            round,
            weights_remaining,
            branch: label,
        });
    }

    fn on_round(&mut self, result: &RoundResult, label: &str) {
        self.finished.push((label.to_string(), result.clone()));
        self.emit(Event::Round {
            branch: label,
            result,
        });
    }

    fn on_trained(&mut self, round: usize, mask: &Mask, weights: &Weights) {
        *self.trained.borrow_mut() = Some(Trained {
            round,
            model: self.model,
            mask: mask.clone(),
            weights: weights.clone(),
        });
    }

    fn on_report(&mut self, report: &Value) {
        if let Some(slot) = &self.report {
            *slot.borrow_mut() = Some(report.clone());
        }
    }
}
