//! A trained ticket in three inference formats, each a safetensors file with its provenance:
//!
//! - `dense`: every weight and the mask (the [`Ticket`] format, pruned weights zero);
//! - `compact`: the physically smaller dense network of [`crate::deploy::compact::compact`]
//!   (metadata `format = compact`, `units` = the kept units per layer);
//! - `csr`: the sparse engine's network ([`SparseNet::to_safetensors`], `format = csr`).
//!
//! [`load`] tells them apart by their metadata and gives a network that runs.

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::base::mask::masked_weights;
use crate::base::model::{Classifier, ModelKind, Net};
use crate::base::params::{HostTensor, Weights, load_weights, param_infos};
use crate::base::ticket::{Provenance, Ticket, TicketError};
use crate::deploy::compact::compact;
use crate::deploy::error::InferenceError;
use crate::deploy::sparse::{SparseError, SparseNet};
use crate::pruning::units::StructuredError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    Dense,
    Compact,
    Csr,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [
        ExportFormat::Dense,
        ExportFormat::Compact,
        ExportFormat::Csr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Dense => "dense",
            ExportFormat::Compact => "compact",
            ExportFormat::Csr => "csr",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == text)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error(transparent)]
    Sparse(#[from] SparseError),
    #[error(transparent)]
    Structured(#[from] StructuredError),
    #[error(transparent)]
    Inference(#[from] InferenceError),
    #[error("not a safetensors file: {0}")]
    Safetensors(#[from] safetensors::SafeTensorError),
    #[error("{0}")]
    Format(String),
}

const FORMAT_KEY: &str = "format";
const UNITS_KEY: &str = "units";
const PROVENANCE_KEY: &str = "ticket";

fn model_of(provenance: &Provenance) -> Result<ModelKind, ExportError> {
    ModelKind::parse(&provenance.model)
        .ok_or_else(|| ExportError::Format(format!("unknown model `{}`", provenance.model)))
}

/// `ticket` (trained weights and mask) as `format`'s file bytes.
pub fn export(
    ticket: &Ticket,
    format: ExportFormat,
    device: &Device,
) -> Result<Vec<u8>, ExportError> {
    let weights = masked_weights(&ticket.weights, &ticket.mask);
    match format {
        ExportFormat::Dense => Ok(Ticket {
            weights,
            ..ticket.clone()
        }
        .to_safetensors()),
        ExportFormat::Csr => {
            let (net, _) = ticket.instantiate::<Net>(model_of(&ticket.provenance)?, device)?;
            let stages = net.stages().ok_or(StructuredError::NotSequential)?;
            Ok(SparseNet::new(&stages, &weights, &ticket.mask)?.to_safetensors(&ticket.provenance))
        }
        ExportFormat::Compact => {
            let (net, _) = ticket.instantiate::<Net>(model_of(&ticket.provenance)?, device)?;
            let compacted = compact(&net, &weights, &ticket.mask, device)?;
            let owned: Vec<(&String, &HostTensor, Vec<u8>)> = compacted
                .weights
                .iter()
                .map(|(path, t)| {
                    (
                        path,
                        t,
                        t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    )
                })
                .collect();
            let views = owned.iter().map(|(path, t, bytes)| {
                let view = TensorView::new(Dtype::F32, t.shape.clone(), bytes)
                    .expect("sizes match by construction");
                (path.as_str(), view)
            });
            let metadata = [
                (FORMAT_KEY.to_string(), "compact".to_string()),
                (
                    UNITS_KEY.to_string(),
                    serde_json::to_string(&compacted.units).expect("numbers serialise"),
                ),
                (
                    PROVENANCE_KEY.to_string(),
                    serde_json::to_string(&ticket.provenance).expect("provenance serialises"),
                ),
            ];
            Ok(safetensors::serialize(
                views,
                Some(metadata.into_iter().collect()),
            )?)
        }
    }
}

/// A loaded inference file.
// One per command, never in a collection: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Loaded {
    /// The full network (dense or compact) on a burn device.
    Burn {
        format: ExportFormat,
        net: Net,
        provenance: Provenance,
        parameters: usize,
    },
    Csr {
        net: SparseNet,
        provenance: Provenance,
    },
}

impl Loaded {
    pub fn format(&self) -> ExportFormat {
        match self {
            Loaded::Burn { format, .. } => *format,
            Loaded::Csr { .. } => ExportFormat::Csr,
        }
    }

    pub fn provenance(&self) -> &Provenance {
        match self {
            Loaded::Burn { provenance, .. } | Loaded::Csr { provenance, .. } => provenance,
        }
    }

    /// Weights the forward pass multiplies (a dense layer counts all of its entries).
    pub fn weights_used(&self) -> usize {
        match self {
            Loaded::Burn { parameters, .. } => *parameters,
            Loaded::Csr { net, .. } => net.size().nonzeros,
        }
    }

    /// Logits `[batch][classes]` of standardised `images` `[batch][784]`.
    pub async fn logits(
        &self,
        images: &[f32],
        device: &Device,
    ) -> Result<Vec<f32>, InferenceError> {
        match self {
            Loaded::Csr { net, .. } => Ok(net.forward(images)?),
            Loaded::Burn { net, .. } => Ok(burn_logits(net, images, device).await?),
        }
    }
}

/// Logits `[batch][classes]` of a burn network for standardised `images` `[batch][784]`:
/// uploaded, run, read back (what an application pays per call).
pub async fn burn_logits(
    net: &Net,
    images: &[f32],
    device: &Device,
) -> Result<Vec<f32>, crate::base::error::DeviceError> {
    let batch = images.len() / crate::base::data::IMAGE_SIZE;
    let x = Tensor::<2>::from_data(
        TensorData::new(images.to_vec(), [batch, crate::base::data::IMAGE_SIZE]),
        device,
    );
    let data = net
        .forward(x)
        .into_data_async()
        .await
        .map_err(|e| crate::base::error::DeviceError::new("logits", e))?;
    data.convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| crate::base::error::DeviceError::new("logits", e))
}

/// Reads any of the three formats, checking every tensor against the architecture.
pub fn load(bytes: &[u8], device: &Device) -> Result<Loaded, ExportError> {
    let (_, header) = SafeTensors::read_metadata(bytes)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    match metadata.get(FORMAT_KEY).map(String::as_str) {
        Some("csr") => {
            let (net, provenance) = SparseNet::from_safetensors(bytes)?;
            if net.inputs() != crate::base::data::IMAGE_SIZE {
                return Err(ExportError::Format(format!(
                    "the network reads {} values per example, not a 28×28 image",
                    net.inputs()
                )));
            }
            Ok(Loaded::Csr { net, provenance })
        }
        Some("compact") => {
            let provenance: Provenance = serde_json::from_str(
                metadata
                    .get(PROVENANCE_KEY)
                    .ok_or_else(|| ExportError::Format("no provenance".into()))?,
            )
            .map_err(|e| ExportError::Format(format!("provenance: {e}")))?;
            let units: Vec<usize> = serde_json::from_str(
                metadata
                    .get(UNITS_KEY)
                    .ok_or_else(|| ExportError::Format("no units".into()))?,
            )
            .map_err(|e| ExportError::Format(format!("units: {e}")))?;
            let reference = (model_of(&provenance)?.spec().build)(device);
            // The widths must be the reference's unit layers, each 1..=its width, before a
            // network is built from them.
            let full: Vec<usize> = reference
                .stages()
                .map(|stages| {
                    crate::pruning::units::unit_layers(&stages)
                        .iter()
                        .map(|l| l.units)
                        .collect()
                })
                .unwrap_or_default();
            if units.len() != full.len() || units.iter().zip(&full).any(|(&u, &f)| u == 0 || u > f)
            {
                return Err(ExportError::Format(format!(
                    "units {units:?} do not fit {} (at most {full:?}, at least 1 each)",
                    provenance.model
                )));
            }
            let net = reference
                .with_units(&units, device)
                .ok_or(StructuredError::NotSequential)?;
            let tensors = SafeTensors::deserialize(bytes)?;
            let mut weights = Weights::new();
            for info in param_infos(&net) {
                let view = tensors
                    .tensor(&info.path)
                    .map_err(|_| ExportError::Format(format!("no tensor {}", info.path)))?;
                if view.dtype() != Dtype::F32 || view.shape() != info.shape.as_slice() {
                    return Err(ExportError::Format(format!(
                        "{} is {:?} {:?}, the compact network needs F32 {:?}",
                        info.path,
                        view.dtype(),
                        view.shape(),
                        info.shape
                    )));
                }
                let values = view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                weights.insert(
                    info.path,
                    HostTensor {
                        shape: info.shape,
                        values,
                    },
                );
            }
            let parameters = prunable_count(&net);
            Ok(Loaded::Burn {
                format: ExportFormat::Compact,
                net: load_weights(net, &weights),
                provenance,
                parameters,
            })
        }
        Some(other) => Err(ExportError::Format(format!("unknown format `{other}`"))),
        None => {
            let ticket = Ticket::from_safetensors(bytes)?;
            let (net, mask) = ticket.instantiate::<Net>(model_of(&ticket.provenance)?, device)?;
            let net = load_weights(net, &masked_weights(&ticket.weights, &mask));
            let parameters = mask.total();
            Ok(Loaded::Burn {
                format: ExportFormat::Dense,
                net,
                provenance: ticket.provenance,
                parameters,
            })
        }
    }
}

fn prunable_count(net: &Net) -> usize {
    crate::base::params::prunable_params(net)
        .iter()
        .map(|p| p.shape.iter().product::<usize>())
        .sum()
}

/// Accuracy and speed of a loaded file on a split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InferenceReport {
    pub format: ExportFormat,
    pub examples: usize,
    pub correct: usize,
    pub accuracy: f64,
    pub batch: usize,
    pub seconds: f64,
    pub images_per_second: f64,
}

/// Classifies all of `split` in batches of `batch`, timing the forward passes only.
pub async fn infer(
    loaded: &Loaded,
    split: &crate::base::data::Split,
    batch: usize,
    device: &Device,
) -> Result<InferenceReport, InferenceError> {
    let batch = batch.max(1);
    let (mut correct, mut seconds) = (0, 0.0);
    let indices: Vec<usize> = (0..split.len()).collect();
    for chunk in indices.chunks(batch) {
        let images = split.standardised(chunk);
        let started = web_time::Instant::now();
        let logits = loaded.logits(&images, device).await?;
        seconds += started.elapsed().as_secs_f64();
        let classes = logits.len() / chunk.len().max(1);
        for (row, &i) in logits.chunks_exact(classes.max(1)).zip(chunk) {
            let predicted = row
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .map_or(0, |(c, _)| c);
            correct += usize::from(predicted == usize::from(split.labels[i]));
        }
    }
    let examples = split.len();
    Ok(InferenceReport {
        format: loaded.format(),
        examples,
        correct,
        accuracy: correct as f64 / examples.max(1) as f64,
        batch,
        seconds,
        images_per_second: examples as f64 / seconds.max(1e-12),
    })
}
