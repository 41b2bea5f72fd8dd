//! Choosing a device by name.

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A backend this build cannot give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    #[error("backend {0} is not compiled in; rebuild with the `{0}` feature")]
    NotCompiled(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// burn-ndarray on the CPU (the default).
    #[default]
    Ndarray,
    /// burn-wgpu: Vulkan/Metal/DX12 natively, WebGPU in browsers.
    Wgpu,
    /// burn-flex, burn 0.22's pure-Rust CPU backend (the `flex` feature).
    Flex,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [BackendKind::Ndarray, BackendKind::Flex, BackendKind::Wgpu];

    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Flex => "flex",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ndarray" | "cpu" => Some(BackendKind::Ndarray),
            "wgpu" | "gpu" => Some(BackendKind::Wgpu),
            "flex" => Some(BackendKind::Flex),
            _ => None,
        }
    }

    /// Backends compiled into this build.
    pub fn available() -> Vec<BackendKind> {
        let mut kinds = Vec::new();
        if cfg!(feature = "ndarray") {
            kinds.push(BackendKind::Ndarray);
        }
        if cfg!(feature = "flex") {
            kinds.push(BackendKind::Flex);
        }
        if cfg!(any(feature = "wgpu", feature = "webgpu")) {
            kinds.push(BackendKind::Wgpu);
        }
        kinds
    }

    /// The device (without autodiff), or an error naming the missing feature.
    pub fn device(self) -> Result<Device, BackendError> {
        match self {
            // burn 0.22 marks NdArray deprecated in favour of Flex; it is still the reference
            // CPU backend of this lab (see the bench table for both).
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            BackendKind::Ndarray => Ok(Device::ndarray()),
            #[cfg(any(feature = "wgpu", feature = "webgpu"))]
            BackendKind::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "flex")]
            BackendKind::Flex => Ok(Device::flex()),
            #[allow(unreachable_patterns)]
            other => Err(BackendError::NotCompiled(other.name())),
        }
    }
}
