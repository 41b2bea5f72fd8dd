//! lab-wasm in a real browser (wasm-bindgen-test-runner in headless Chromium, see scripts/test-browser.sh):
//! the data path on real MNIST, short IMP runs on the CPU with mask invariants, cancel and
//! resume, and the WebGPU backend where the browser offers an adapter.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Map, Promise, Reflect};
use lab_core::base::mask::Mask;
use lab_core::methods::imp::ImpReport;
use lab_wasm::Lab;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

macro_rules! mnist_file {
    ($name:literal) => {
        include_bytes!(concat!(env!("LTH_WASM_TEST_MNIST"), "/", $name)).to_vec()
    };
}

fn mnist_files() -> [Vec<u8>; 4] {
    [
        mnist_file!("train-images-idx3-ubyte.gz"),
        mnist_file!("train-labels-idx1-ubyte.gz"),
        mnist_file!("t10k-images-idx3-ubyte.gz"),
        mnist_file!("t10k-labels-idx1-ubyte.gz"),
    ]
}

async fn cpu_lab(records: Option<Map>) -> Lab {
    let lab = Lab::new(records);
    JsFuture::from(lab.init_backend("cpu".into(), None))
        .await
        .expect("the CPU backend always starts");
    let [a, b, c, d] = mnist_files();
    lab.load_dataset("mnist", a, b, c, d)
        .expect("real MNIST loads");
    lab
}

/// A callback that records every event.
fn recorder() -> (Function, Rc<RefCell<Vec<serde_json::Value>>>) {
    let events = Rc::new(RefCell::new(Vec::new()));
    let sink = events.clone();
    let closure = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let text: String = js_sys::JSON::stringify(&event).unwrap().into();
        sink.borrow_mut().push(serde_json::from_str(&text).unwrap());
    });
    (closure.into_js_value().unchecked_into(), events)
}

fn as_json(value: &JsValue) -> serde_json::Value {
    let text: String = js_sys::JSON::stringify(value).unwrap().into();
    serde_json::from_str(&text).unwrap()
}

async fn await_promise(promise: Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| {
        Reflect::get(&e, &"message".into())
            .ok()
            .and_then(|m| m.as_string())
            .unwrap_or_else(|| format!("{e:?}"))
    })
}

/// Runs IMP to the end, ignoring events.
async fn run_quietly(lab: &Lab, config: &serde_json::Value) -> ImpReport {
    let (on_event, _) = recorder();
    let config = js_sys::JSON::parse(&config.to_string()).unwrap();
    let report = await_promise(lab.run_imp(config, on_event).unwrap())
        .await
        .unwrap();
    serde_json::from_value(as_json(&report)).unwrap()
}

fn short_imp(rounds: usize, iterations: usize) -> JsValue {
    let config = serde_json::json!({
        "rounds": rounds,
        "train": { "iterations": iterations, "eval_every": 10 },
        "train_subset": 1200,
        "eval_subset": 300,
    });
    js_sys::JSON::parse(&config.to_string()).unwrap()
}

fn masks_in(records: &Map) -> Vec<(String, Mask)> {
    let mut masks = Vec::new();
    records.for_each(&mut |value, key| {
        let key = key.as_string().unwrap();
        if key.ends_with("/mask.json") {
            let bytes = js_sys::Uint8Array::new(&value).to_vec();
            masks.push((
                key,
                Mask::from_json(&String::from_utf8(bytes).unwrap()).unwrap(),
            ));
        }
    });
    masks.sort_by(|a, b| a.0.cmp(&b.0));
    masks
}

