//! Mask policies: what the training loop asks, at scheduled iterations, for the next mask.
//! A fixed mask (IMP, PaI, static sparse), SET, RigL and GMP are all policies of one loop
//! ([`crate::training::train::train_scheduled`]).
//!
//! Choices, against the reference code (google-research/rigl, the ITOP code's sparselearning,
//! TensorFlow's model_pruning):
//! - An update iteration trains its batch and then changes the mask (ITOP's order); RigL's TF
//!   code spends the update iteration on the mask alone. Updates fall at ΔT, 2ΔT, … strictly
//!   before the end (RigL's paper, t < T_end; its code also updates at step 0).
//! - α decays on RigL's cosine to 0 at the end; ITOP's schedule keeps a floor of 0.005 and
//!   never stops. Drops per layer are ⌊α · active⌋ (RigL; ITOP rounds up), by |w|, ties by
//!   position (RigL adds tiny noise). Growth is among every weight the drop left inactive,
//!   the just-dropped included; one regrown in the same update keeps its value and moments
//!   (RigL's `reinit_when_same = False`). SET grows an exact count uniformly at random (ITOP
//!   draws Bernoulli), RigL the largest |dense gradient| of the update step's batch.
//! - `explore_first` is ITOP's growth of never-active weights first; the lab also offers it
//!   to RigL (an extension: no reference does that).
//! - GMP is exact and only prunes: each update keeps the largest |w| among the active at
//!   Zhu & Gupta's cubic density, with a last update at the end iteration itself, so it hits
//!   the target even when the schedule is not a multiple of ΔT (TensorFlow's histogram
//!   threshold over all weights may revive pruned ones and miss the end).
//! - Grown weights start at 0 with zero moments while Adam's bias correction keeps the
//!   run's step count (as TensorFlow's and PyTorch's Adam with reset slots do).

use serde::{Deserialize, Serialize};

use crate::base::error::ConfigError;
use crate::base::mask::{LayerMask, Mask};
use crate::base::params::Weights;
use crate::base::rng::Rng;
use crate::pruning::prune::{LayerRate, prune_lowest, values_of};
use crate::training::policy::{MaskPolicy, UpdateContext};

use super::density::{Distribution, layer_count};

/// The sparse-training methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// The mask never changes: the control of dynamic sparse training.
    Static,
    /// Sparse Evolutionary Training (Mocanu et al. 2018): drop the smallest magnitudes, grow
    /// at random.
    Set,
    /// Rigged Lottery (Evci et al. 2020): drop the smallest magnitudes, grow the largest
    /// dense gradients.
    #[default]
    Rigl,
    /// Gradual magnitude pruning (Zhu & Gupta 2017): dense start, cubic schedule to the
    /// target density, no regrowth.
    Gmp,
}

impl Method {
    pub const ALL: [Method; 4] = [Method::Static, Method::Set, Method::Rigl, Method::Gmp];

    pub fn name(self) -> &'static str {
        match self {
            Method::Static => "static",
            Method::Set => "set",
            Method::Rigl => "rigl",
            Method::Gmp => "gmp",
        }
    }
}

/// How the drop fraction α changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum DropSchedule {
    /// α_t = α/2 · (1 + cos(π t / t_end)) (RigL; ITOP uses it for SET too).
    #[default]
    Cosine,
    /// α every update (SET's original ζ).
    Constant,
}

impl DropSchedule {
    pub const ALL: [DropSchedule; 2] = [DropSchedule::Cosine, DropSchedule::Constant];

    pub fn name(self) -> &'static str {
        match self {
            DropSchedule::Cosine => "cosine",
            DropSchedule::Constant => "constant",
        }
    }
}

/// What a grown connection starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum GrowInit {
    /// 0 (RigL's and ITOP's default).
    #[default]
    Zero,
    /// Its value in θ0 (RigL's `initial_value`).
    Initial,
}

impl GrowInit {
    pub const ALL: [GrowInit; 2] = [GrowInit::Zero, GrowInit::Initial];

    pub fn name(self) -> &'static str {
        match self {
            GrowInit::Zero => "zero",
            GrowInit::Initial => "initial",
        }
    }
}

