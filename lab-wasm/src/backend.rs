//! Picking the backend: WebGPU when the browser offers an adapter, else the CPU.

use js_sys::Reflect;
use lab_core::base::backend::BackendKind;
use lab_core::base::data::Mnist;
use lab_core::base::model::ModelKind;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
use lab_core::training::observer::Pause;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The backend in use and why it was chosen.
pub struct Chosen {
    pub kind: BackendKind,
    pub device: Device,
    /// What the page shows, e.g. why WebGPU was not used.
    pub note: String,
}

fn cpu(note: String) -> Chosen {
    #[allow(deprecated)] // NdArray: the CPU backend that builds for wasm32 here.
    let device = Device::ndarray();
    Chosen {
        kind: BackendKind::Ndarray,
        device,
        note,
    }
}

/// What the browser's WebGPU adapter says of itself.
pub struct Adapter {
    /// A software or fallback adapter (Chromium's SwiftShader): far slower than the CPU path
    /// for these networks, so "auto" never picks it.
    pub fallback: bool,
    pub description: String,
}

fn text_of(object: &JsValue, key: &str) -> String {
    Reflect::get(object, &key.into())
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// Asks `navigator.gpu` for an adapter without touching burn, so a browser without WebGPU
/// never reaches wgpu's initialisation.
async fn webgpu_adapter() -> Result<Adapter, String> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into())
        .map_err(|_| "no navigator".to_string())?;
    let gpu = Reflect::get(&navigator, &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no navigator.gpu (WebGPU disabled or unsupported)".into());
    }
    let request: js_sys::Function = Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into().ok())
        .ok_or("navigator.gpu.requestAdapter is missing")?;
    let promise: js_sys::Promise = request
        .call0(&gpu)
        .ok()
        .and_then(|p| p.dyn_into().ok())
        .ok_or("requestAdapter() failed")?;
    let adapter = JsFuture::from(promise)
        .await
        .map_err(|e| format!("requestAdapter() rejected: {e:?}"))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("navigator.gpu.requestAdapter() returned no adapter".into());
    }
    // `info.isFallbackAdapter` (current), `isFallbackAdapter` (older Chromium), or a
    // SwiftShader/software name.
    let info = Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let flag = |object: &JsValue| {
        Reflect::get(object, &"isFallbackAdapter".into())
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let description = ["vendor", "architecture", "device", "description"]
        .iter()
        .map(|key| text_of(&info, key))
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let lower = description.to_lowercase();
    let software = ["swiftshader", "software", "llvmpipe", "lavapipe", "warp"]
        .iter()
        .any(|name| lower.contains(name));
    Ok(Adapter {
        fallback: flag(&adapter) || flag(&info) || software,
        description: if description.is_empty() {
            "unnamed adapter".into()
        } else {
            description
        },
    })
}

/// A small matmul read back asynchronously: proves the device computes, not just exists.
async fn smoke_test(device: &Device) -> Result<(), String> {
    let a = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2]), device);
    let product = a.clone().matmul(a);
    let values = product
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    if values == [7.0, 10.0, 15.0, 22.0] {
        Ok(())
    } else {
        Err(format!("WebGPU computed a wrong 2×2 matmul: {values:?}"))
    }
}

/// Milliseconds per training step of each path, measured by the calibration.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Calibration {
    pub cpu_ms: f64,
    pub webgpu_ms: f64,
}

/// Steps timed per path (after two warm-up steps): enough to see a 2× difference, short
/// enough to take a second or two on a real GPU.
const CALIBRATION_STEPS: usize = 5;

async fn step_ms(
    data: &Mnist,
    device: &Device,
    model: ModelKind,
    yielding: bool,
) -> Result<f64, String> {
    let mut pause = || -> Option<Pause<'static>> {
        yielding.then(|| Box::pin(crate::next_tick()) as Pause<'static>)
    };
    lab_core::report::bench::step_timing_async(
        data,
        device,
        model,
        2,
        CALIBRATION_STEPS,
        &mut pause,
    )
    .await
    .map(|t| t.ms_per_step)
    .map_err(|e| e.to_string())
}

/// `preference`: "auto" (WebGPU only on a hardware adapter, and only if a short calibration
/// on `calibrate_on`'s model finds it faster than the CPU), "calibrate" (the same, also timing
/// a software adapter), "webgpu" (fail without it) or "cpu".
pub async fn choose(
    preference: &str,
    calibrate_on: Option<(&Mnist, ModelKind)>,
) -> Result<(Chosen, Option<Calibration>), String> {
    match preference {
        "cpu" | "ndarray" => return Ok((cpu("CPU (burn-ndarray), as requested".into()), None)),
        "auto" | "calibrate" | "webgpu" | "wgpu" => {}
        other => {
            return Err(format!(
                "unknown backend {other:?}: use auto, calibrate, webgpu or cpu"
            ));
        }
    }
    let strict = matches!(preference, "webgpu" | "wgpu");
    let adapter = match webgpu_adapter().await {
        Ok(adapter) => adapter,
        Err(reason) if strict => return Err(reason),
        Err(reason) => return Ok((cpu(format!("CPU (burn-ndarray): {reason}")), None)),
    };
    if preference == "auto" && adapter.fallback {
        return Ok((
            cpu(format!(
                "CPU (burn-ndarray): auto skips the software WebGPU adapter ({}); choose WebGPU to use it",
                adapter.description
            )),
            None,
        ));
    }
    let attempt = async {
        let device = Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| format!("burn-wgpu could not start on WebGPU: {e}"))?;
        smoke_test(&device).await?;
        Ok::<Device, String>(device)
    };
    let device = match attempt.await {
        Ok(device) => device,
        Err(reason) if strict => return Err(reason),
        Err(reason) => return Ok((cpu(format!("CPU (burn-ndarray): {reason}")), None)),
    };
    let webgpu = |note: String| Chosen {
        kind: BackendKind::Wgpu,
        device: device.clone(),
        note,
    };
    let Some((data, model)) = calibrate_on.filter(|_| !strict) else {
        return Ok((
            webgpu(format!("WebGPU (burn-wgpu) on {}", adapter.description)),
            None,
        ));
    };
    let cpu_device = cpu(String::new()).device;
    let calibration = Calibration {
        cpu_ms: step_ms(data, &cpu_device, model, true).await?,
        webgpu_ms: step_ms(data, &device, model, false).await?,
    };
    let measured = format!(
        "{} training steps of {} took {:.1} ms/step on the CPU, {:.1} ms/step on WebGPU ({})",
        CALIBRATION_STEPS,
        model.name(),
        calibration.cpu_ms,
        calibration.webgpu_ms,
        adapter.description
    );
    Ok(if calibration.webgpu_ms < calibration.cpu_ms {
        (
            webgpu(format!("WebGPU (burn-wgpu), measured faster: {measured}")),
            Some(calibration),
        )
    } else {
        (
            cpu(format!("CPU (burn-ndarray), measured faster: {measured}")),
            Some(calibration),
        )
    })
}
