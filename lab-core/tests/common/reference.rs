//! An independent f64 reference for the lab's networks: forward and backward written out by
//! hand (no burn), for LeNet-300-100-style MLPs and LeNet-5-style conv nets with max-pool.
//! It records every ReLU gate and max-pool argmax, so a test can check that a finite
//! difference flipped none of them.

use std::collections::BTreeMap;

use lab_core::base::params::Weights;

/// One operation of a feed-forward stack; parameters are named as burn names them.
#[derive(Debug, Clone)]
pub enum Op {
    /// weight `[in, out]` (burn's layout), bias `[out]`.
    Linear {
        weight: String,
        bias: String,
    },
    /// weight `[out, in, k, k]`, bias `[out]`, zero padding `pad`, stride 1.
    Conv {
        weight: String,
        bias: String,
        pad: usize,
    },
    Relu,
    /// 2×2, stride 2.
    MaxPool,
}

/// Activations are `[batch][channels][h][w]` flattened per item, with their shape.
#[derive(Debug, Clone)]
struct Act {
    data: Vec<Vec<f64>>,
    shape: Vec<usize>,
}

/// The decisions of a forward pass: ReLU gates and pool argmaxes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<Vec<Vec<usize>>>);

impl Pattern {
    /// Number of gates or argmaxes that differ.
    pub fn flips(&self, other: &Pattern) -> usize {
        self.0
            .iter()
            .zip(&other.0)
            .flat_map(|(a, b)| a.iter().zip(b))
            .flat_map(|(a, b)| a.iter().zip(b))
            .filter(|(x, y)| x != y)
            .count()
    }
}

pub type Params = BTreeMap<String, Vec<f64>>;

pub fn to_f64(weights: &Weights) -> Params {
    weights
        .iter()
        .map(|(k, t)| (k.clone(), t.values.iter().map(|&v| f64::from(v)).collect()))
        .collect()
}

pub struct Net {
    pub ops: Vec<Op>,
    /// Input shape of one item, e.g. `[784]` or `[1, 28, 28]`.
    pub input: Vec<usize>,
    pub shapes: BTreeMap<String, Vec<usize>>,
}

impl Net {
    pub fn mlp(layers: usize) -> Self {
        let mut ops = Vec::new();
        for l in 0..layers {
            ops.push(Op::Linear {
                weight: format!("layers.{l}.weight"),
                bias: format!("layers.{l}.bias"),
            });
            if l + 1 < layers {
                ops.push(Op::Relu);
            }
        }
        Net {
            ops,
            input: vec![784],
            shapes: BTreeMap::new(),
        }
    }

    /// `ConvNet::lenet5`: conv 6@5×5 pad 2, ReLU, pool, conv 16@5×5, ReLU, pool, 120, 84, 10.
    pub fn lenet5() -> Self {
        let conv = |i: usize, pad| Op::Conv {
            weight: format!("convs.{i}.weight"),
            bias: format!("convs.{i}.bias"),
            pad,
        };
        let fc = |i: usize| Op::Linear {
            weight: format!("fcs.{i}.weight"),
            bias: format!("fcs.{i}.bias"),
        };
        Net {
            ops: vec![
                conv(0, 2),
                Op::Relu,
                Op::MaxPool,
                conv(1, 0),
                Op::Relu,
                Op::MaxPool,
                fc(0),
                Op::Relu,
                fc(1),
                Op::Relu,
                fc(2),
            ],
            input: vec![1, 28, 28],
            shapes: BTreeMap::new(),
        }
    }

    pub fn with_shapes(mut self, weights: &Weights) -> Self {
        self.shapes = weights
            .iter()
            .map(|(k, t)| (k.clone(), t.shape.clone()))
            .collect();
        self
    }

