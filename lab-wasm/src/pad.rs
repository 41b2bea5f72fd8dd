//! The digit pad: a drawn digit classified by the latest trained network, densely on the
//! backend and, for `classifyTimed`, also by the sparse ticket on the CSR engine, both timed.

use std::hint::black_box;
use std::rc::Rc;

use js_sys::Promise;
use lab_core::base::error::DeviceError;
use lab_core::base::model::{Classifier, ModelKind, Net, init_model};
use lab_core::base::params::load_weights;
use lab_core::burn::tensor::activation::softmax;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
use lab_core::deploy::sparse::SparseNet;
use lab_core::report::bench::time_us;
use serde_json::json;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::events::{self, Trained};
use crate::{Backend, Lab, js_error};

/// Seconds each forward pass is timed over: one call is below the browser clock's resolution.
const TIMING_S: f64 = 0.03;

#[wasm_bindgen]
impl Lab {
    /// Round of the network that `classify` and the first-layer picture use, if any.
    #[wasm_bindgen(getter, js_name = trainedRound)]
    pub fn trained_round(&self) -> Option<usize> {
        self.trained.borrow().as_ref().map(|t| t.round)
    }

    /// Class probabilities for a 28×28 image (row-major intensities in [0, 1], white on
    /// black) from the latest trained ticket.
    pub fn classify(&self, pixels: Vec<f32>) -> Result<Promise, JsValue> {
        let (trained, backend, input) = self.pad_request(&pixels)?;
        let model_kind = trained.model;
        Ok(future_to_promise(async move {
            let input = Tensor::<2>::from_data(TensorData::new(input, [1, 784]), &backend.device);
            let probabilities = forward(model_kind, &trained, input, &backend.device);
            let values = probabilities
                .into_data_async()
                .await
                .map_err(|e| js_error(format!("{e:?}")))?
                .try_to_vec::<f32>()
                .map_err(|e| js_error(format!("{e:?}")))?;
            Ok(js_sys::Float32Array::from(&values[..]).into())
        }))
    }

    /// The digit pad's answer from the sparse ticket: class probabilities computed by the CSR
    /// engine (on the page's thread, wasm SIMD128) from the latest trained network, next to
    /// the dense forward pass on the current backend, each timed over repeated calls (lab-core's
    /// benchmark timer, about 30 ms each). Resolves to `{probabilities, dense_probabilities,
    /// sparse_us, dense_us, nonzeros, weights}`; `sparse_us` is null for a network that is not
    /// sequential (the ViT).
    #[wasm_bindgen(js_name = classifyTimed)]
    pub fn classify_timed(&self, pixels: Vec<f32>) -> Result<Promise, JsValue> {
        let (trained, backend, input) = self.pad_request(&pixels)?;
        Ok(future_to_promise(async move {
            let model: Net = load_weights(
                init_model(trained.model, 0, &backend.device),
                &trained.weights,
            );
            let sparse = match model.stages() {
                Some(stages) => Some(
                    SparseNet::new(&stages, &trained.weights, &trained.mask).map_err(js_error)?,
                ),
                None => None,
            };
            let dense_once = || async {
                let x = Tensor::<2>::from_data(
                    TensorData::new(input.clone(), [1, 784]),
                    &backend.device,
                );
                softmax(model.forward(x), 1)
                    .into_data_async()
                    .await
                    .map_err(|e| DeviceError::new("probabilities", e))?
                    .try_to_vec::<f32>()
                    .map_err(|e| DeviceError::new("probabilities", e))
            };
            let dense = dense_once().await.map_err(js_error)?;
            let dense_us = time_us(TIMING_S, || async { Ok(dense_once().await.map(drop)?) })
                .await
                .map_err(js_error)?;
            let (probabilities, sparse_us, nonzeros) = match &sparse {
                Some(net) => {
                    let logits = net.forward(&input).map_err(js_error)?;
                    let us = time_us(TIMING_S, || async {
                        Ok(black_box(net.forward(black_box(&input))).map(drop)?)
                    })
                    .await
                    .map_err(js_error)?;
                    (softmax_host(&logits), Some(us), net.size().nonzeros)
                }
                None => (dense.clone(), None, trained.mask.remaining()),
            };
            Ok(events::to_js(&json!({
                "probabilities": probabilities,
                "dense_probabilities": dense,
                "sparse_us": sparse_us,
                "dense_us": dense_us,
                "nonzeros": nonzeros,
                "weights": trained.mask.total(),
                "backend": backend.kind.name(),
            })))
        }))
    }
}

impl Lab {
    /// What classifying a drawn digit needs: 784 pixels, a trained network, a backend; the
    /// pixels standardised as the network's data set was.
    fn pad_request(&self, pixels: &[f32]) -> Result<(Trained, Rc<Backend>, Vec<f32>), JsValue> {
        if pixels.len() != 784 {
            return Err(js_error(format!(
                "expected 784 pixels, got {}",
                pixels.len()
            )));
        }
        let trained = self
            .trained
            .borrow()
            .clone()
            .ok_or_else(|| js_error("no trained network yet: run an experiment first"))?;
        let backend = self.backend_in_use()?;
        // The network was trained on the loaded data set's standardisation.
        let stats = self
            .data
            .borrow()
            .as_ref()
            .map(|data| data.train.pixels)
            .unwrap_or_default();
        Ok((
            trained,
            backend,
            pixels.iter().map(|&p| stats.standardise(p)).collect(),
        ))
    }
}

fn softmax_host(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|&v| v / sum).collect()
}

fn forward(kind: ModelKind, trained: &Trained, input: Tensor<2>, device: &Device) -> Tensor<2> {
    let model: Net = load_weights(init_model(kind, 0, device), &trained.weights);
    softmax(model.forward(input), 1)
}
