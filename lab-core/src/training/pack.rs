//! Many networks of one shape trained as one: the members' parameters stacked `[R, …]`, one
//! batched matmul per layer, so that R small networks fill a machine that one cannot.
//!
//! Packing is an execution choice, never a different experiment: every member keeps its own
//! θ0, mask, optimiser state (the optimiser is elementwise, so a stacked state is R states),
//! data order and evaluation curve, and is evaluated alone, exactly as the same training alone
//! would be. How close a packed member's numbers come to the member trained alone is a
//! property of the backend's batched kernels: `tests/pack.rs` states and guards it.
//!
//! Covered today: fully connected networks ([`Mlp`], LeNet-300-100) with fixed masks trained
//! from iteration 0 with one shared [`TrainConfig`] apart from the data order. Other models,
//! late rewinding, mask policies and checkpoints train one network at a time.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::optim::GradientsParams;
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::{Int, Tensor};
use web_time::Instant;

use crate::base::error::ConfigError;
use crate::base::mask::{Mask, apply_mask, mask_gradients};
use crate::base::model::Mlp;
use crate::training::curve::{EvalPoint, TimeSplit};
use crate::training::observer::Observer;
use crate::training::train::{
    BatchOrder, Prepared, TrainConfig, TrainError, TrainOutcome, batch_tensors, check_point,
    early_stop_of, evaluate, training_device,
};

/// R linear layers of one shape.
#[derive(Module, Debug)]
pub struct PackedLinear {
    /// `[R, d_in, d_out]`: member r's `Linear::weight` at `[r]`.
    pub weight: Param<Tensor<3>>,
    /// `[R, 1, d_out]`.
    pub bias: Param<Tensor<3>>,
}

/// R fully connected networks of one shape; parameter paths are the single network's
/// (`layers.<i>.weight`), so masks and optimiser state address them the same way.
#[derive(Module, Debug)]
pub struct PackedMlp {
    pub layers: Vec<PackedLinear>,
}

/// Why networks cannot be packed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("a pack needs at least one member")]
    Empty,
    #[error("member {member} differs from member 0 in {field}: a pack shares it")]
    Mismatch { member: usize, field: &'static str },
}

impl From<PackError> for ConfigError {
    fn from(e: PackError) -> Self {
        ConfigError(e.to_string())
    }
}

impl PackedMlp {
    /// Stacks `members` (same widths, every layer with a bias) into one pack.
    pub fn stack(members: &[Mlp]) -> Result<Self, PackError> {
        let first = members.first().ok_or(PackError::Empty)?;
        let widths = first.widths();
        for (member, m) in members.iter().enumerate() {
            if m.widths() != widths {
                return Err(PackError::Mismatch {
                    member,
                    field: "the layer widths",
                });
            }
            if m.layers.iter().any(|l| l.bias.is_none()) {
                return Err(PackError::Mismatch {
                    member,
                    field: "the biases (every layer of a pack has one)",
                });
            }
        }
        let layers = (0..first.layers.len())
            .map(|i| {
                let weights = members.iter().map(|m| m.layers[i].weight.val().detach());
                let biases = members.iter().map(|m| {
                    let bias = m.layers[i].bias.as_ref().expect("checked above").val();
                    let [d_out] = bias.dims();
                    bias.detach().reshape([1, d_out])
                });
                PackedLinear {
                    weight: Param::from_tensor(Tensor::stack(weights.collect(), 0).detach()),
                    bias: Param::from_tensor(Tensor::stack(biases.collect(), 0).detach()),
                }
            })
            .collect();
        Ok(Self { layers })
    }

    /// How many networks the pack holds.
    pub fn members(&self) -> usize {
        self.layers.first().map_or(0, |l| l.weight.dims()[0])
    }

    /// Member `r` on its own (a detached copy of its parameters).
    pub fn member(&self, r: usize) -> Mlp {
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                let [_, d_in, d_out] = layer.weight.dims();
                let weight = layer.weight.val().narrow(0, r, 1);
                let bias = layer.bias.val().narrow(0, r, 1);
                Linear {
                    weight: Param::from_tensor(weight.reshape([d_in, d_out]).detach()),
                    bias: Some(Param::from_tensor(bias.reshape([d_out]).detach())),
                }
            })
            .collect();
        Mlp { layers }
    }

    /// Logits `[R, batch, classes]` of member r's batch `images[r]` (`[R, batch, 784]`).
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        let last = self.layers.len().saturating_sub(1);
        self.layers
            .iter()
            .enumerate()
            .fold(images, |x, (i, layer)| {
                let y = x.matmul(layer.weight.val()) + layer.bias.val();
                if i < last { relu(y) } else { y }
            })
    }
}

