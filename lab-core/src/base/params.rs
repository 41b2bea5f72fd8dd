//! Reading and writing the float parameters of *any* burn [`Module`] by their path
//! (`"fc1.weight"`), through burn's [`ModuleVisitor`] and [`ModuleMapper`]: no per-model code.

use std::collections::BTreeMap;

use crate::base::error::DeviceError;
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor, TensorData};

/// Tracks the dotted path of the parameter being visited, and the type of its container.
#[derive(Debug, Default, Clone)]
pub struct PathTracker {
    names: Vec<String>,
    containers: Vec<String>,
}

impl PathTracker {
    pub fn enter(&mut self, name: &str, container_type: &str) {
        self.names.push(name.to_string());
        self.containers.push(container_type.to_string());
    }

    pub fn exit(&mut self) {
        self.names.pop();
        self.containers.pop();
    }

    /// The dotted path, without the variants of enum modules: a network wrapped in
    /// [`crate::base::model::Net`] keeps the paths it has on its own.
    pub fn path(&self) -> String {
        self.names
            .iter()
            .zip(&self.containers)
            .filter(|(_, container)| !container.starts_with("Enum:"))
            .map(|(name, _)| name.as_str())
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Whether the current parameter is a connection weight we prune by default: a tensor of
    /// rank ≥ 2 named `weight` directly inside a Linear or Conv layer. Biases, norms and
    /// embeddings are not pruned.
    pub fn is_prunable(&self, rank: usize) -> bool {
        let named_weight = self.names.last().is_some_and(|n| n == "weight");
        let in_layer = self.containers.last().is_some_and(|c| {
            matches!(
                c.as_str(),
                "Struct:Linear" | "Struct:Conv1d" | "Struct:Conv2d" | "Struct:Conv3d"
            )
        });
        rank >= 2 && named_weight && in_layer
    }
}

/// A float parameter of rank `D`.
pub type FloatParam<const D: usize> = Param<Tensor<D>>;

/// A pass over a module's float parameters that is told where each one sits: the one place
/// that keeps burn's `enter_module`/`exit_module` bookkeeping (see [`visit_paths`]).
pub trait PathVisitor {
    fn visit_at<const D: usize>(&mut self, at: &PathTracker, param: &FloatParam<D>);
}

/// A rewrite of a module's float parameters that is told where each one sits
/// (see [`map_paths`]).
pub trait PathMapper {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D>;
}

struct Tracked<T> {
    tracker: PathTracker,
    inner: T,
}

impl<T: PathVisitor> ModuleVisitor for Tracked<T> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.inner.visit_at(&self.tracker, param);
    }
}

impl<T: PathMapper> ModuleMapper for Tracked<T> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        self.inner.map_at(&self.tracker, param)
    }
}

/// Runs `visitor` over the float parameters of `module` and hands it back.
pub fn visit_paths<M: Module, V: PathVisitor>(module: &M, visitor: V) -> V {
    let mut tracked = Tracked {
        tracker: PathTracker::default(),
        inner: visitor,
    };
    module.visit(&mut tracked);
    tracked.inner
}

/// Rewrites the float parameters of `module` with `mapper`; hands both back.
pub fn map_paths<M: Module, P: PathMapper>(module: M, mapper: P) -> (M, P) {
    let mut tracked = Tracked {
        tracker: PathTracker::default(),
        inner: mapper,
    };
    let module = module.map(&mut tracked);
    (module, tracked.inner)
}

/// A parameter copied to the host.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl HostTensor {
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// All float parameters of a module on the host, by path (sorted).
pub type Weights = BTreeMap<String, HostTensor>;

/// Metadata of one float parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    pub path: String,
    pub shape: Vec<usize>,
    pub prunable: bool,
}

struct Collector {
    infos: Vec<ParamInfo>,
    tensors: Vec<Tensor<1>>,
    keep_tensors: bool,
}

impl PathVisitor for Collector {
    fn visit_at<const D: usize>(&mut self, at: &PathTracker, param: &FloatParam<D>) {
        let value = param.val();
        let shape = value.dims().to_vec();
        self.infos.push(ParamInfo {
            path: at.path(),
            shape: shape.clone(),
            prunable: at.is_prunable(D),
        });
        if self.keep_tensors {
            let n = shape.iter().product::<usize>();
            self.tensors.push(value.detach().reshape([n]));
        }
    }
}

fn collect<M: Module>(module: &M, keep_tensors: bool) -> Collector {
    let collector = Collector {
        infos: Vec::new(),
        tensors: Vec::new(),
        keep_tensors,
    };
    visit_paths(module, collector)
}

/// The float parameters of `module`, in visiting order.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    collect(module, false).infos
}