    /// Mean cross-entropy of logits / `temperature`, its gradient for every parameter, and
    /// the decisions of the pass. With `frozen`, gates and argmaxes are those given.
    pub fn loss_and_gradient(
        &self,
        params: &Params,
        inputs: &[Vec<f64>],
        labels: &[usize],
        temperature: f64,
        frozen: Option<&Pattern>,
    ) -> (f64, Params, Pattern) {
        let n = inputs.len();
        let mut acts = vec![Act {
            data: inputs.to_vec(),
            shape: self.input.clone(),
        }];
        let mut pattern = Vec::new();
        for op in &self.ops {
            let x = acts.last().unwrap();
            let frozen_here = frozen.map(|p| &p.0[pattern.len()]);
            let (y, decisions) = match op {
                Op::Linear { weight, bias } => {
                    (self.linear(x, &params[weight], &params[bias], weight), None)
                }
                Op::Conv { weight, bias, pad } => (
                    self.conv(x, &params[weight], &params[bias], weight, *pad),
                    None,
                ),
                Op::Relu => {
                    let gates: Vec<Vec<usize>> = match frozen_here {
                        Some(g) => g.clone(),
                        None => x
                            .data
                            .iter()
                            .map(|v| v.iter().map(|&z| usize::from(z > 0.0)).collect())
                            .collect(),
                    };
                    let data = x
                        .data
                        .iter()
                        .zip(&gates)
                        .map(|(v, g)| v.iter().zip(g).map(|(&z, &g)| z * g as f64).collect())
                        .collect();
                    (
                        Act {
                            data,
                            shape: x.shape.clone(),
                        },
                        Some(gates),
                    )
                }
                Op::MaxPool => {
                    let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
                    let (oh, ow) = (h / 2, w / 2);
                    let mut argmaxes = Vec::with_capacity(n);
                    let mut data = Vec::with_capacity(n);
                    for (item, v) in x.data.iter().enumerate() {
                        let mut out = vec![0.0; c * oh * ow];
                        let mut arg = vec![0usize; c * oh * ow];
                        for ch in 0..c {
                            for i in 0..oh {
                                for j in 0..ow {
                                    let o = (ch * oh + i) * ow + j;
                                    let best = match frozen_here {
                                        Some(g) => g[item][o],
                                        None => {
                                            let mut best = (2 * i) * w + 2 * j;
                                            for (di, dj) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                                                let k = (2 * i + di) * w + 2 * j + dj;
                                                if v[ch * h * w + k] > v[ch * h * w + best] {
                                                    best = k;
                                                }
                                            }
                                            best
                                        }
                                    };
                                    arg[o] = best;
                                    out[o] = v[ch * h * w + best];
                                }
                            }
                        }
                        argmaxes.push(arg);
                        data.push(out);
                    }
                    (
                        Act {
                            data,
                            shape: vec![c, oh, ow],
                        },
                        Some(argmaxes),
                    )
                }
            };
            if let Some(d) = decisions {
                pattern.push(d);
            }
            acts.push(y);
        }
        // Loss and its gradient at the logits.
        let logits = acts.last().unwrap();
        let mut loss = 0.0;
        let mut grad: Vec<Vec<f64>> = Vec::with_capacity(n);
        for (z, &label) in logits.data.iter().zip(labels) {
            let scaled: Vec<f64> = z.iter().map(|v| v / temperature).collect();
            let m = scaled.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scaled.iter().map(|v| (v - m).exp()).collect();
            let s: f64 = e.iter().sum();
            loss += -(scaled[label] - m - s.ln()) / n as f64;
            grad.push(
                e.iter()
                    .enumerate()
                    .map(|(k, v)| {
                        (v / s - f64::from(u8::from(k == label))) / (n as f64 * temperature)
                    })
                    .collect(),
            );
        }
        // Backward.
        let mut grads = Params::new();
        let mut decisions = pattern.iter().rev();
        for (op, x) in self.ops.iter().zip(&acts).rev() {
            grad = match op {
                Op::Linear { weight, bias } => {
                    let (gw, gb, gx) = self.linear_back(x, &params[weight], &grad, weight);
                    grads.insert(weight.clone(), gw);
                    grads.insert(bias.clone(), gb);
                    gx
                }
                Op::Conv { weight, bias, pad } => {
                    let (gw, gb, gx) = self.conv_back(x, &params[weight], &grad, weight, *pad);
                    grads.insert(weight.clone(), gw);
                    grads.insert(bias.clone(), gb);
                    gx
                }
                Op::Relu => {
                    let gates = decisions.next().unwrap();
                    grad.iter()
                        .zip(gates)
                        .map(|(g, m)| g.iter().zip(m).map(|(&g, &m)| g * m as f64).collect())
                        .collect()
                }
                Op::MaxPool => {
                    let argmaxes = decisions.next().unwrap();
                    let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2]);
                    let (oh, ow) = (h / 2, w / 2);
                    grad.iter()
                        .zip(argmaxes)
                        .map(|(g, arg)| {
                            let mut gx = vec![0.0; c * h * w];
                            for ch in 0..c {
                                for o in 0..oh * ow {
                                    gx[ch * h * w + arg[ch * oh * ow + o]] += g[ch * oh * ow + o];
                                }
                            }
                            gx
                        })
                        .collect()
                }
            };
        }
        (loss, grads, Pattern(pattern))
    }

    fn linear(&self, x: &Act, w: &[f64], b: &[f64], name: &str) -> Act {
        let (din, dout) = (self.shapes[name][0], self.shapes[name][1]);
        let data = x
            .data
            .iter()
            .map(|v| {
                let mut y = b.to_vec();
                for i in 0..din {
                    let xi = v[i];
                    if xi != 0.0 {
                        for (o, yo) in y.iter_mut().enumerate() {
                            *yo += xi * w[i * dout + o];
                        }
                    }
                }
                y
            })
            .collect();
        Act {
            data,
            shape: vec![dout],
        }
    }

    fn linear_back(
        &self,
        x: &Act,
        w: &[f64],
        g: &[Vec<f64>],
        name: &str,
    ) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
        let (din, dout) = (self.shapes[name][0], self.shapes[name][1]);
        let mut gw = vec![0.0; din * dout];
        let mut gb = vec![0.0; dout];
        let mut gx = Vec::with_capacity(g.len());
        for (v, go) in x.data.iter().zip(g) {
            for (o, &d) in go.iter().enumerate() {
                gb[o] += d;
            }
            let mut back = vec![0.0; din];
            for i in 0..din {
                let row = &w[i * dout..(i + 1) * dout];
                back[i] = row.iter().zip(go).map(|(a, b)| a * b).sum();
                if v[i] != 0.0 {
                    for (o, &d) in go.iter().enumerate() {
                        gw[i * dout + o] += v[i] * d;
                    }
                }
            }
            gx.push(back);
        }
        (gw, gb, gx)
    }

    fn conv(&self, x: &Act, w: &[f64], b: &[f64], name: &str, pad: usize) -> Act {
        let s = &self.shapes[name];
        let (cout, cin, k) = (s[0], s[1], s[2]);
        let (h, wd) = (x.shape[1], x.shape[2]);
        let (oh, ow) = (h + 2 * pad + 1 - k, wd + 2 * pad + 1 - k);
        let data = x
            .data
            .iter()
            .map(|v| {
                let mut y = vec![0.0; cout * oh * ow];
                for o in 0..cout {
                    for i in 0..oh {
                        for j in 0..ow {
                            let mut sum = b[o];
                            for c in 0..cin {
                                for u in 0..k {
                                    let r = (i + u) as isize - pad as isize;
                                    if r < 0 || r >= h as isize {
                                        continue;
                                    }
                                    for q in 0..k {
                                        let col = (j + q) as isize - pad as isize;
                                        if col < 0 || col >= wd as isize {
                                            continue;
                                        }
                                        sum += w[((o * cin + c) * k + u) * k + q]
                                            * v[(c * h + r as usize) * wd + col as usize];
                                    }
                                }
                            }
                            y[(o * oh + i) * ow + j] = sum;
                        }
                    }
                }
                y
            })
            .collect();
        Act {
            data,
            shape: vec![cout, oh, ow],
        }
    }

    fn conv_back(
        &self,
        x: &Act,
        w: &[f64],
        g: &[Vec<f64>],
        name: &str,
        pad: usize,
    ) -> (Vec<f64>, Vec<f64>, Vec<Vec<f64>>) {
        let s = &self.shapes[name];
        let (cout, cin, k) = (s[0], s[1], s[2]);
        let (h, wd) = (x.shape[1], x.shape[2]);
        let (oh, ow) = (h + 2 * pad + 1 - k, wd + 2 * pad + 1 - k);
        let mut gw = vec![0.0; w.len()];
        let mut gb = vec![0.0; cout];
        let mut gx = Vec::with_capacity(g.len());
        for (v, go) in x.data.iter().zip(g) {
            let mut back = vec![0.0; cin * h * wd];
            for o in 0..cout {
                for i in 0..oh {
                    for j in 0..ow {
                        let d = go[(o * oh + i) * ow + j];
                        gb[o] += d;
                        for c in 0..cin {
                            for u in 0..k {
                                let r = (i + u) as isize - pad as isize;
                                if r < 0 || r >= h as isize {
                                    continue;
                                }
                                for q in 0..k {
                                    let col = (j + q) as isize - pad as isize;
                                    if col < 0 || col >= wd as isize {
                                        continue;
                                    }
                                    let xi = (c * h + r as usize) * wd + col as usize;
                                    let wi = ((o * cin + c) * k + u) * k + q;
                                    gw[wi] += d * v[xi];
                                    back[xi] += d * w[wi];
                                }
                            }
                        }
                    }
                }
            }
            gx.push(back);
        }
        (gw, gb, gx)
    }
}

/// θ + t·v over the parameters `v` names.
pub fn axpy(params: &Params, v: &Params, t: f64) -> Params {
    let mut out = params.clone();
    for (k, dv) in v {
        for (p, d) in out.get_mut(k).unwrap().iter_mut().zip(dv) {
            *p += t * d;
        }
    }
    out
}

pub fn dot(a: &Params, b: &Params) -> f64 {
    a.iter()
        .filter_map(|(k, x)| {
            b.get(k)
                .map(|y| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>())
        })
        .sum()
}

pub fn norm(a: &Params) -> f64 {
    dot(a, a).sqrt()
}

/// Cosine and relative L2 error of `estimate` against `reference`, over `reference`'s keys.
pub fn agreement(estimate: &Params, reference: &Params) -> (f64, f64) {
    let diff: f64 = reference
        .iter()
        .map(|(k, r)| {
            r.iter()
                .zip(&estimate[k])
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        .sqrt();
    let cos = dot(estimate, reference) / (norm(estimate) * norm(reference));
    (cos, diff / norm(reference))
}
