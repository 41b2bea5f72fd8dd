//! What the training loop and the experiments tell their caller: per-step progress, pauses
//! and cancellation ([`Observer`]), and rounds and trained networks ([`RunObserver`]).

use std::future::Future;
use std::pin::Pin;

use crate::base::mask::Mask;
use crate::base::params::Weights;
use crate::training::curve::EvalPoint;
use crate::training::policy::MaskUpdate;
use crate::training::result::RoundResult;

/// A boxed future returned by [`Observer::pause`].
pub type Pause<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Receives progress and may pause or cancel a run. All methods have no-op defaults.
pub trait Observer {
    fn on_step(&mut self, _iteration: usize, _total: usize) {}
    fn on_eval(&mut self, _point: &EvalPoint) {}
    /// The run resumed from a checkpoint after `iteration` finished iterations.
    fn on_resume(&mut self, _iteration: usize) {}
    /// A mask policy changed the mask (dynamic sparse training).
    fn on_mask_update(&mut self, _update: &MaskUpdate, _mask: &Mask) {}
    fn cancelled(&self) -> bool {
        false
    }
    /// Called between batches; the browser returns a future that yields to the event loop.
    fn pause(&mut self) -> Option<Pause<'_>> {
        None
    }
}

/// An observer that does nothing.
pub struct Silent;

impl Observer for Silent {}

/// Progress of an experiment (rounds of IMP, a PaI or DST run, an analysis's trainings), on top
/// of the per-step [`Observer`].
pub trait RunObserver: Observer {
    fn on_round_start(&mut self, _round: usize, _weights_remaining: f64, _label: &str) {}
    fn on_round(&mut self, _result: &RoundResult, _label: &str) {}
    /// The trained weights of a round of the main lineage, or of a pruned-at-init network
    /// (round 0), already on the host: for callers that use the network afterwards, such as
    /// the browser's digit classifier.
    fn on_trained(&mut self, _round: usize, _mask: &Mask, _weights: &Weights) {}
    /// The experiment's report so far, after each finished part (an IMP branch, a PaI or DST
    /// run of a sweep), so a caller can keep what is finished if a later part fails.
    fn on_report(&mut self, _report: &serde_json::Value) {}
}

impl RunObserver for Silent {}
