//! Compressed sparse rows and the two kernels of the sparse engine.
//!
//! Activations are feature-major, `[feature][batch]`: a weight then multiplies a contiguous
//! run of `batch` values (or, in a convolution, a contiguous run of a row's pixels times
//! `batch`), so every inner loop is an `axpy` over a slice that the compiler vectorises
//! (SSE/AVX natively, SIMD128 in wasm32 built with `+simd128`). Four weights are fused per
//! pass so each output value is loaded and stored a quarter as often.

use serde::{Deserialize, Serialize};

use crate::base::mask::Mask;
use crate::base::model::Stage;
use crate::base::params::Weights;

/// A `rows × cols` matrix in compressed sparse rows: row `r` keeps the columns
/// `indices[indptr[r]..indptr[r + 1]]` (increasing) with `values` at the same positions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csr {
    pub rows: usize,
    pub cols: usize,
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl Csr {
    /// The kept entries of a dense row-major matrix: `at(r, c)` gives the value and whether
    /// it is kept (explicit zeros that are kept stay, so the structure is the mask's).
    pub fn from_fn(
        rows: usize,
        cols: usize,
        mut at: impl FnMut(usize, usize) -> (f32, bool),
    ) -> Self {
        let mut indptr = Vec::with_capacity(rows + 1);
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for r in 0..rows {
            for c in 0..cols {
                let (value, keep) = at(r, c);
                if keep {
                    indices.push(c as u32);
                    values.push(value);
                }
            }
            indptr.push(indices.len() as u32);
        }
        Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        }
    }

    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let range = self.indptr[r] as usize..self.indptr[r + 1] as usize;
        (&self.indices[range.clone()], &self.values[range])
    }

    /// Checks what a file could get wrong: monotone pointers, in-range columns, lengths.
    pub fn validate(&self) -> Result<(), CsrError> {
        if self.indptr.len() != self.rows + 1 || self.indptr.first() != Some(&0) {
            return Err(CsrError::Pointers {
                entries: self.indptr.len(),
                rows: self.rows,
            });
        }
        if self.indptr.windows(2).any(|w| w[0] > w[1]) {
            return Err(CsrError::Decreasing);
        }
        let nnz = *self.indptr.last().unwrap_or(&0) as usize;
        if nnz != self.indices.len() || nnz != self.values.len() {
            return Err(CsrError::Lengths {
                nnz,
                indices: self.indices.len(),
                values: self.values.len(),
            });
        }
        if let Some(&c) = self.indices.iter().find(|&&c| c as usize >= self.cols) {
            return Err(CsrError::Column {
                column: c,
                cols: self.cols,
            });
        }
        Ok(())
    }
}

/// Why a stage's weights cannot become its CSR matrix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageWeightsError {
    #[error("the weights have no {0}")]
    Missing(String),
    #[error("{path} has shape {found:?}, the network expects {expected:?}")]
    Shape {
        path: String,
        found: Vec<usize>,
        expected: Vec<usize>,
    },
}

/// A weighted stage's kept weights in CSR, rows = outputs (a linear layer's `Wᵀ` of burn's
/// `[inputs, outputs]`, a convolution's `[out, in·kh·kw]` as burn keeps it), keeping what
/// `mask` keeps (a weight it does not cover is kept), and its bias (zeros without one);
/// `None` for a pool.
pub fn stage_csr(
    stage: &Stage,
    weights: &Weights,
    mask: Option<&Mask>,
) -> Result<Option<(Csr, Vec<f32>)>, StageWeightsError> {
    let tensor = |path: &str, expected: Vec<usize>| {
        let t = weights
            .get(path)
            .ok_or_else(|| StageWeightsError::Missing(format!("weights for {path}")))?;
        if t.shape != expected {
            return Err(StageWeightsError::Shape {
                path: path.into(),
                found: t.shape.clone(),
                expected,
            });
        }
        Ok(t.values.as_slice())
    };
    let (Some(path), (rows, _)) = (stage.weight(), stage.output_shape()) else {
        return Ok(None);
    };
    let (shape, cols, transposed) = match stage {
        Stage::Linear {
            inputs, outputs, ..
        } => (vec![*inputs, *outputs], *inputs, true),
        Stage::Conv {
            in_channels,
            out_channels,
            kernel,
            ..
        } => {
            let shape = vec![*out_channels, *in_channels, kernel[0], kernel[1]];
            (shape, in_channels * kernel[0] * kernel[1], false)
        }
        Stage::MaxPool2 { .. } => return Ok(None),
    };
    let values = tensor(path, shape.clone())?;
    let keep = match mask.and_then(|m| m.layer(path)) {
        None => None,
        Some(l) if l.keep.len() == values.len() => Some(&l.keep),
        Some(l) => {
            return Err(StageWeightsError::Shape {
                path: format!("mask of {path}"),
                found: l.shape.clone(),
                expected: shape,
            });
        }
    };
    let csr = Csr::from_fn(rows, cols, |r, c| {
        let at = if transposed {
            c * rows + r
        } else {
            r * cols + c
        };
        (values[at], keep.is_none_or(|k| k[at]))
    });
    let bias = match stage.bias() {
        Some(b) => tensor(b, vec![rows])?.to_vec(),
        None => vec![0.0; rows],
    };
    Ok(Some((csr, bias)))
}