#[wasm_bindgen_test]
async fn real_mnist_loads_with_the_lth_split_and_bad_files_are_refused() {
    let lab = Lab::new(None);
    let [a, b, c, d] = mnist_files();
    let sizes = as_json(
        &lab.load_dataset("mnist", a.clone(), b.clone(), c.clone(), d.clone())
            .unwrap(),
    );
    assert_eq!(sizes["train"], 55_000);
    assert_eq!(sizes["validation"], 5_000);
    assert_eq!(sizes["test"], 10_000);

    let truncated = c[..c.len() / 2].to_vec();
    let error = lab
        .load_dataset("mnist", a.clone(), b.clone(), truncated, d.clone())
        .unwrap_err();
    let message = Reflect::get(&error, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(
        message.contains("t10k-images"),
        "the error names the file: {message}"
    );

    // Fashion-MNIST's checksums do not match MNIST's bytes.
    let error = lab.load_dataset("fashion-mnist", a, b, c, d).unwrap_err();
    let message = Reflect::get(&error, &"message".into())
        .unwrap()
        .as_string()
        .unwrap();
    assert!(
        message.contains("checksum") || message.contains("md5"),
        "{message}"
    );
}

#[wasm_bindgen_test]
async fn imp_rounds_prune_by_the_counting_rule_with_nested_masks_and_a_control() {
    let records = Map::new();
    let lab = cpu_lab(Some(records.clone())).await;
    let config = short_imp(3, 30);
    Reflect::set(
        &config,
        &"controls".into(),
        &js_sys::JSON::parse(r#"["reinit"]"#).unwrap(),
    )
    .unwrap();
    let (on_event, events) = recorder();
    let report = await_promise(lab.run_imp(config, on_event).unwrap())
        .await
        .unwrap();
    let report: ImpReport = serde_json::from_value(as_json(&report)).unwrap();

    assert_eq!(report.backend, "ndarray");
    assert_eq!(report.rounds.len(), 3);
    // LeNet-300-100: 20% of hidden and 10% of output weights per round, one rounding per round.
    let mut expected = [784 * 300, 300 * 100, 100 * 10];
    for (round, result) in report.rounds.iter().enumerate() {
        let remaining: Vec<usize> = result.layers.iter().map(|l| l.remaining_weights).collect();
        assert_eq!(remaining, expected, "round {round}");
        for (count, rate) in expected.iter_mut().zip([0.2, 0.2, 0.1]) {
            *count -= (rate * *count as f64).round() as usize;
        }
        assert!(
            result.test_accuracy > 0.5,
            "round {round} learned: {}",
            result.test_accuracy
        );
    }
    let reinit = &report.controls["reinit"];
    assert_eq!(reinit.len(), 3);
    for (ticket, control) in report.rounds.iter().zip(reinit) {
        assert_eq!(
            ticket.layers, control.layers,
            "the control trains the ticket's mask"
        );
    }

    // Masks in the page's records are nested, round after round.
    let masks = masks_in(&records);
    assert_eq!(
        masks.len(),
        3,
        "masks of rounds 1..=3: {:?}",
        masks.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    for pair in masks.windows(2) {
        assert!(
            pair[1].1.is_subset_of(&pair[0].1),
            "{} ⊆ {}",
            pair[1].0,
            pair[0].0
        );
    }

    // Events: rounds of both branches, progress, evaluations.
    {
        let events = events.borrow();
        let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
        assert_eq!(count("round"), 6);
        assert!(count("step") >= 6 && count("eval") >= 6 * 3);
    }

    // The first-layer picture counts, per pixel, the units that still see it.
    let picture = as_json(&lab.first_layer());
    let counts: Vec<u64> = serde_json::from_value(picture["counts"].clone()).unwrap();
    assert_eq!(counts.len(), 784);
    let kept: u64 = counts.iter().sum();
    assert_eq!(kept as usize, report.rounds[2].layers[0].remaining_weights);

    // The trained network classifies real test digits.
    let data = lab_core::base::data::Mnist::from_file_bytes(
        lab_core::base::data::DatasetKind::Mnist,
        mnist_files(),
        lab_core::base::data::Checksums::Skip,
    )
    .unwrap();
    let mut correct = 0;
    for i in 0..20 {
        let pixels: Vec<f32> = data
            .test
            .image(i)
            .iter()
            .map(|&p| f32::from(p) / 255.0)
            .collect();
        let probabilities = await_promise(lab.classify(pixels).unwrap()).await.unwrap();
        let probabilities = js_sys::Float32Array::new(&probabilities).to_vec();
        assert_eq!(probabilities.len(), 10);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-3);
        let best = (0..10)
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap();
        correct += usize::from(best == usize::from(data.test.labels[i]));
    }
    assert!(correct >= 12, "{correct}/20 test digits right");

    // The accuracy chart is an SVG with a line per branch.
    let svg = Lab::chart_svg(serde_wasm(&report), "accuracy").unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("reinit"),
        "{}",
        &svg[..200.min(svg.len())]
    );
}

fn serde_wasm(report: &ImpReport) -> JsValue {
    js_sys::JSON::parse(&serde_json::to_string(report).unwrap()).unwrap()
}

#[wasm_bindgen_test]
async fn a_cancelled_run_keeps_finished_rounds_and_a_rerun_resumes_after_them() {
    let records = Map::new();
    let lab = Rc::new(cpu_lab(Some(records.clone())).await);
    // Cancel as soon as round 1 starts.
    let canceller = lab.clone();
    let on_event = Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let event = as_json(&event);
        if event["type"] == "round-start" && event["round"] == 1 {
            canceller.cancel();
        }
    });
    let error = await_promise(
        lab.run_imp(
            short_imp(3, 20),
            on_event.as_ref().unchecked_ref::<Function>().clone(),
        )
        .unwrap(),
    )
    .await
    .unwrap_err();
    assert!(error.contains("cancel"), "{error}");
    assert!(!lab.running());
    let partial: ImpReport = serde_json::from_value(as_json(&lab.current_report())).unwrap();
    assert_eq!(
        partial.rounds.len(),
        1,
        "round 0 finished before the cancel"
    );

    // The rerun (a fresh lab on the same records, as after a reload) trains only rounds 1 and 2.
    let resumed = cpu_lab(Some(records)).await;
    let (on_event, events) = recorder();
    let report = await_promise(resumed.run_imp(short_imp(3, 20), on_event).unwrap())
        .await
        .unwrap();
    let report: ImpReport = serde_json::from_value(as_json(&report)).unwrap();
    assert_eq!(report.rounds.len(), 3);
    assert_eq!(
        report.rounds[0], partial.rounds[0],
        "round 0 is read back, not retrained"
    );
    let started: Vec<u64> = events
        .borrow()
        .iter()
        .filter(|e| e["type"] == "round-start")
        .map(|e| e["round"].as_u64().unwrap())
        .collect();
    assert_eq!(started, vec![1, 2]);
}