/// The sum over members of each member's mean cross-entropy: member r's gradient is the
/// gradient of its own loss, as if it trained alone.
pub fn packed_cross_entropy(logits: Tensor<3>, labels: Tensor<2, Int>) -> Tensor<1> {
    let [r, n, _] = logits.dims();
    log_softmax(logits, 2)
        .gather(2, labels.reshape([r, n, 1]))
        .mean_dim(1)
        .sum()
        .neg()
}

/// One network of a pack: its θ0 (on the autodiff device), its mask and its data order.
pub struct PackMember {
    pub model: Mlp,
    pub mask: Option<Mask>,
    /// The seed of this member's data order (what `TrainConfig::data_seed` is alone).
    pub data_seed: u64,
}

/// Trains `members` together for `config.iterations` steps of `config` (whose `data_seed` is
/// replaced by each member's), as [`crate::training::train::train`] trains each alone:
/// masked gradients, the lab's optimiser, evaluation at 0, every `eval_every` and the end,
/// early stop at the minimum validation loss. The time of the pack is split evenly between its
/// members. A member that diverges fails the pack, naming the member.
pub async fn train_packed(
    members: Vec<PackMember>,
    data: &Prepared,
    config: &TrainConfig,
    observer: &mut dyn Observer,
) -> Result<Vec<TrainOutcome<Mlp>>, TrainError> {
    config.validate()?;
    let first = members.first().ok_or(ConfigError::from(PackError::Empty))?;
    let device = training_device(&first.model, data)?;
    let r = members.len();
    let masks: Vec<Mask> = members
        .iter()
        .map(|m| m.mask.clone().unwrap_or_else(|| Mask::dense_for(&m.model)))
        .collect();
    let mask = Mask::stacked(&masks).map_err(ConfigError)?;
    let mut orders: Vec<BatchOrder> = members
        .iter()
        .map(|m| BatchOrder::new(data.train.len(), config.batch_size, m.data_seed))
        .collect();
    let models: Vec<Mlp> = members.into_iter().map(|m| m.model).collect();
    let device_mask = mask.to_device(&device);
    let mut pack = apply_mask(
        PackedMlp::stack(&models).map_err(ConfigError::from)?,
        &device_mask,
    );
    drop(models);
    let mut optimizer = config.optimizer();

    let mut time = TimeSplit::default();
    let mut curves: Vec<Vec<EvalPoint>> = vec![Vec::new(); r];
    time.evaluation += evaluate_members(&pack, data, 0, &mut curves, observer).await?;
    for iteration in 1..=config.iterations {
        if observer.cancelled() {
            return Err(TrainError::Cancelled(iteration - 1));
        }
        let started = Instant::now();
        let (images, labels): (Vec<_>, Vec<_>) = orders
            .iter_mut()
            .map(|order| batch_tensors(&data.train, order.next(), &device))
            .unzip();
        let (images, labels) = (Tensor::stack(images, 0), Tensor::stack(labels, 0));
        let built = Instant::now();
        let loss = packed_cross_entropy(pack.forward(images), labels);
        let mut grads = GradientsParams::from_grads(loss.backward(), &pack);
        mask_gradients(&pack, &mut grads, &device_mask);
        pack = optimizer.step(config.learning_rate_at(iteration - 1), pack, grads);
        time.data += (built - started).as_secs_f64();
        time.training += built.elapsed().as_secs_f64();
        observer.on_step(iteration, config.iterations);
        if iteration.is_multiple_of(config.eval_every) || iteration == config.iterations {
            time.evaluation +=
                evaluate_members(&pack, data, iteration, &mut curves, observer).await?;
        }
        if let Some(pause) = observer.pause() {
            pause.await;
        }
    }
    let share = 1.0 / r as f64;
    let time = TimeSplit {
        data: time.data * share,
        training: time.training * share,
        evaluation: time.evaluation * share,
    };
    Ok(curves
        .into_iter()
        .enumerate()
        .map(|(member, curve)| TrainOutcome {
            model: pack.member(member),
            early_stop: early_stop_of(&curve),
            last: *curve.last().expect("at least one evaluation"),
            curve,
            snapshot: None,
            time,
            final_mask: None,
            explored: None,
            mask_updates: Vec::new(),
            resumed_wall_seconds: 0.0,
        })
        .collect())
}

/// Evaluates every member alone (as its training alone would) and appends to its curve;
/// returns the seconds it took.
async fn evaluate_members(
    pack: &PackedMlp,
    data: &Prepared,
    iteration: usize,
    curves: &mut [Vec<EvalPoint>],
    observer: &mut dyn Observer,
) -> Result<f64, TrainError> {
    let started = Instant::now();
    for (member, curve) in curves.iter_mut().enumerate() {
        let point = check_point(evaluate(&pack.member(member), data, iteration).await?)
            .map_err(|e| e.in_member(member))?;
        observer.on_eval(&point);
        curve.push(point);
    }
    Ok(started.elapsed().as_secs_f64())
}
