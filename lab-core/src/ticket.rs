//! Tickets: a mask, the weights it is applied to (θ0 or θk), and where they came from,
//! stored as one safetensors file (readable by PyTorch's `safetensors.torch.load_file`).
//!
//! Tensors: `<path>` (F32) for every float parameter, `mask/<path>` (U8, 0 or 1) for every
//! masked one; `__metadata__` holds `"ticket"`: the provenance JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::mask::{LayerMask, Mask};
use crate::params::{HostTensor, Weights};

/// Where a ticket came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub model: String,
    pub dataset: String,
    /// IMP round that produced the mask (0 = dense).
    pub round: usize,
    /// `"init"` for θ0 or `"iteration-<k>"` for θk.
    pub rewind: String,
    pub seed: u64,
    /// Hash-named run the ticket came from.
    pub run: String,
    pub weights_remaining: f64,
    /// Where the weights come from when not the run's own θ0/θk: the random stream of a
    /// control (`"control/reinit/round-03"`, under `seed`) or the mask's (random pruning).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stream: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Ticket {
    pub mask: Mask,
    /// The weights training starts from (pruned ones are zero).
    pub weights: Weights,
    pub provenance: Provenance,
}

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("not a safetensors file: {0}")]
    Format(String),
    #[error("ticket has no {0}")]
    Missing(String),
}

fn header_entry(dtype: &str, shape: &[usize], begin: usize, end: usize) -> Value {
    json!({ "dtype": dtype, "shape": shape, "data_offsets": [begin, end] })
}

impl Ticket {
    pub fn to_safetensors(&self) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (path, tensor) in &self.weights {
            let begin = data.len();
            for v in &tensor.values {
                data.extend_from_slice(&v.to_le_bytes());
            }
            header.insert(
                path.clone(),
                header_entry("F32", &tensor.shape, begin, data.len()),
            );
        }
        for layer in &self.mask.layers {
            let begin = data.len();
            data.extend(layer.keep.iter().map(|&k| u8::from(k)));
            header.insert(
                format!("mask/{}", layer.name),
                header_entry("U8", &layer.shape, begin, data.len()),
            );
        }
        let provenance = serde_json::to_string(&self.provenance).expect("provenance serialises");
        let order: Vec<&str> = self.mask.layers.iter().map(|l| l.name.as_str()).collect();
        let order = serde_json::to_string(&order).expect("names serialise");
        header.insert(
            "__metadata__".into(),
            json!({ "ticket": provenance, "mask_order": order }),
        );
        let mut header_bytes = serde_json::to_vec(&Value::Object(header)).expect("header");
        // Pad the header so the data is 8-byte aligned, as the format recommends.
        while !header_bytes.len().is_multiple_of(8) {
            header_bytes.push(b' ');
        }
        let mut out = Vec::with_capacity(8 + header_bytes.len() + data.len());
        out.extend_from_slice(&(header_bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&header_bytes);
        out.extend_from_slice(&data);
        out
    }

    pub fn from_safetensors(bytes: &[u8]) -> Result<Ticket, TicketError> {
        let format = |m: &str| TicketError::Format(m.to_string());
        let size_bytes: [u8; 8] = bytes
            .get(..8)
            .ok_or_else(|| format("shorter than 8 bytes"))?
            .try_into()
            .expect("8 bytes");
        let header_len = u64::from_le_bytes(size_bytes) as usize;
        let header_end = 8usize
            .checked_add(header_len)
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| format("header length past the end of the file"))?;
        let header: BTreeMap<String, Value> = serde_json::from_slice(&bytes[8..header_end])
            .map_err(|e| TicketError::Format(e.to_string()))?;
        let data = &bytes[header_end..];
        let mut weights = Weights::new();
        let mut masks = Vec::new();
        let mut provenance = None;
        let mut mask_order: Vec<String> = Vec::new();
        for (name, entry) in header {
            if name == "__metadata__" {
                let text = entry["ticket"]
                    .as_str()
                    .ok_or_else(|| TicketError::Missing("provenance".into()))?;
                provenance = Some(
                    serde_json::from_str(text).map_err(|e| TicketError::Format(e.to_string()))?,
                );
                if let Some(order) = entry["mask_order"].as_str() {
                    mask_order = serde_json::from_str(order)
                        .map_err(|e| TicketError::Format(e.to_string()))?;
                }
                continue;
            }
            let shape: Vec<usize> = serde_json::from_value(entry["shape"].clone())
                .map_err(|e| TicketError::Format(format!("{name}: {e}")))?;
            let [begin, end]: [usize; 2] = serde_json::from_value(entry["data_offsets"].clone())
                .map_err(|e| TicketError::Format(format!("{name}: {e}")))?;
            let raw = data
                .get(begin..end)
                .ok_or_else(|| TicketError::Format(format!("{name}: data past the end")))?;
            let count: usize = shape.iter().product();
            match (entry["dtype"].as_str(), name.strip_prefix("mask/")) {
                (Some("U8"), Some(path)) if raw.len() == count => masks.push(LayerMask {
                    name: path.to_string(),
                    shape,
                    keep: raw.iter().map(|&b| b != 0).collect(),
                }),
                (Some("F32"), None) if raw.len() == 4 * count => {
                    let values = raw
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    weights.insert(name, HostTensor { shape, values });
                }
                _ => return Err(TicketError::Format(format!("{name}: unexpected entry"))),
            }
        }
        // Restore the model's layer order (the header is sorted by name).
        masks.sort_by_key(|m| mask_order.iter().position(|p| *p == m.name));
        Ok(Ticket {
            mask: Mask { layers: masks },
            weights,
            provenance: provenance.ok_or_else(|| TicketError::Missing("provenance".into()))?,
        })
    }
}

impl Ticket {
    /// The ticket as a trainable model of architecture `M` on `device`, with its mask, after
    /// checking that its weights and mask fit the architecture exactly.
    pub fn instantiate<M: crate::model::Architecture>(
        &self,
        kind: crate::model::ModelKind,
        device: &burn::tensor::Device,
    ) -> Result<(M, Mask), TicketError> {
        let model: M = crate::model::init_model(kind, self.provenance.seed, device);
        for info in crate::params::param_infos(&model) {
            let stored = self
                .weights
                .get(&info.path)
                .ok_or_else(|| TicketError::Missing(format!("weights for {}", info.path)))?;
            if stored.shape != info.shape {
                return Err(TicketError::Format(format!(
                    "{} has shape {:?}, the model {:?}",
                    info.path, stored.shape, info.shape
                )));
            }
        }
        let expected = Mask::dense_for(&model);
        let fits = expected.layers.len() == self.mask.layers.len()
            && expected
                .layers
                .iter()
                .zip(&self.mask.layers)
                .all(|(e, m)| e.name == m.name && e.shape == m.shape);
        if !fits {
            return Err(TicketError::Format(format!(
                "the mask covers {:?}, the model's prunable weights are {:?}",
                self.mask.layers.iter().map(|l| &l.name).collect::<Vec<_>>(),
                expected.layers.iter().map(|l| &l.name).collect::<Vec<_>>()
            )));
        }
        Ok((
            crate::params::load_weights(model, &self.weights),
            self.mask.clone(),
        ))
    }

    /// The training iteration the ticket's weights correspond to (k for θk, 0 for θ0).
    pub fn rewind_iteration(&self) -> usize {
        self.provenance
            .rewind
            .strip_prefix("iteration-")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0)
    }
}