#[wasm_bindgen_test]
async fn dense_training_is_round_zero_and_arms_the_classifier() {
    let records = Map::new();
    let lab = cpu_lab(Some(records.clone())).await;
    assert_eq!(lab.trained_round(), None);
    let (on_event, events) = recorder();
    let result = await_promise(lab.train(short_imp(5, 40), on_event).unwrap())
        .await
        .unwrap();
    let result = as_json(&result);
    assert_eq!(result["round"], 0);
    assert_eq!(result["weights_remaining"], 1.0, "training does not prune");
    let accuracy = result["test_accuracy"].as_f64().unwrap();
    assert!(
        accuracy > 0.5,
        "40 Adam steps reach well above chance: {accuracy}"
    );
    assert!(events.borrow().iter().any(|e| e["type"] == "step"));
    // One round only, although the config asked for five: no mask for round 1 was used.
    let rounds = events
        .borrow()
        .iter()
        .filter(|e| e["type"] == "round")
        .count();
    assert_eq!(rounds, 1);

    assert_eq!(lab.trained_round(), Some(0));
    let probabilities = await_promise(lab.classify(vec![0.0; 784]).unwrap())
        .await
        .unwrap();
    let probabilities = js_sys::Float32Array::new(&probabilities).to_vec();
    assert_eq!(probabilities.len(), 10);
    let total: f32 = probabilities.iter().sum();
    assert!((total - 1.0).abs() < 1e-4, "softmax sums to 1: {total}");
}

