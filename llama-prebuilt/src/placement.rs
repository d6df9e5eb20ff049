//! Where a model's layers go: the offload devices (local GPUs, RPC servers), the split mode
//! and the tensor split of [`ModelParams`](crate::ModelParams), validated and turned into
//! llama.cpp's `devices` / `split_mode` / `main_gpu` / `tensor_split`.

use std::time::Duration;

use llama_prebuilt_sys as sys;

use crate::backend::{Backend, Device, DeviceKind};
use crate::error::{Error, Result};
use crate::rpc::{self, RpcEndpoint, RpcLease};

/// How a model is split across several offload devices (llama.h's `enum llama_split_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SplitMode {
    /// The whole offloaded part on one device, [`ModelParams::main_gpu`](crate::ModelParams::main_gpu).
    None,
    /// Whole layers (and their KV cache) per device, in proportion to the tensor split
    /// (llama.cpp's default). The only mode that works with RPC servers: one round trip per
    /// device boundary per token.
    #[default]
    Layer,
    /// Rows of each weight matrix split across devices whose backend supports split buffers
    /// (CUDA, SYCL). Loading fails with an error for other devices, RPC servers included.
    Row,
}

impl SplitMode {
    fn raw(self) -> sys::llama_split_mode {
        (match self {
            SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
            SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
            SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
        }) as sys::llama_split_mode
    }
}

/// The placement choices of a [`ModelParams`](crate::ModelParams).
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    pub(crate) devices: Option<Vec<Device>>,
    pub(crate) split_mode: SplitMode,
    pub(crate) main_gpu: u32,
    pub(crate) tensor_split: Vec<f32>,
    pub(crate) rpc_timeout: Duration,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            devices: None,
            split_mode: SplitMode::Layer,
            main_gpu: 0,
            tensor_split: Vec::new(),
            rpc_timeout: rpc::DEFAULT_RPC_TIMEOUT,
        }
    }
}

/// A validated placement, holding the C arrays llama.cpp reads while loading and the leases of
/// the RPC servers the model will use.
pub(crate) struct Prepared {
    /// NULL-terminated, or `None` for "every registered offload device".
    devices: Option<Vec<sys::ggml_backend_dev_t>>,
    /// `llama_max_devices()` entries, or empty for llama.cpp's default (by free memory).
    tensor_split: Vec<f32>,
    split_mode: SplitMode,
    main_gpu: u32,
    /// The RPC servers the model will use.
    pub(crate) endpoints: Vec<RpcEndpoint>,
    pub(crate) leases: Vec<RpcLease>,
}

impl Placement {
    /// Validates the choices against the registered devices and checks that every RPC server
    /// the model would use answers (see [`rpc::check_servers`]).
    pub(crate) fn prepare(&self, backend: &Backend) -> Result<Prepared> {
        let registered = backend.devices();
        let offload: Vec<Device> = match &self.devices {
            Some(chosen) => {
                for d in chosen {
                    if matches!(d.kind, DeviceKind::Cpu | DeviceKind::Accelerator) {
                        return Err(Error::InvalidParam {
                            name: "devices",
                            reason: format!(
                                "{} is a {:?} device; list only GPU and RPC devices (the CPU always holds what is not offloaded)",
                                d.name, d.kind
                            ),
                        });
                    }
                    if !registered.contains(d) {
                        return Err(Error::InvalidParam {
                            name: "devices",
                            reason: format!("{} is not a registered device", d.name),
                        });
                    }
                }
                chosen.clone()
            }
            None => registered
                .iter()
                .filter(|d| !matches!(d.kind, DeviceKind::Cpu | DeviceKind::Accelerator))
                .cloned()
                .collect(),
        };
        // SAFETY: a constant query.
        let max_devices = unsafe { sys::llama_max_devices() };
        if self.tensor_split.len() > max_devices {
            return Err(Error::InvalidParam {
                name: "tensor_split",
                reason: format!(
                    "{} proportions given, llama.cpp takes at most {max_devices}",
                    self.tensor_split.len()
                ),
            });
        }
        if let Some(bad) = self
            .tensor_split
            .iter()
            .find(|p| !p.is_finite() || **p < 0.0)
        {
            return Err(Error::InvalidParam {
                name: "tensor_split",
                reason: format!("{bad} is not a finite proportion >= 0"),
            });
        }
        if self.split_mode == SplitMode::None
            && !offload.is_empty()
            && self.main_gpu as usize >= offload.len()
        {
            return Err(Error::InvalidParam {
                name: "main_gpu",
                reason: format!(
                    "device index {} with split mode None, but there are {} offload devices (0..{})",
                    self.main_gpu,
                    offload.len(),
                    offload.len()
                ),
            });
        }
        let endpoints = rpc::endpoints_of(&offload);
        rpc::check_servers(&endpoints, self.rpc_timeout)?;
        let mut tensor_split = self.tensor_split.clone();
        if !tensor_split.is_empty() {
            tensor_split.resize(max_devices, 0.0);
        }
        Ok(Prepared {
            devices: self.devices.as_ref().map(|chosen| {
                chosen
                    .iter()
                    .map(Device::raw)
                    .chain(std::iter::once(std::ptr::null_mut()))
                    .collect()
            }),
            tensor_split,
            split_mode: self.split_mode,
            main_gpu: self.main_gpu,
            leases: rpc::lease_all(&endpoints),
            endpoints,
        })
    }
}

impl Prepared {
    /// Fills the placement fields of `raw`; the pointers stay valid while `self` lives.
    pub(crate) fn apply(&mut self, raw: &mut sys::llama_model_params) {
        raw.split_mode = self.split_mode.raw();
        raw.main_gpu = i32::try_from(self.main_gpu).unwrap_or(i32::MAX);
        if let Some(devices) = &mut self.devices {
            raw.devices = devices.as_mut_ptr();
        }
        if !self.tensor_split.is_empty() {
            raw.tensor_split = self.tensor_split.as_ptr();
        }
    }
}
