//! How a sparse network's weights are shared among its layers, and random masks with exactly
//! those per-layer counts.

use serde::{Deserialize, Serialize};

use crate::base::error::ConfigError;
use crate::base::mask::Mask;
use crate::base::rng::Rng;
use crate::pruning::prune::LayerRate;

/// The per-layer density of a sparse network at an overall density.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Distribution {
    /// Every layer at the overall density.
    Uniform,
    /// Erdős–Rényi-Kernel (Evci et al. 2020): density ∝ (sum of the dims) / (product of the
    /// dims), i.e. (n_in + n_out)/(n_in·n_out) for a linear layer and (c_in + c_out + k_h +
    /// k_w)/(c_in·c_out·k_h·k_w) for a conv; layers that would exceed 1 are dense.
    #[default]
    Erk,
}

impl Distribution {
    pub const ALL: [Distribution; 2] = [Distribution::Uniform, Distribution::Erk];

    pub fn name(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Erk => "erk",
        }
    }
}

/// The density of each layer of `mask` (its shapes) so that the whole has `density` of its
/// weights. ERK solves for the scale ε as RigL's reference code does: while the densest
/// layer would exceed 1, make it dense and solve again over the others.
pub fn layer_densities(
    mask: &Mask,
    density: f64,
    distribution: Distribution,
) -> Result<Vec<f64>, ConfigError> {
    layer_densities_with(mask, density, distribution, &[])
}

/// [`layer_densities`] with some layers' densities fixed by glob pattern (the first matching
/// rule wins, e.g. `layers.0.*=1` keeps the first layer dense): the other layers share what
/// is left of the overall budget by `distribution`. A pattern that names no layer, or fixed
/// layers that alone exceed the budget, are errors.
pub fn layer_densities_with(
    mask: &Mask,
    density: f64,
    distribution: Distribution,
    fixed: &[LayerRate],
) -> Result<Vec<f64>, ConfigError> {
    if !(density > 0.0 && density <= 1.0) {
        return Err(ConfigError(format!(
            "density must be in (0, 1], got {density}"
        )));
    }
    for rule in fixed {
        if !(rule.rate > 0.0 && rule.rate <= 1.0) {
            return Err(ConfigError(format!(
                "layer density {}={} must be in (0, 1]",
                rule.pattern, rule.rate
            )));
        }
        if !mask.layers.iter().any(|l| rule.matches(&l.name)) {
            return Err(ConfigError(format!(
                "layer density pattern `{}` matches no layer",
                rule.pattern
            )));
        }
    }
    let sizes: Vec<f64> = mask.layers.iter().map(|l| l.total() as f64).collect();
    let mut assigned: Vec<Option<f64>> = mask
        .layers
        .iter()
        .map(|l| fixed.iter().find(|r| r.matches(&l.name)).map(|r| r.rate))
        .collect();
    let target = density * sizes.iter().sum::<f64>();
    let raw: Vec<f64> = match distribution {
        Distribution::Uniform => vec![1.0; sizes.len()],
        Distribution::Erk => mask
            .layers
            .iter()
            .map(|l| {
                let sum: usize = l.shape.iter().sum();
                sum as f64 / l.total().max(1) as f64
            })
            .collect(),
    };
    loop {
        let assigned_weights: f64 = assigned
            .iter()
            .zip(&sizes)
            .filter_map(|(d, n)| d.map(|d| d * n))
            .sum();
        let free: Vec<usize> = (0..sizes.len())
            .filter(|&i| assigned[i].is_none())
            .collect();
        let left = target - assigned_weights;
        if left < -1e-9 * target {
            return Err(ConfigError(format!(
                "the fixed layer densities keep {assigned_weights:.0} weights, more than the \
                 {target:.0} of density {density}"
            )));
        }
        if free.is_empty() {
            return Ok(assigned.into_iter().map(|d| d.unwrap_or(1.0)).collect());
        }
        let divisor: f64 = free.iter().map(|&i| raw[i] * sizes[i]).sum();
        let epsilon = left.max(0.0) / divisor;
        let densest = *free
            .iter()
            .max_by(|&&a, &&b| raw[a].total_cmp(&raw[b]))
            .expect("a free layer");
        if epsilon * raw[densest] > 1.0 {
            if distribution == Distribution::Uniform {
                return Err(ConfigError(format!(
                    "the other layers cannot hold density {density} beside the fixed ones"
                )));
            }
            assigned[densest] = Some(1.0);
        } else {
            for &i in &free {
                assigned[i] = Some(epsilon * raw[i]);
            }
        }
    }
}

/// The number of weights a layer of `total` keeps at `density` (rounded, at least 1 so no
/// layer is cut off).
pub fn layer_count(total: usize, density: f64) -> usize {
    ((density * total as f64).round() as usize).clamp(1.min(total), total)
}