/// A sparse-training method and its hyper-parameters (defaults: RigL's paper: ERK, ΔT = 100,
/// α = 0.3 with cosine decay, updates end at 75% of training).
#[derive(burn::config::Config, Debug, PartialEq)]
pub struct DstConfig {
    #[config(default = "Method::Rigl")]
    pub method: Method,
    /// Fraction of the prunable weights active (GMP: at the end of its schedule).
    #[config(default = 0.1)]
    pub density: f64,
    #[config(default = "Distribution::Erk")]
    pub distribution: Distribution,
    /// ΔT: iterations between mask updates.
    #[config(default = 100)]
    pub update_every: usize,
    /// α: fraction of each layer's active weights dropped (and regrown) at an update.
    #[config(default = 0.3)]
    pub drop_fraction: f64,
    #[config(default = "DropSchedule::Cosine")]
    pub drop_schedule: DropSchedule,
    /// SET/RigL stop updating, and GMP reaches its target, at this fraction of training.
    #[config(default = 0.75)]
    pub end_fraction: f64,
    /// GMP starts pruning at this fraction of training.
    #[config(default = 0.1)]
    pub gmp_start_fraction: f64,
    /// ITOP's exploration: grow weights that were never active before any others.
    #[config(default = false)]
    pub explore_first: bool,
    /// Densities of some layers by parameter-path glob (`layers.0.*` = 1 keeps the first
    /// layer dense); the others share the rest of the budget by `distribution`.
    #[config(default = "Vec::new()")]
    pub layer_densities: Vec<LayerRate>,
    #[config(default = "GrowInit::Zero")]
    pub grow_init: GrowInit,
}

impl DstConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.density > 0.0 && self.density <= 1.0) {
            return Err(ConfigError(format!(
                "density must be in (0, 1], got {}",
                self.density
            )));
        }
        if self.update_every == 0 {
            return Err(ConfigError::new("update_every (ΔT) must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.drop_fraction) {
            return Err(ConfigError(format!(
                "drop_fraction must be in [0, 1], got {}",
                self.drop_fraction
            )));
        }
        if !(0.0..=1.0).contains(&self.end_fraction)
            || !(0.0..=1.0).contains(&self.gmp_start_fraction)
        {
            return Err(ConfigError::new(
                "end_fraction and gmp_start_fraction must be in [0, 1]",
            ));
        }
        if self.method == Method::Gmp && self.gmp_start_fraction > self.end_fraction {
            return Err(ConfigError::new(
                "GMP must start (gmp_start_fraction) before it ends (end_fraction)",
            ));
        }
        Ok(())
    }

    /// Each layer's (final) density for a model whose layers `mask` lists.
    pub fn densities(&self, mask: &Mask) -> Result<Vec<f64>, ConfigError> {
        super::density::layer_densities_with(
            mask,
            self.density,
            self.distribution,
            &self.layer_densities,
        )
    }

    /// The last iteration that may update the mask (SET/RigL: before it; GMP: at it).
    pub fn end_iteration(&self, total: usize) -> usize {
        (self.end_fraction * total as f64).round() as usize
    }

    /// GMP's last pruning iteration: at least 1, so a schedule that ends at 0 still prunes
    /// (after the first step) instead of staying dense.
    fn gmp_end_iteration(&self, total: usize) -> usize {
        self.end_iteration(total).max(1)
    }

    fn gmp_start_iteration(&self, total: usize) -> usize {
        (self.gmp_start_fraction * total as f64).round() as usize
    }

    /// α at `iteration` (SET and RigL).
    pub fn drop_fraction_at(&self, iteration: usize, total: usize) -> f64 {
        let end = self.end_iteration(total).max(1) as f64;
        match self.drop_schedule {
            DropSchedule::Constant => self.drop_fraction,
            DropSchedule::Cosine => {
                self.drop_fraction / 2.0
                    * (1.0 + (std::f64::consts::PI * iteration as f64 / end).cos())
            }
        }
    }

    /// GMP's density of a layer whose final density is `target` at `iteration`: Zhu &
    /// Gupta's cubic d_t = d_f + (1 − d_f)(1 − p)³, p the share of the schedule done.
    pub fn gmp_density_at(&self, target: f64, iteration: usize, total: usize) -> f64 {
        let (start, end) = (
            self.gmp_start_iteration(total),
            self.gmp_end_iteration(total),
        );
        let done = if iteration >= end {
            1.0
        } else if iteration <= start {
            0.0
        } else {
            (iteration - start) as f64 / (end - start) as f64
        };
        target + (1.0 - target) * (1.0 - done).powi(3)
    }
}

