//! Tickets: a mask, the weights it is applied to (θ0 or θk), and where they came from,
//! stored as one safetensors file (readable by PyTorch's `safetensors.torch.load_file`).
//!
//! Tensors: `<path>` (F32) for every float parameter, `mask/<path>` (U8, 0 or 1) for every
//! masked one; `__metadata__` holds `"ticket"`: the provenance JSON.

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensorError, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::base::mask::{LayerMask, Mask};
use crate::base::params::{HostTensor, Weights};
use crate::base::store::{RunStore, StoreError};

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
    Safetensors(#[from] SafeTensorError),
    #[error("ticket: {0}")]
    Format(String),
    #[error("ticket has no {0}")]
    Missing(String),
}

/// The metadata keys: the provenance JSON, and the mask's layer order (the model's).
const PROVENANCE_KEY: &str = "ticket";
const MASK_ORDER_KEY: &str = "mask_order";
const MASK_PREFIX: &str = "mask/";

impl Ticket {
    /// The ticket as safetensors bytes, written by the `safetensors` crate.
    pub fn to_safetensors(&self) -> Vec<u8> {
        let weights = self.weights.iter().map(|(path, tensor)| {
            let bytes = tensor.values.iter().flat_map(|v| v.to_le_bytes()).collect();
            (path.clone(), Dtype::F32, tensor.shape.clone(), bytes)
        });
        let masks = self.mask.layers.iter().map(|layer| {
            let bytes = layer.keep.iter().map(|&k| u8::from(k)).collect();
            let name = format!("{MASK_PREFIX}{}", layer.name);
            (name, Dtype::U8, layer.shape.clone(), bytes)
        });
        let owned: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = weights.chain(masks).collect();
        let views = owned.iter().map(|(name, dtype, shape, bytes)| {
            let view = TensorView::new(*dtype, shape.clone(), bytes)
                .expect("a tensor's bytes match its shape by construction");
            (name.as_str(), view)
        });
        let order: Vec<&str> = self.mask.layers.iter().map(|l| l.name.as_str()).collect();
        let metadata = [
            (
                PROVENANCE_KEY.to_string(),
                serde_json::to_string(&self.provenance).expect("provenance serialises"),
            ),
            (
                MASK_ORDER_KEY.to_string(),
                serde_json::to_string(&order).expect("names serialise"),
            ),
        ];
        safetensors::serialize(views, Some(metadata.into_iter().collect()))
            .expect("names are unique and tensors well formed by construction")
    }

    /// Reads a ticket written by [`Self::to_safetensors`] (or any safetensors file with the
    /// same tensors and metadata). The `safetensors` crate checks the header, the offsets and
    /// the sizes; this checks the dtypes and the metadata.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Ticket, TicketError> {
        let (_, header) = SafeTensors::read_metadata(bytes)?;
        let tensors = SafeTensors::deserialize(bytes)?;
        let metadata = header.metadata().as_ref();
        let text = metadata
            .and_then(|m| m.get(PROVENANCE_KEY))
            .ok_or_else(|| TicketError::Missing("provenance".into()))?;
        let provenance: Provenance = serde_json::from_str(text)
            .map_err(|e| TicketError::Format(format!("provenance: {e}")))?;
        let mask_order: Vec<String> = match metadata.and_then(|m| m.get(MASK_ORDER_KEY)) {
            Some(order) => serde_json::from_str(order)
                .map_err(|e| TicketError::Format(format!("mask order: {e}")))?,
            None => Vec::new(),
        };
        let mut weights = Weights::new();
        let mut masks = Vec::new();
        for (name, view) in tensors.tensors() {
            let shape = view.shape().to_vec();
            match (view.dtype(), name.strip_prefix(MASK_PREFIX)) {
                (Dtype::U8, Some(path)) => masks.push(LayerMask {
                    name: path.to_string(),
                    shape,
                    keep: view.data().iter().map(|&b| b != 0).collect(),
                }),
                (Dtype::F32, None) => {
                    let values = view
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    weights.insert(name, HostTensor { shape, values });
                }
                (dtype, _) => {
                    return Err(TicketError::Format(format!(
                        "{name}: unexpected {dtype:?} tensor"
                    )));
                }
            }
        }
        // Restore the model's layer order (the file's order is the crate's); layers the
        // order does not name follow, by name.
        masks.sort_by(|a, b| {
            let position = |m: &LayerMask| mask_order.iter().position(|p| *p == m.name);
            (position(a).unwrap_or(usize::MAX), &a.name)
                .cmp(&(position(b).unwrap_or(usize::MAX), &b.name))
        });
        Ok(Ticket {
            mask: Mask { layers: masks },
            weights,
            provenance,
        })
    }
}