/// A mask with exactly [`layer_count`] weights per layer at `densities`, placed uniformly at
/// random from the seed (one stream per layer).
pub fn random_mask(shapes: &Mask, densities: &[f64], seed: u64) -> Mask {
    let mut mask = shapes.clone();
    for (layer, &density) in mask.layers.iter_mut().zip(densities) {
        let count = layer_count(layer.total(), density);
        let mut rng = Rng::for_purpose(seed, &format!("dst/initial-mask/{}", layer.name));
        let order = rng.permutation(layer.total());
        layer.keep.iter_mut().for_each(|k| *k = false);
        for &i in &order[..count] {
            layer.keep[i] = true;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::mask::LayerMask;

    fn lenet300() -> Mask {
        Mask {
            layers: vec![
                LayerMask::dense("layers.0.weight", &[784, 300]),
                LayerMask::dense("layers.1.weight", &[300, 100]),
                LayerMask::dense("layers.2.weight", &[100, 10]),
            ],
        }
    }

    #[test]
    fn erk_follows_the_formula_and_averages_to_the_target() {
        let mask = lenet300();
        for target in [0.5, 0.1, 0.05, 0.02] {
            let d = layer_densities(&mask, target, Distribution::Erk).unwrap();
            let kept: f64 = d
                .iter()
                .zip(&mask.layers)
                .map(|(d, l)| d * l.total() as f64)
                .sum();
            assert!(
                (kept / mask.total() as f64 - target).abs() < 1e-12,
                "{target}"
            );
            // Sparse layers share one ε: density / ((n_in + n_out)/(n_in·n_out)) is equal.
            let raw = |l: &LayerMask| (l.shape[0] + l.shape[1]) as f64 / l.total() as f64;
            let scales: Vec<f64> = d
                .iter()
                .zip(&mask.layers)
                .filter(|(d, _)| **d < 1.0)
                .map(|(d, l)| d / raw(l))
                .collect();
            for s in &scales {
                assert!((s - scales[0]).abs() < 1e-9 * scales[0], "{scales:?}");
            }
            assert!(d.iter().all(|&x| x > 0.0 && x <= 1.0));
        }
        // At 10% the 100×10 output layer would need ε·0.11 > 1: it is dense, and by hand
        // ε = (26,620 − 1,000) / (1,084 + 400) for the other two.
        let d = layer_densities(&mask, 0.1, Distribution::Erk).unwrap();
        assert_eq!(d[2], 1.0);
        let epsilon = (26_620.0 - 1_000.0) / (1_084.0 + 400.0);
        assert!((d[0] - epsilon * 1084.0 / 235_200.0).abs() < 1e-12);
        assert!((d[1] - epsilon * 400.0 / 30_000.0).abs() < 1e-12);
    }

    #[test]
    fn conv_kernels_count_in_erk() {
        let mask = Mask {
            layers: vec![
                LayerMask::dense("c.weight", &[16, 8, 3, 3]),
                LayerMask::dense("f.weight", &[512, 64]),
            ],
        };
        let d = layer_densities(&mask, 0.2, Distribution::Erk).unwrap();
        let ratio = d[0] / d[1];
        let expected = ((16 + 8 + 3 + 3) as f64 / 1152.0) / ((512 + 64) as f64 / 32768.0);
        assert!((ratio - expected).abs() < 1e-9);
    }

    #[test]
    fn random_masks_have_exact_counts_and_depend_on_the_seed() {
        let mask = lenet300();
        let d = layer_densities(&mask, 0.05, Distribution::Uniform).unwrap();
        let a = random_mask(&mask, &d, 1);
        let b = random_mask(&mask, &d, 2);
        for (layer, dense) in a.layers.iter().zip(&mask.layers) {
            assert_eq!(layer.remaining(), layer_count(dense.total(), 0.05));
        }
        assert_ne!(a, b);
        assert_eq!(a, random_mask(&mask, &d, 1));
        assert!(layer_densities(&mask, 0.0, Distribution::Erk).is_err());
        assert!(layer_densities(&mask, 1.5, Distribution::Uniform).is_err());
    }

    #[test]
    fn fixed_layer_densities_leave_the_rest_to_the_distribution() {
        let mask = lenet300();
        let dense_first = [LayerRate::new("layers.2.*", 1.0)];
        for distribution in Distribution::ALL {
            let d = layer_densities_with(&mask, 0.1, distribution, &dense_first).unwrap();
            assert_eq!(d[2], 1.0);
            let kept: f64 = d
                .iter()
                .zip(&mask.layers)
                .map(|(d, l)| d * l.total() as f64)
                .sum();
            assert!((kept - 26_620.0).abs() < 1e-6, "{distribution:?}: {kept}");
        }
        // Uniform: the other two share (26,620 − 1,000) / 265,200.
        let d = layer_densities_with(&mask, 0.1, Distribution::Uniform, &dense_first).unwrap();
        assert!((d[0] - 25_620.0 / 265_200.0).abs() < 1e-12 && d[0] == d[1]);
        // Too much fixed, or a pattern that names nothing: errors.
        let greedy = [LayerRate::new("layers.0.*", 1.0)];
        assert!(layer_densities_with(&mask, 0.1, Distribution::Erk, &greedy).is_err());
        let nothing = [LayerRate::new("conv.*", 0.5)];
        assert!(layer_densities_with(&mask, 0.1, Distribution::Erk, &nothing).is_err());
        // No rules: the plain distribution.
        assert_eq!(
            layer_densities_with(&mask, 0.05, Distribution::Erk, &[]).unwrap(),
            layer_densities(&mask, 0.05, Distribution::Erk).unwrap()
        );
    }
}