/// A [`DstConfig`] at work on one run: the method, each layer's final density and the seed
/// of its random growth.
pub struct DstPolicy {
    pub config: DstConfig,
    /// Each masked layer's (final) density, in mask order.
    pub densities: Vec<f64>,
    pub seed: u64,
    /// θ0 on the host, for `GrowInit::Initial`.
    pub initial_weights: Option<Weights>,
}

/// Rank for "largest first", a NaN last.
fn descending(score: f32) -> f32 {
    if score.is_nan() {
        f32::NEG_INFINITY
    } else {
        score
    }
}

/// Deactivates the `count` smallest-|w| active weights of `layer` (IMP's magnitude rule:
/// ties by position, a NaN first); returns how many.
fn drop_smallest(layer: &mut LayerMask, weights: &[f32], count: usize) -> usize {
    let magnitudes: Vec<f32> = weights.iter().map(|w| w.abs()).collect();
    prune_lowest(layer, &magnitudes, count)
}

/// Activates `count` inactive weights of `layer`, the candidates ordered by `key` (smaller
/// first; ties by index); with `explored`, never-explored weights come before the others.
fn grow(
    layer: &mut LayerMask,
    count: usize,
    explored: Option<&LayerMask>,
    key: impl Fn(usize) -> f32,
) -> usize {
    let mut candidates: Vec<(bool, f32, usize)> = (0..layer.keep.len())
        .filter(|&i| !layer.keep[i])
        .map(|i| (explored.is_some_and(|e| e.keep[i]), key(i), i))
        .collect();
    let count = count.min(candidates.len());
    if count == 0 {
        return 0;
    }
    candidates.select_nth_unstable_by(count - 1, |a, b| {
        a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2))
    });
    for &(_, _, i) in &candidates[..count] {
        layer.keep[i] = true;
    }
    count
}

impl MaskPolicy for DstPolicy {
    fn updates_at(&self, iteration: usize, total: usize) -> bool {
        let config = &self.config;
        match config.method {
            Method::Static => false,
            Method::Set | Method::Rigl => {
                iteration.is_multiple_of(config.update_every)
                    && iteration < config.end_iteration(total)
                    && iteration < total
            }
            Method::Gmp => {
                let (start, end) = (
                    config.gmp_start_iteration(total),
                    config.gmp_end_iteration(total),
                );
                (iteration >= start
                    && iteration <= end
                    && (iteration - start).is_multiple_of(config.update_every))
                    || iteration == end
            }
        }
    }

    fn needs_gradient(&self) -> bool {
        self.config.method == Method::Rigl
    }

    fn grow_values(&self) -> Option<&Weights> {
        match self.config.grow_init {
            GrowInit::Zero => None,
            GrowInit::Initial => self.initial_weights.as_ref(),
        }
    }

    fn update(&self, context: &UpdateContext) -> Mask {
        let config = &self.config;
        let mut next = context.mask.clone();
        for (l, layer) in next.layers.iter_mut().enumerate() {
            let weights = values_of(context.weights, layer);
            let explored = config.explore_first.then(|| &context.explored.layers[l]);
            match config.method {
                Method::Static => {}
                Method::Gmp => {
                    let density =
                        config.gmp_density_at(self.densities[l], context.iteration, context.total);
                    let keep = layer_count(layer.total(), density);
                    let excess = layer.remaining().saturating_sub(keep);
                    drop_smallest(layer, weights, excess);
                }
                Method::Set | Method::Rigl => {
                    let alpha = config.drop_fraction_at(context.iteration, context.total);
                    // RigL truncates (ITOP rounds up); the epsilon keeps 0.29 · 100 at 29.
                    let count = (alpha * layer.remaining() as f64 + 1e-9).floor() as usize;
                    let dropped = drop_smallest(layer, weights, count);
                    if config.method == Method::Set {
                        let mut rng = Rng::for_purpose(
                            self.seed,
                            &format!("dst/grow/{}/{}", context.iteration, layer.name),
                        );
                        let draws: Vec<f32> =
                            (0..layer.total()).map(|_| rng.uniform() as f32).collect();
                        grow(layer, dropped, explored, |i| draws[i]);
                    } else {
                        let gradient = context
                            .gradient
                            .map(|g| values_of(g, layer))
                            .expect("RigL asks for the dense gradient");
                        grow(layer, dropped, explored, |i| -descending(gradient[i].abs()));
                    }
                }
            }
        }
        next
    }
}