impl Ticket {
    /// The ticket as a trainable model of architecture `M` on `device`, with its mask, after
    /// checking that its weights and mask fit the architecture exactly.
    pub fn instantiate<M: crate::base::model::Architecture>(
        &self,
        kind: crate::base::model::ModelKind,
        device: &burn::tensor::Device,
    ) -> Result<(M, Mask), TicketError> {
        let model: M = crate::base::model::init_model(kind, self.provenance.seed, device);
        for info in crate::base::params::param_infos(&model) {
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
            crate::base::params::load_weights(model, &self.weights),
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

/// The ticket file stored under `key`, if there is one; a damaged file is an error.
pub fn read_ticket(store: &dyn RunStore, key: &str) -> Result<Option<Ticket>, StoreError> {
    store
        .read(key)
        .map(|bytes| {
            Ticket::from_safetensors(&bytes).map_err(|e| StoreError::Corrupt {
                key: key.into(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket() -> Ticket {
        let mut weights = Weights::new();
        weights.insert(
            "b.weight".into(),
            HostTensor {
                shape: vec![2, 3],
                values: vec![0.5, -1.25, 0.0, 3.0, f32::MIN_POSITIVE, -0.0],
            },
        );
        weights.insert(
            "a.weight".into(),
            HostTensor {
                shape: vec![3],
                values: vec![1.0, 2.0, 3.0],
            },
        );
        let mut second = LayerMask::dense("a.weight", &[3]);
        second.keep[1] = false;
        let mut first = LayerMask::dense("b.weight", &[2, 3]);
        first.keep[0] = false;
        Ticket {
            // The model's order, which is not the names' order.
            mask: Mask {
                layers: vec![first, second],
            },
            weights,
            provenance: Provenance {
                model: "lenet300".into(),
                dataset: "mnist".into(),
                round: 3,
                rewind: "iteration-500".into(),
                seed: 7,
                run: "imp-0123abcd".into(),
                weights_remaining: 0.512,
                stream: String::new(),
            },
        }
    }

    #[test]
    fn round_trips_bit_for_bit_in_the_models_layer_order() {
        let ticket = ticket();
        let back = Ticket::from_safetensors(&ticket.to_safetensors()).unwrap();
        assert_eq!(back, ticket);
        let bits = |t: &Ticket| {
            t.weights["b.weight"]
                .values
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&back), bits(&ticket), "-0.0 and subnormals kept");
    }

    /// Tickets written before the `safetensors` crate (our own writer: header keys sorted,
    /// data in insertion order, header padded to 8 bytes) still read.
    #[test]
    fn reads_tickets_of_the_former_writer() {
        let ticket = ticket();
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        let mut entry = |name: String, dtype: &str, shape: &[usize], bytes: Vec<u8>| {
            let begin = data.len();
            data.extend(bytes);
            header.insert(
                name,
                serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()] }),
            );
        };
        for (path, t) in &ticket.weights {
            entry(
                path.clone(),
                "F32",
                &t.shape,
                t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            );
        }
        for l in &ticket.mask.layers {
            entry(
                format!("mask/{}", l.name),
                "U8",
                &l.shape,
                l.keep.iter().map(|&k| u8::from(k)).collect(),
            );
        }
        let order = serde_json::to_string(&["b.weight", "a.weight"]).unwrap();
        let provenance = serde_json::to_string(&ticket.provenance).unwrap();
        header.insert(
            "__metadata__".into(),
            serde_json::json!({ "ticket": provenance, "mask_order": order }),
        );
        let mut header = serde_json::to_vec(&header).unwrap();
        while !header.len().is_multiple_of(8) {
            header.push(b' ');
        }
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(data);
        assert_eq!(Ticket::from_safetensors(&bytes).unwrap(), ticket);
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let bytes = ticket().to_safetensors();
        for cut in [0, 4, 8, 20, bytes.len() - 1] {
            assert!(
                Ticket::from_safetensors(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut wrong_length = bytes.clone();
        wrong_length[0] = wrong_length[0].wrapping_add(1);
        assert!(Ticket::from_safetensors(&wrong_length).is_err());
        let no_provenance = safetensors::serialize(
            [(
                "w",
                TensorView::new(Dtype::F32, vec![1], &[0, 0, 0, 0]).unwrap(),
            )],
            None,
        )
        .unwrap();
        assert!(matches!(
            Ticket::from_safetensors(&no_provenance),
            Err(TicketError::Missing(_))
        ));
    }
}
