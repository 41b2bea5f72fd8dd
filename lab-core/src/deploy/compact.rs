//! Compaction: a structured ticket as a physically smaller dense network, whose logits equal
//! the masked network's.

use crate::base::mask::Mask;
use crate::base::model::{Net, Stage};
use crate::base::params::{HostTensor, Weights};
use crate::pruning::units::{StructuredError, live_units, unit_layers};

/// A structured ticket as a smaller dense network.
#[derive(Debug)]
pub struct Compacted {
    pub net: Net,
    /// The smaller network's weights (pruned entries that remain are zero).
    pub weights: Weights,
    /// Units kept per unit layer, as [`Net::with_units`] takes them.
    pub units: Vec<usize>,
    /// Weights of the stages (biases left out), before and after.
    pub weights_before: usize,
    pub weights_after: usize,
}

/// Removes every unit no later stage reads and slices the weights to match: the result's
/// logits equal the masked network's (up to float summation order).
pub fn compact(
    net: &Net,
    weights: &Weights,
    mask: &Mask,
    device: &burn::tensor::Device,
) -> Result<Compacted, StructuredError> {
    let stages = net.stages().ok_or(StructuredError::NotSequential)?;
    let live = live_units(&stages, mask)?;
    let units: Vec<usize> = live
        .iter()
        .map(|l| l.iter().filter(|&&a| a).count())
        .collect();
    if let Some(empty) = units.iter().position(|&u| u == 0) {
        return Err(StructuredError::EmptyLayer(
            unit_layers(&stages)[empty].weight.clone(),
        ));
    }
    let mut out = Weights::new();
    let (mut before, mut after) = (0, 0);
    let tensor = |path: &str| {
        weights
            .get(path)
            .ok_or_else(|| StructuredError::Missing(path.into()))
    };
    // The kept inputs of the next weighted stage: kept units of the previous one (for the
    // first, all inputs).
    let mut previous_live: Option<&Vec<bool>> = None;
    let mut unit_layer = 0;
    for stage in &stages {
        let Some(path) = stage.weight() else { continue };
        let w = tensor(path)?;
        let keep = mask.layer(path).map(|l| l.keep.as_slice());
        let own_live = live.get(unit_layer);
        let kept_out = |u: usize| own_live.is_none_or(|l| l[u]);
        before += w.values.len();
        let value = |i: usize| {
            if keep.is_none_or(|k| k[i]) {
                w.values[i]
            } else {
                0.0
            }
        };
        let (shape, values) = match stage {
            Stage::Linear {
                inputs, outputs, ..
            } => {
                let group = previous_live.map_or(1, |l| inputs / l.len().max(1));
                let kept_in = |i: usize| previous_live.is_none_or(|l| l[i / group]);
                let rows: Vec<usize> = (0..*inputs).filter(|&i| kept_in(i)).collect();
                let cols: Vec<usize> = (0..*outputs).filter(|&j| kept_out(j)).collect();
                let values = rows
                    .iter()
                    .flat_map(|&i| cols.iter().map(move |&j| value(i * outputs + j)))
                    .collect();
                (vec![rows.len(), cols.len()], values)
            }
            Stage::Conv {
                in_channels,
                out_channels,
                kernel,
                ..
            } => {
                let taps = kernel[0] * kernel[1];
                let kept_in: Vec<usize> = (0..*in_channels)
                    .filter(|&c| previous_live.is_none_or(|l| l[c]))
                    .collect();
                let kept: Vec<usize> = (0..*out_channels).filter(|&o| kept_out(o)).collect();
                let mut values = Vec::new();
                for &o in &kept {
                    for &c in &kept_in {
                        values.extend((0..taps).map(|t| value((o * in_channels + c) * taps + t)));
                    }
                }
                (
                    vec![kept.len(), kept_in.len(), kernel[0], kernel[1]],
                    values,
                )
            }
            Stage::MaxPool2 { .. } => continue,
        };
        after += values.len();
        out.insert(path.to_string(), HostTensor { shape, values });
        if let Some(b) = stage.bias() {
            let bias = tensor(b)?;
            let values: Vec<f32> = bias
                .values
                .iter()
                .enumerate()
                .filter(|(u, _)| kept_out(*u))
                .map(|(_, &v)| v)
                .collect();
            out.insert(
                b.to_string(),
                HostTensor {
                    shape: vec![values.len()],
                    values,
                },
            );
        }
        previous_live = own_live;
        unit_layer += 1;
    }
    let smaller = net
        .with_units(&units, device)
        .ok_or(StructuredError::NotSequential)?;
    let smaller = crate::base::params::load_weights(smaller, &out);
    Ok(Compacted {
        net: smaller,
        weights: out,
        units,
        weights_before: before,
        weights_after: after,
    })
}
