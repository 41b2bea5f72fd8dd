//! Argument types shared by the commands: clap value enums over lab-core's own lists (a model,
//! score or backend added there is accepted here with no edit), and the `--rewind` parser.
//!
//! lab-core does not depend on clap, so each value enum is a newtype over the lab-core enum:
//! its values are the enum's `ALL`, named by its `name()`, with the older spellings the CLI
//! has always accepted as hidden aliases.

use anyhow::Result;
use clap::ValueEnum;
use clap::builder::PossibleValue;
use lab_core::base::backend::BackendKind;
use lab_core::base::data::DatasetKind;
use lab_core::base::model::ModelKind;
use lab_core::burn::tensor::Device;
use lab_core::methods::dst::policy::{DropSchedule, GrowInit};
use lab_core::methods::dst::{Distribution, Method};
use lab_core::methods::imp::{Control, Rewind};
use lab_core::methods::pai::Score;
use lab_core::training::optim::OptimizerKind;
use lab_core::training::sparse::Kernel;
use lab_core::training::train::TrainConfig;

/// `$arg` wraps `$kind` as a clap value enum: the values are `$kind::ALL`, each named by
/// `$name`, and `$variant => $alias` adds a hidden alias.
macro_rules! value_enum {
    (
        $(#[$meta:meta])*
        $arg:ident($kind:ty), name: $name:expr,
        aliases: [$($variant:expr => $alias:literal),* $(,)?]
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $arg(pub $kind);

        impl ValueEnum for $arg {
            fn value_variants<'a>() -> &'a [Self] {
                const VARIANTS: [$arg; <$kind>::ALL.len()] = {
                    let mut variants = [$arg(<$kind>::ALL[0]); <$kind>::ALL.len()];
                    let mut i = 1;
                    while i < variants.len() {
                        variants[i] = $arg(<$kind>::ALL[i]);
                        i += 1;
                    }
                    variants
                };
                &VARIANTS
            }

            fn to_possible_value(&self) -> Option<PossibleValue> {
                const ALIASES: &[($kind, &str)] = &[$(($variant, $alias)),*];
                let aliases = ALIASES
                    .iter()
                    .filter(|(kind, _)| *kind == self.0)
                    .map(|&(_, alias)| alias);
                Some(PossibleValue::new(($name)(self.0)).aliases(aliases))
            }
        }

        /// The value's name, so a lab-core default can be a clap default (`default_value_t`).
        impl std::fmt::Display for $arg {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(($name)(self.0))
            }
        }
    };
}

value_enum! {
    /// `--model`: lab-core's [`ModelKind::ALL`].
    ModelArg(ModelKind), name: ModelKind::name, aliases: []
}

value_enum! {
    /// `--dataset`: mnist or fashion-mnist (also `fashion`).
    DatasetArg(DatasetKind), name: DatasetKind::name,
    aliases: [DatasetKind::FashionMnist => "fashion"]
}

value_enum! {
    /// `--backend`: flex, ndarray (also `cpu`) or wgpu (also `gpu`).
    BackendArg(BackendKind), name: BackendKind::name,
    aliases: [BackendKind::Ndarray => "cpu", BackendKind::Wgpu => "gpu"]
}

value_enum! {
    /// `--score`: lab-core's [`Score::ALL`] (`mag` also `magnitude`, `rand` also `random`).
    ScoreArg(Score), name: Score::name,
    aliases: [Score::Magnitude => "magnitude", Score::Random => "random"]
}

value_enum! {
    /// `--control`: reinit or random-prune (also `random`).
    ControlArg(Control), name: Control::name,
    aliases: [Control::RandomPrune => "random"]
}

value_enum! {
    /// `--method`: lab-core's [`Method::ALL`] (static, set, rigl, gmp).
    MethodArg(Method), name: Method::name, aliases: []
}

value_enum! {
    /// `--distribution`: uniform or erk.
    DistributionArg(Distribution), name: Distribution::name, aliases: []
}

value_enum! {
    /// `--drop-schedule`: cosine or constant.
    DropScheduleArg(DropSchedule), name: DropSchedule::name, aliases: []
}