/// What a CSR matrix read from a file can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    #[error("indptr has {entries} entries for {rows} rows")]
    Pointers { entries: usize, rows: usize },
    #[error("indptr decreases")]
    Decreasing,
    #[error("indptr ends at {nnz}, with {indices} indices and {values} values")]
    Lengths {
        nnz: usize,
        indices: usize,
        values: usize,
    },
    #[error("column {column} is out of {cols} columns")]
    Column { column: u32, cols: usize },
}

/// `out += Σ_k w_k · xs_k`, four weights per pass.
#[inline]
fn accumulate(out: &mut [f32], weights: &[f32], mut source: impl FnMut(usize) -> usize, x: &[f32]) {
    let n = out.len();
    let mut k = 0;
    while k + 4 <= weights.len() {
        let (a, b, c, d) = (source(k), source(k + 1), source(k + 2), source(k + 3));
        let (xa, xb, xc, xd) = (&x[a..a + n], &x[b..b + n], &x[c..c + n], &x[d..d + n]);
        let (wa, wb, wc, wd) = (weights[k], weights[k + 1], weights[k + 2], weights[k + 3]);
        for i in 0..n {
            out[i] += wa * xa[i] + wb * xb[i] + wc * xc[i] + wd * xd[i];
        }
        k += 4;
    }
    while k < weights.len() {
        let a = source(k);
        let (xa, wa) = (&x[a..a + n], weights[k]);
        for i in 0..n {
            out[i] += wa * xa[i];
        }
        k += 1;
    }
}

/// A fully connected layer: `y[j][b] = bias[j] + Σ_i W[i][j] · x[i][b]` with `w` holding
/// `Wᵀ` (rows = outputs), `x` = `[inputs][batch]`, `y` = `[outputs][batch]`.
pub fn linear(w: &Csr, bias: &[f32], x: &[f32], batch: usize, relu: bool, y: &mut [f32]) {
    for j in 0..w.rows {
        let out = &mut y[j * batch..(j + 1) * batch];
        out.fill(bias.get(j).copied().unwrap_or(0.0));
        let (indices, values) = w.row(j);
        if batch == 1 {
            // A gathered dot product, four partial sums.
            let mut sums = [0.0f32; 4];
            let mut chunks = indices.chunks_exact(4).zip(values.chunks_exact(4));
            for (i, v) in &mut chunks {
                for lane in 0..4 {
                    sums[lane] += v[lane] * x[i[lane] as usize];
                }
            }
            let tail = indices.len() - indices.len() % 4;
            let mut rest = 0.0;
            for (&i, &v) in indices[tail..].iter().zip(&values[tail..]) {
                rest += v * x[i as usize];
            }
            out[0] += (sums[0] + sums[1]) + (sums[2] + sums[3]) + rest;
        } else {
            accumulate(out, values, |k| indices[k] as usize * batch, x);
        }
        if relu {
            relu_in_place(out);
        }
    }
}

/// Where a convolution reads and writes.
#[derive(Debug, Clone, Copy)]
pub struct ConvGeometry {
    pub in_side: [usize; 2],
    pub out_side: [usize; 2],
    pub kernel: [usize; 2],
    pub padding: [usize; 2],
}

/// A stride-1 convolution with zero padding, `w` = `[out_channels][in_channels·kh·kw]`,
/// `x` = `[in_channels][h][w][batch]`, `y` = `[out_channels][oh][ow][batch]`. Each kept
/// weight adds a shifted copy of one input map, a contiguous run per output row.
pub fn conv(
    w: &Csr,
    bias: &[f32],
    g: ConvGeometry,
    x: &[f32],
    batch: usize,
    relu: bool,
    y: &mut [f32],
) {
    let taps = g.kernel[0] * g.kernel[1];
    let (in_map, out_map) = g.map_lens(batch);
    for o in 0..w.rows {
        let out = &mut y[o * out_map..(o + 1) * out_map];
        out.fill(bias.get(o).copied().unwrap_or(0.0));
        let (indices, values) = w.row(o);
        for (&col, &value) in indices.iter().zip(values) {
            let channel = col as usize / taps;
            let map = &x[channel * in_map..(channel + 1) * in_map];
            g.runs(col as usize, batch, |to, from, len| {
                for (d, s) in out[to..to + len].iter_mut().zip(&map[from..from + len]) {
                    *d += value * s;
                }
            });
        }
        if relu {
            relu_in_place(out);
        }
    }
}