/// The parameters we prune by default (see [`PathTracker::is_prunable`]).
pub fn prunable_params<M: Module>(module: &M) -> Vec<ParamInfo> {
    param_infos(module)
        .into_iter()
        .filter(|info| info.prunable)
        .collect()
}

/// Copies every float parameter to the host with burn's async reads (works in wasm32).
pub async fn read_weights<M: Module>(module: &M) -> Result<Weights, DeviceError> {
    let collector = collect(module, true);
    let mut weights = Weights::new();
    for (info, tensor) in collector.infos.into_iter().zip(collector.tensors) {
        let data = tensor
            .into_data_async()
            .await
            .map_err(|e| DeviceError::new(&info.path, e))?;
        let values = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| DeviceError::new(&info.path, e))?;
        weights.insert(
            info.path,
            HostTensor {
                shape: info.shape,
                values,
            },
        );
    }
    Ok(weights)
}

struct GradientCollector<'a> {
    grads: &'a burn::optim::GradientsParams,
    wanted: &'a dyn Fn(&str) -> bool,
    found: Vec<(String, Vec<usize>, Tensor<1>)>,
}

impl PathVisitor for GradientCollector<'_> {
    fn visit_at<const D: usize>(&mut self, at: &PathTracker, param: &FloatParam<D>) {
        let path = at.path();
        if !(self.wanted)(&path) {
            return;
        }
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let shape = grad.dims().to_vec();
            let n = shape.iter().product::<usize>();
            self.found.push((path, shape, grad.reshape([n])));
        }
    }
}

/// Copies the gradients of the parameters `wanted` by path to the host (async reads).
pub async fn read_gradients<M: Module>(
    module: &M,
    grads: &burn::optim::GradientsParams,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Weights, DeviceError> {
    let collector = visit_paths(
        module,
        GradientCollector {
            grads,
            wanted,
            found: Vec::new(),
        },
    );
    let mut gradients = Weights::new();
    for (path, shape, tensor) in collector.found {
        let values = tensor
            .into_data_async()
            .await
            .map_err(|e| DeviceError::new(&path, e))?
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| DeviceError::new(&path, e))?;
        gradients.insert(path, HostTensor { shape, values });
    }
    Ok(gradients)
}

/// Applies `f` to a parameter's value, keeping it a leaf with the same gradient requirement.
pub fn map_param_value<const D: usize>(
    param: Param<Tensor<D>>,
    f: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Param<Tensor<D>> {
    param.map(|tensor| {
        let require_grad = tensor.is_require_grad();
        let value = f(tensor).detach();
        if require_grad {
            value.require_grad()
        } else {
            value
        }
    })
}

struct Loader<'a> {
    weights: &'a Weights,
    filter: &'a dyn Fn(&str) -> bool,
    missing: Vec<String>,
}

impl PathMapper for Loader<'_> {
    fn map_at<const D: usize>(&mut self, at: &PathTracker, param: FloatParam<D>) -> FloatParam<D> {
        let path = at.path();
        if !(self.filter)(&path) {
            return param;
        }
        let Some(host) = self.weights.get(&path) else {
            self.missing.push(path);
            return param;
        };
        map_param_value(param, |tensor| {
            let dims = tensor.dims();
            assert_eq!(
                dims.as_slice(),
                host.shape.as_slice(),
                "shape of {path} differs from the stored weights"
            );
            let device = tensor.device();
            Tensor::<1>::from_data(TensorData::new(host.values.clone(), [host.len()]), &device)
                .reshape(dims)
        })
    }
}

/// Replaces the parameters of `module` whose path passes `filter` by the stored `weights`.
/// Returns the paths that had no stored value (left unchanged).
pub fn load_weights_where<M: Module>(
    module: M,
    weights: &Weights,
    filter: &dyn Fn(&str) -> bool,
) -> (M, Vec<String>) {
    let loader = Loader {
        weights,
        filter,
        missing: Vec::new(),
    };
    let (module, loader) = map_paths(module, loader);
    (module, loader.missing)
}

/// Replaces every parameter of `module` by the stored `weights` (rewinding, loading tickets).
pub fn load_weights<M: Module>(module: M, weights: &Weights) -> M {
    let (module, missing) = load_weights_where(module, weights, &|_| true);
    assert!(missing.is_empty(), "no stored weights for {missing:?}");
    module
}

/// A host tensor on `device`, in `shape`.
pub fn to_device<const D: usize>(host: &HostTensor, device: &Device) -> Tensor<D> {
    let dims: [usize; D] = host.shape.clone().try_into().expect("rank matches");
    Tensor::<1>::from_data(TensorData::new(host.values.clone(), [host.len()]), device).reshape(dims)
}