value_enum! {
    /// `--grow-init`: zero or initial (θ0).
    GrowInitArg(GrowInit), name: GrowInit::name, aliases: []
}

value_enum! {
    /// `--optimizer`: adam or sgd.
    OptimizerArg(OptimizerKind), name: optimizer_name, aliases: []
}

value_enum! {
    /// `--kernel`: dense, sparse or auto (lab-core's [`Kernel::ALL`]).
    KernelArg(Kernel), name: Kernel::name, aliases: []
}

/// The name of an optimizer on the command line (and in records: its serde name).
fn optimizer_name(kind: OptimizerKind) -> &'static str {
    match kind {
        OptimizerKind::Adam => "adam",
        OptimizerKind::Sgd => "sgd",
    }
}

impl BackendArg {
    /// The backend's device (without autodiff), or why it is not compiled in.
    pub fn device(self) -> Result<Device> {
        // The error is a String, not a std::error::Error.
        Ok(self.0.device()?)
    }
}

/// `--rewind`: `init`, `fine-tune` (also `finetune`, `none`), an iteration K, or a percentage
/// of training like `2%`.
pub fn parse_rewind(text: &str) -> Result<Rewind, String> {
    match text {
        "init" => Ok(Rewind::Init),
        "fine-tune" | "finetune" | "none" => Ok(Rewind::FineTune),
        _ if text.ends_with('%') => text
            .trim_end_matches('%')
            .parse::<f64>()
            .map(|percent| Rewind::Fraction(percent / 100.0))
            .map_err(|e| format!("{e} in the percentage")),
        _ => text
            .parse()
            .map(Rewind::Iteration)
            .map_err(|_| "use init, fine-tune, an iteration K or a percentage like 2%".into()),
    }
}

/// Where and how a command runs: backend, data, verbosity (`#[command(flatten)]`).
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    /// flex (CPU, default), ndarray (CPU) or wgpu (GPU).
    #[arg(long, default_value = "flex")]
    pub backend: BackendArg,
    /// Directory with the four IDX files (.gz or raw). Default: LTH_DATA, data/, ../shared/, cache.
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
    /// Download the data set into the cache if no local copy is found.
    #[arg(long)]
    pub download: bool,
    /// Print nothing but errors and the final summary.
    #[arg(long)]
    pub quiet: bool,
}

/// The network, data and training settings the analyses share (`#[command(flatten)]`),
/// with lab-core's defaults.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainingArgs {
    #[arg(long, default_value_t = ModelArg(ModelKind::Lenet300))]
    pub model: ModelArg,
    #[arg(long, default_value_t = DatasetArg(DatasetKind::Mnist))]
    pub dataset: DatasetArg,
    /// Training iterations of each run.
    #[arg(long, default_value_t = 2000)]
    pub iterations: usize,
    #[arg(long, default_value_t = OptimizerArg(TrainConfig::new().optimizer))]
    pub optimizer: OptimizerArg,
    #[arg(long, default_value_t = TrainConfig::new().learning_rate)]
    pub lr: f64,
    #[arg(long, default_value_t = TrainConfig::new().batch_size)]
    pub batch_size: usize,
    /// L2 penalty λ (coupled weight decay; 0 = none).
    #[arg(long, default_value_t = TrainConfig::new().weight_decay)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = TrainConfig::new().eval_every)]
    pub eval_every: usize,
    /// Replicate seed: θ0 and the data order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on the first N training examples only.
    #[arg(long)]
    pub train_subset: Option<usize>,
    /// Evaluate on a fixed stratified N of the validation and test examples only.
    #[arg(long)]
    pub eval_subset: Option<usize>,
    #[command(flatten)]
    pub run: RunArgs,
}

impl TrainingArgs {
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig::new()
            .with_optimizer(self.optimizer.0)
            .with_learning_rate(self.lr)
            .with_batch_size(self.batch_size)
            .with_iterations(self.iterations)
            .with_weight_decay(self.weight_decay)
            .with_eval_every(self.eval_every)
    }
}
