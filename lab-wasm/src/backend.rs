//! Picking the backend: WebGPU when the browser offers an adapter, else the CPU.

use js_sys::Reflect;
use lab_core::backend::BackendKind;
use lab_core::burn::tensor::{Device, Tensor, TensorData};
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

/// Asks `navigator.gpu` for an adapter without touching burn, so a browser without WebGPU
/// never reaches wgpu's initialisation.
async fn webgpu_adapter_available() -> Result<(), String> {
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
    Ok(())
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

/// `preference`: "auto" (WebGPU if possible), "webgpu" (fail without it), or "cpu".
pub async fn choose(preference: &str) -> Result<Chosen, String> {
    match preference {
        "cpu" | "ndarray" => return Ok(cpu("CPU (burn-ndarray), as requested".into())),
        "auto" | "webgpu" | "wgpu" => {}
        other => {
            return Err(format!(
                "unknown backend {other:?}: use auto, webgpu or cpu"
            ));
        }
    }
    let strict = preference != "auto";
    let attempt = async {
        webgpu_adapter_available().await?;
        let device = Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| format!("burn-wgpu could not start on WebGPU: {e}"))?;
        smoke_test(&device).await?;
        Ok::<Device, String>(device)
    };
    match attempt.await {
        Ok(device) => Ok(Chosen {
            kind: BackendKind::Wgpu,
            device,
            note: "WebGPU (burn-wgpu)".into(),
        }),
        Err(reason) if strict => Err(reason),
        Err(reason) => Ok(cpu(format!("CPU (burn-ndarray): {reason}"))),
    }
}