#[wasm_bindgen_test]
async fn impossible_configs_are_refused_before_running() {
    let lab = cpu_lab(None).await;
    let (on_event, _) = recorder();
    let bad = js_sys::JSON::parse(r#"{"rounds": 0}"#).unwrap();
    assert!(lab.run_imp(bad, on_event.clone()).is_err());
    let bad = js_sys::JSON::parse(r#"{"train": {"batch_size": 0}}"#).unwrap();
    assert!(lab.run_imp(bad, on_event).is_err());
    assert!(!lab.running());
}

/// WebGPU where the browser offers it (scripts/test-browser.sh starts Chromium with
/// `--enable-unsafe-webgpu`, which gives SwiftShader's adapter); built with
/// `LTH_REQUIRE_WEBGPU=1`, a missing adapter fails the test instead of skipping it.
#[wasm_bindgen_test]
async fn webgpu_trains_a_few_steps_and_agrees_with_the_cpu_on_theta0() {
    let gpu_records = Map::new();
    let lab = Lab::new(Some(gpu_records.clone()));
    let chosen = await_promise(lab.init_backend("webgpu".into(), None)).await;
    if let Err(reason) = chosen {
        assert!(
            option_env!("LTH_REQUIRE_WEBGPU").is_none(),
            "WebGPU required but: {reason}"
        );
        console_log!("skipped: no WebGPU here ({reason})");
        return;
    }
    assert_eq!(lab.backend().as_deref(), Some("wgpu"));
    let [a, b, c, d] = mnist_files();
    lab.load_dataset("mnist", a, b, c, d).unwrap();
    let config = serde_json::json!({
        "rounds": 2,
        "train": { "iterations": 4, "eval_every": 2 },
        "train_subset": 240,
        "eval_subset": 100,
    });
    let report = run_quietly(&lab, &config).await;
    assert_eq!(report.backend, "wgpu");
    assert_eq!(report.rounds.len(), 2);
    assert_eq!(report.rounds[1].layers[0].remaining_weights, 188_160);
    // θ0 is backend-independent bit for bit: the round-0 ticket (θ0 under the dense mask) that
    // each backend recorded is the same.
    let cpu_records = Map::new();
    let cpu_report = run_quietly(&cpu_lab(Some(cpu_records.clone())).await, &config).await;
    let theta0 = |records: &Map, report: &ImpReport| {
        let key = format!("{}/round-00/ticket.safetensors", report.run);
        let bytes = js_sys::Uint8Array::new(&records.get(&key.into())).to_vec();
        lab_core::base::ticket::Ticket::from_safetensors(&bytes)
            .expect("round 0's ticket")
            .weights
    };
    assert_eq!(
        theta0(&gpu_records, &report),
        theta0(&cpu_records, &cpu_report)
    );
}

/// The CSR engine as compiled for wasm32 + SIMD128 (other code than natively) against burn's
/// dense forward pass of the masked network, at full, 5% and zero density.
#[wasm_bindgen_test]
async fn sparse_forward_in_wasm_equals_the_dense_masked_forward() {
    use lab_core::base::model::{Classifier, ModelKind, Net, init_model};
    use lab_core::base::params::{load_weights, read_weights};
    use lab_core::burn::tensor::{Tensor, TensorData};
    use lab_core::pruning::prune::{PruneScope, magnitudes, to_density};
    #[allow(deprecated)]
    let device = lab_core::burn::tensor::Device::ndarray();
    let mut rng = lab_core::base::rng::Rng::new(5);
    let images: Vec<f32> = (0..7 * 784).map(|_| rng.normal() as f32).collect();
    for kind in [ModelKind::Lenet300, ModelKind::Lenet5] {
        let net: Net = init_model(kind, 1, &device);
        let weights = read_weights(&net).await.unwrap();
        let stages = net.stages().unwrap();
        for density in [1.0, 0.05, 0.0] {
            let mask = to_density(
                &Mask::dense_for(&net),
                &magnitudes(&weights),
                density,
                PruneScope::PerLayer,
            );
            let masked = lab_core::base::mask::masked_weights(&weights, &mask);
            let sparse =
                lab_core::deploy::sparse::SparseNet::new(&stages, &weights, &mask).unwrap();
            let found = sparse.forward(&images).unwrap();
            let x = Tensor::<2>::from_data(TensorData::new(images.clone(), [7, 784]), &device);
            let dense = load_weights(net.clone(), &masked).forward(x);
            let expected = dense
                .into_data_async()
                .await
                .unwrap()
                .try_to_vec::<f32>()
                .unwrap();
            for (a, b) in found.iter().zip(&expected) {
                assert!(
                    (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                    "{kind:?} at {density}: {a} vs {b}"
                );
            }
        }
    }
}
