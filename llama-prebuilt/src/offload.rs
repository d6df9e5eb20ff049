//! Where a loaded model's layers are, and what happens when GPU layers are asked for but no
//! GPU device is there.
//!
//! llama.h does not report the placement, so it is computed here the way llama.cpp's
//! `load_tensors` decides it (b10199, `src/llama-model.cpp`): the model has `n_layer + 1`
//! placeable layers (the repeating blocks, then the output layer); the last
//! `min(n_gpu_layers, n_layer + 1)` of them go to the offload devices, none if there are no
//! offload devices; among the devices, layer `i` of the offloaded range goes to the first
//! device whose cumulative split point exceeds `i / offloaded` (split points from
//! [`ModelParams::tensor_split`](crate::ModelParams::tensor_split), else from each device's
//! free memory when loading starts). The offload devices are those llama.cpp picks: the
//! listed ones, else RPC servers' devices first, then the GPUs, then one integrated GPU if
//! there is no GPU; with [`SplitMode::None`] only the main one.

use llama_prebuilt_sys as sys;

use crate::backend::{Backend, Device, DeviceKind};
use crate::backend_libs::{BackendLibrary, BackendStatus};
use crate::error::{Error, Result};
use crate::model::GpuLayers;
use crate::placement::SplitMode;

/// Where a model's layers went when it was loaded ([`Model::offload`](crate::Model::offload)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Offload {
    /// The placeable layers: the model's repeating blocks plus its output layer
    /// (`n_layer + 1`, the denominator of llama.cpp's "offloaded N/M layers to GPU").
    pub total_layers: u32,
    /// Each offload device with the number of layers it holds, in llama.cpp's device order.
    pub devices: Vec<(Device, u32)>,
}

impl Offload {
    /// Layers on offload devices (GPUs, RPC servers).
    pub fn gpu_layers(&self) -> u32 {
        self.devices.iter().map(|(_, n)| n).sum()
    }

    /// Layers left on the CPU.
    pub fn cpu_layers(&self) -> u32 {
        self.total_layers - self.gpu_layers()
    }
}

/// The devices llama.cpp will offload to, given the placement choices (already validated).
pub(crate) fn offload_devices(
    chosen: Option<&[Device]>,
    registered: &[Device],
    split_mode: SplitMode,
    main_gpu: u32,
) -> Vec<Device> {
    let mut list: Vec<Device> = match chosen {
        Some(chosen) => chosen.to_vec(),
        None => {
            let gpu = |d: &&Device| d.kind == DeviceKind::Gpu;
            let rpc = registered.iter().filter(gpu).filter(|d| d.is_rpc());
            let gpus: Vec<&Device> = registered
                .iter()
                .filter(gpu)
                .filter(|d| !d.is_rpc())
                .collect();
            let igpu = registered
                .iter()
                .find(|d| d.kind == DeviceKind::IntegratedGpu)
                .filter(|_| gpus.is_empty());
            rpc.chain(gpus.iter().copied())
                .chain(igpu)
                .cloned()
                .collect()
        }
    };
    if split_mode == SplitMode::None && !list.is_empty() {
        let main = list.swap_remove((main_gpu as usize).min(list.len() - 1));
        list = vec![main];
    }
    list
}

/// The cumulative split points (0..=1] per device, as llama.cpp computes them before loading:
/// from `tensor_split` if any entry is non-zero, else from each device's free memory (the
/// host's for a device that reports none).
pub(crate) fn split_points(devices: &[Device], tensor_split: &[f32]) -> Vec<f32> {
    if devices.len() <= 1 {
        // One device takes every offloaded layer whatever the split: no need to ask it (an RPC
        // device's memory is a network round trip).
        return vec![1.0; devices.len()];
    }
    let given = tensor_split.iter().take(devices.len()).any(|&p| p != 0.0);
    let raw: Vec<f32> = if given {
        (0..devices.len())
            .map(|i| tensor_split.get(i).copied().unwrap_or(0.0))
            .collect()
    } else {
        devices.iter().map(|d| free_memory(d) as f32).collect()
    };
    let mut sum = 0.0f32;
    let mut points: Vec<f32> = raw
        .iter()
        .map(|p| {
            sum += p;
            sum
        })
        .collect();
    for p in &mut points {
        *p /= sum;
    }
    points
}