impl ConvGeometry {
    /// Values of one input map and of one output map, `batch` examples each.
    pub fn map_lens(&self, batch: usize) -> (usize, usize) {
        let ([h, w], [oh, ow]) = (self.in_side, self.out_side);
        (h * w * batch, oh * ow * batch)
    }

    /// What the weight at column `col` (`channel·kh·kw + dy·kw + dx`) connects: for each
    /// output row its shifted input row reaches, `visit(output offset, input offset, len)`
    /// of one contiguous run (columns × batch) within the output map and the input map.
    /// The forward pass adds `w ·` input runs to output runs; the backward pass takes dot
    /// products of the same runs (∂w) and adds `w ·` output runs to input runs (∂x).
    pub fn runs(&self, col: usize, batch: usize, mut visit: impl FnMut(usize, usize, usize)) {
        let ([h, wd], [oh, ow]) = (self.in_side, self.out_side);
        let tap = col % (self.kernel[0] * self.kernel[1]);
        let (dy, dx) = (tap / self.kernel[1], tap % self.kernel[1]);
        // Output columns whose input column `c + dx - pad` is inside the map.
        let lo = self.padding[1].saturating_sub(dx);
        let hi = ow.min((wd + self.padding[1]).saturating_sub(dx));
        if lo >= hi {
            return;
        }
        for r in 0..oh {
            let Some(ir) = (r + dy).checked_sub(self.padding[0]).filter(|&ir| ir < h) else {
                continue;
            };
            let ic = lo + dx - self.padding[1];
            visit(
                (r * ow + lo) * batch,
                (ir * wd + ic) * batch,
                (hi - lo) * batch,
            );
        }
    }
}

/// `max(a, b)` as a compare and select. `f32::max`'s NaN rule compiles to scalar code in
/// wasm32 (its `f32.max` propagates NaN), which made the ReLUs and pools 5–10× slower there.
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

fn relu_in_place(values: &mut [f32]) {
    values.iter_mut().for_each(|v| *v = larger(*v, 0.0));
}

/// The backward pass of [`max_pool2`]: each output's gradient `dy` goes to the first largest
/// of its four inputs in `x` (row by row), into `dx` (zeroed first).
pub fn max_pool2_backward(
    channels: usize,
    side: [usize; 2],
    x: &[f32],
    dy: &[f32],
    batch: usize,
    dx: &mut [f32],
) {
    let ([h, w], [oh, ow]) = (side, [side[0] / 2, side[1] / 2]);
    dx.fill(0.0);
    for c in 0..channels {
        for r in 0..oh {
            for q in 0..ow {
                let at = |rr: usize, qq: usize| (((c * h) + rr) * w + qq) * batch;
                let window = [
                    at(2 * r, 2 * q),
                    at(2 * r, 2 * q + 1),
                    at(2 * r + 1, 2 * q),
                    at(2 * r + 1, 2 * q + 1),
                ];
                let out = (((c * oh) + r) * ow + q) * batch;
                for i in 0..batch {
                    let mut best = window[0];
                    for &candidate in &window[1..] {
                        if x[candidate + i] > x[best + i] {
                            best = candidate;
                        }
                    }
                    dx[best + i] += dy[out + i];
                }
            }
        }
    }
}

/// A 2×2, stride-2 max-pool (floor) of `[channels][h][w][batch]`.
pub fn max_pool2(channels: usize, side: [usize; 2], x: &[f32], batch: usize, y: &mut [f32]) {
    let ([h, w], [oh, ow]) = (side, [side[0] / 2, side[1] / 2]);
    for c in 0..channels {
        for r in 0..oh {
            for q in 0..ow {
                let at = |rr: usize, qq: usize| (((c * h) + rr) * w + qq) * batch;
                let (a, b) = (at(2 * r, 2 * q), at(2 * r, 2 * q + 1));
                let (d, e) = (at(2 * r + 1, 2 * q), at(2 * r + 1, 2 * q + 1));
                let out = (((c * oh) + r) * ow + q) * batch;
                for i in 0..batch {
                    y[out + i] = larger(larger(x[a + i], x[b + i]), larger(x[d + i], x[e + i]));
                }
            }
        }
    }
}