fn free_memory(device: &Device) -> usize {
    let (mut free, mut total) = (0usize, 0usize);
    // SAFETY: a registered device; writes two integers we own.
    unsafe { sys::ggml_backend_dev_memory(device.raw(), &mut free, &mut total) };
    if free == 0 && total == 0 {
        // SAFETY: a registry query; the CPU device exists whenever a model can load.
        let cpu = unsafe { sys::ggml_backend_dev_by_type(sys::GGML_BACKEND_DEVICE_TYPE_CPU as _) };
        if !cpu.is_null() {
            // SAFETY: as above.
            unsafe { sys::ggml_backend_dev_memory(cpu, &mut free, &mut total) };
        }
    }
    free
}

/// llama.cpp's layer assignment for a model with `n_layer_all` blocks.
pub(crate) fn assign(
    n_layer_all: u32,
    gpu_layers: GpuLayers,
    devices: &[Device],
    split_points: &[f32],
) -> Offload {
    let (total_layers, counts) =
        assign_counts(n_layer_all, gpu_layers, devices.len(), split_points);
    Offload {
        total_layers,
        devices: devices.iter().cloned().zip(counts).collect(),
    }
}

/// The placeable layers and the count per device.
fn assign_counts(
    n_layer_all: u32,
    gpu_layers: GpuLayers,
    n_devices: usize,
    split_points: &[f32],
) -> (u32, Vec<u32>) {
    let total = n_layer_all + 1;
    let requested = match gpu_layers {
        GpuLayers::All => total,
        GpuLayers::Count(n) => n,
    };
    let offloaded = if n_devices == 0 {
        0
    } else {
        requested.min(total)
    };
    let first = total - offloaded;
    let mut counts = vec![0u32; n_devices];
    for il in first..total {
        let x = (il - first) as f32 / offloaded as f32;
        // std::upper_bound: the first split point greater than x.
        let dev = split_points
            .iter()
            .take(n_devices)
            .position(|&p| p > x)
            .unwrap_or(n_devices - 1);
        counts[dev] += 1;
    }
    (total, counts)
}

/// What [`Model::load`](crate::Model::load) does when layers are to be offloaded and there
/// is no offload device: with `require_gpu`, [`Error::NoGpuDevice`]; otherwise, if layers
/// were explicitly asked for ([`GpuLayers::Count`] > 0), a warning in the log, and the model
/// runs on the CPU. ([`GpuLayers::All`], the default, means "as many as there are devices
/// for", so without a GPU it is the normal CPU case and logs nothing.)
pub(crate) fn check_gpu_available(
    backend: &Backend,
    gpu_layers: GpuLayers,
    require_gpu: bool,
    devices: &[Device],
) -> Result<()> {
    let wants = match gpu_layers {
        GpuLayers::All => require_gpu,
        GpuLayers::Count(n) => n > 0,
    };
    if !wants || !devices.is_empty() {
        return Ok(());
    }
    let not_loaded: Vec<BackendLibrary> = backend
        .backend_libraries()
        .iter()
        .filter(|l| matches!(l.status, BackendStatus::NotLoaded(_)))
        .cloned()
        .collect();
    if require_gpu {
        return Err(Error::NoGpuDevice {
            requested: gpu_layers,
            not_loaded,
        });
    }
    log::warn!(
        target: crate::logging::LOG_TARGET,
        "{} GPU layers requested, but no GPU device is available{}; running on the CPU",
        describe(gpu_layers),
        crate::error::fmt_not_loaded(&not_loaded)
    );
    Ok(())
}

/// `all` or the count, for messages.
pub(crate) fn describe(gpu_layers: GpuLayers) -> String {
    match gpu_layers {
        GpuLayers::All => "all".into(),
        GpuLayers::Count(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_assigned_as_llama_cpp_does() {
        // 30 blocks + output, all on one device.
        assert_eq!(assign_counts(30, GpuLayers::All, 1, &[1.0]), (31, vec![31]));
        // More requested than there are: capped.
        assert_eq!(
            assign_counts(2, GpuLayers::Count(99), 1, &[1.0]),
            (3, vec![3])
        );
        // No device: nothing offloaded, whatever was asked.
        assert_eq!(assign_counts(2, GpuLayers::All, 0, &[]), (3, vec![]));
        // The last 10 of 31 go to the devices, split 1:3 (upper_bound of i/10 in 0.25, 1.0).
        assert_eq!(
            assign_counts(30, GpuLayers::Count(10), 2, &[0.25, 1.0]),
            (31, vec![3, 7])
        );
        assert_eq!(
            assign_counts(30, GpuLayers::Count(0), 1, &[1.0]),
            (31, vec![0])
        );
    }
}
