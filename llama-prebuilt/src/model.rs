//! Loading a model and reading its metadata.

use std::any::Any;
use std::ffi::{CString, c_char, c_void};
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use llama_prebuilt_sys as sys;

use crate::backend::Backend;
use crate::backend::Device;
use crate::context::Context;
use crate::context_params::ContextParams;
use crate::error::{Error, Result};
use crate::metadata_override::{self, MetadataValue};
use crate::offload::{self, Offload};
use crate::placement::{Placement, SplitMode};
use crate::rpc::RpcLease;
use crate::{ffi, gguf};

/// Owns a `llama_model *` and frees it on drop. Shared (through `Arc`) by [`Model`] and the
/// samplers that keep a pointer to the model's vocabulary.
pub(crate) struct RawModel {
    ptr: NonNull<sys::llama_model>,
    vocab: NonNull<sys::llama_vocab>,
    n_vocab: u32,
    /// The RPC servers the model's buffers hold connections to; dropped after the model.
    _rpc_leases: Vec<RpcLease>,
}

// SAFETY: a loaded llama_model is immutable; llama.cpp reads it from any number of contexts
// and threads (its tokenizer API is documented thread-safe).
unsafe impl Send for RawModel {}
// SAFETY: as above.
unsafe impl Sync for RawModel {}

impl Drop for RawModel {
    fn drop(&mut self) {
        // SAFETY: we own the model; every borrower (Context<'model>, Arc holders) is gone.
        unsafe { sys::llama_model_free(self.ptr.as_ptr()) };
    }
}

impl RawModel {
    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    pub(crate) fn vocab(&self) -> *const sys::llama_vocab {
        self.vocab.as_ptr()
    }

    pub(crate) fn n_vocab(&self) -> u32 {
        self.n_vocab
    }
}

/// A loaded model: weights, hyperparameters, vocabulary and metadata. `Send + Sync`: share
/// one model between threads and create a [`Context`] per thread.
///
/// ```
/// use llama_prebuilt::{Model, ModelParams};
///
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// let model = Model::load(&path, &ModelParams::default())?;
/// println!("{} ({} parameters)", model.description(), model.n_params());
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct Model {
    raw: Arc<RawModel>,
    path: PathBuf,
    vocab_only: bool,
    causal_attention: bool,
    offload: Offload,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.path)
            .field("description", &self.description())
            .finish()
    }
}

/// How many layers to offload to GPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuLayers {
    /// All of them (llama.cpp's default; means none when only the CPU backend is loaded).
    All,
    /// At most this many (0: keep everything on the CPU).
    Count(u32),
}

/// How the weights get into memory (llama.h's `enum llama_load_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadMode {
    /// Memory-map the file (llama.cpp's default).
    Mmap,
    /// Read the file into allocated memory (`LLAMA_LOAD_MODE_NONE`).
    Read,
    /// Read into memory and lock it there (no swapping).
    Mlock,
    /// Memory-map and lock the pages.
    MmapMlock,
    /// Direct I/O where the OS supports it.
    DirectIo,
}

impl LoadMode {
    fn raw(self) -> sys::llama_load_mode {
        (match self {
            LoadMode::Mmap => sys::LLAMA_LOAD_MODE_MMAP,
            LoadMode::Read => sys::LLAMA_LOAD_MODE_NONE,
            LoadMode::Mlock => sys::LLAMA_LOAD_MODE_MLOCK,
            LoadMode::MmapMlock => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
            LoadMode::DirectIo => sys::LLAMA_LOAD_MODE_DIRECT_IO,
        }) as sys::llama_load_mode
    }
}

/// The progress callback type: called with the fraction loaded (0.0..=1.0); returning `false`
/// cancels loading.
pub type ProgressCallback = dyn Fn(f32) -> bool + Send + Sync;

/// Parameters for [`Model::load`]. Defaults are llama.cpp's.
#[derive(Clone)]
pub struct ModelParams {
    gpu_layers: GpuLayers,
    load_mode: LoadMode,
    vocab_only: bool,
    check_tensors: bool,
    progress: Option<Arc<ProgressCallback>>,
    placement: Placement,
    overrides: Vec<(String, MetadataValue)>,
    require_gpu: bool,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            gpu_layers: GpuLayers::All,
            load_mode: LoadMode::Mmap,
            vocab_only: false,
            check_tensors: false,
            progress: None,
            placement: Placement::default(),
            overrides: Vec::new(),
            require_gpu: false,
        }
    }
}

impl fmt::Debug for ModelParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelParams")
            .field("gpu_layers", &self.gpu_layers)
            .field("load_mode", &self.load_mode)
            .field("vocab_only", &self.vocab_only)
            .field("check_tensors", &self.check_tensors)
            .field("progress", &self.progress.as_ref().map(|_| "callback"))
            .field("placement", &self.placement)
            .field("overrides", &self.overrides)
            .field("require_gpu", &self.require_gpu)
            .finish()
    }
}

impl ModelParams {
    /// How many layers to offload to GPUs.
    pub fn gpu_layers(mut self, layers: GpuLayers) -> Self {
        self.gpu_layers = layers;
        self
    }

    /// Shorthand for [`GpuLayers::Count`].
    pub fn n_gpu_layers(self, n: u32) -> Self {
        self.gpu_layers(GpuLayers::Count(n))
    }

    /// Whether offloading is a requirement. Without it (the default), when layers are to be
    /// offloaded but no GPU device is registered (a GPU build on a machine without the GPU's
    /// driver or runtime, see [`Backend::backend_libraries`]), the model loads on the CPU; an
    /// explicit [`GpuLayers::Count`] > 0 also logs a warning saying why the GPU backend did
    /// not load. With it, [`Model::load`] fails with [`Error::NoGpuDevice`] instead, for
    /// [`GpuLayers::All`] and any count > 0.
    pub fn require_gpu(mut self, require: bool) -> Self {
        self.require_gpu = require;
        self
    }

    /// How the weights are loaded.
    pub fn load_mode(mut self, mode: LoadMode) -> Self {
        self.load_mode = mode;
        self
    }

    /// Load only the vocabulary and metadata (tokenize, chat templates; no contexts).
    pub fn vocab_only(mut self, vocab_only: bool) -> Self {
        self.vocab_only = vocab_only;
        self
    }

    /// Validate the tensor data while loading (slow).
    pub fn check_tensors(mut self, check: bool) -> Self {
        self.check_tensors = check;
        self
    }

    /// The devices to offload layers to, in order (local GPUs and RPC servers' devices, from
    /// [`Backend::devices`] or [`RpcServer::devices`](crate::RpcServer::devices)). Without
    /// this, llama.cpp uses every registered offload device, RPC servers first. An empty list
    /// keeps everything on the CPU. CPU devices are rejected: the CPU always holds what is not
    /// offloaded (see [`ModelParams::gpu_layers`]).
    pub fn devices<'a>(mut self, devices: impl IntoIterator<Item = &'a Device>) -> Self {
        self.placement.devices = Some(devices.into_iter().cloned().collect());
        self
    }

    /// How the offloaded layers are split across several devices ([`SplitMode::Layer`] by
    /// default).
    pub fn split_mode(mut self, mode: SplitMode) -> Self {
        self.placement.split_mode = mode;
        self
    }

    /// With [`SplitMode::None`], the index (into the offload devices) of the one device that
    /// holds the offloaded layers. Checked at load time against the number of devices.
    pub fn main_gpu(mut self, index: u32) -> Self {
        self.placement.main_gpu = index;
        self
    }

    /// The proportion of the offloaded layers each offload device gets, in device order, e.g.
    /// `[1.0, 3.0]` puts a quarter on the first and three quarters on the second. Empty (the
    /// default): in proportion to each device's free memory. At most `llama_max_devices()`
    /// (16) finite values >= 0; checked at load time.
    pub fn tensor_split(mut self, proportions: &[f32]) -> Self {
        self.placement.tensor_split = proportions.to_vec();
        self
    }

    /// How long [`Model::load`] waits for each RPC server the model will use to accept a
    /// connection before llama.cpp talks to it ([`DEFAULT_RPC_TIMEOUT`](crate::DEFAULT_RPC_TIMEOUT)
    /// by default).
    pub fn rpc_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.placement.rpc_timeout = timeout;
        self
    }

    /// Overrides one GGUF metadata value while loading (llama.cpp's `kv_overrides`), e.g.
    /// `("llama.context_length", MetadataValue::Int(8192))`. The value's type must match the
    /// key's in the model. Keys and strings are checked at load time (at most 127 bytes, no
    /// NUL, finite floats).
    pub fn metadata_override(mut self, key: impl Into<String>, value: MetadataValue) -> Self {
        self.overrides.push((key.into(), value));
        self
    }

    /// A progress callback, called with the fraction loaded; return `false` to cancel (then
    /// [`Model::load`] fails with [`Error::LoadCancelled`]). A panic in the callback cancels
    /// loading and is resumed on the thread that called [`Model::load`].
    pub fn progress_callback(
        mut self,
        callback: impl Fn(f32) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }
}

/// What the progress trampoline shares with [`Model::load`].
struct ProgressState<'a> {
    callback: &'a ProgressCallback,
    cancelled: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

unsafe extern "C" fn progress_trampoline(progress: f32, user_data: *mut c_void) -> bool {
    // SAFETY: user_data is the &ProgressState that Model::load keeps alive during the call.
    let state = unsafe { &*(user_data as *const ProgressState<'_>) };
    let mut parked = state.panic.lock().unwrap_or_else(|p| p.into_inner());
    if parked.is_some() || state.cancelled.load(Ordering::Relaxed) {
        return false;
    }
    match panic::catch_unwind(AssertUnwindSafe(|| (state.callback)(progress))) {
        Ok(true) => true,
        Ok(false) => {
            state.cancelled.store(true, Ordering::Relaxed);
            false
        }
        Err(payload) => {
            *parked = Some(payload);
            false
        }
    }
}

impl Model {
    /// Loads a GGUF model file.
    ///
    /// Before llama.cpp sees the file, its GGUF header is checked in Rust (see
    /// [`gguf::parse_header`](crate::gguf::parse_header)).
    ///
    /// # Failure
    /// [`Error::Io`] if the file cannot be opened (`NotFound` if missing),
    /// [`Error::InvalidGguf`] if it is not a well-formed GGUF file (wrong magic, truncated),
    /// [`Error::LoadCancelled`] if the progress callback returned `false`,
    /// [`Error::ModelLoad`] if llama.cpp refuses it (unknown architecture, missing tensors),
    /// [`Error::InvalidParam`] for a placement that cannot work (a CPU device in
    /// [`ModelParams::devices`], a bad [`ModelParams::tensor_split`] or
    /// [`ModelParams::main_gpu`]), [`Error::RpcUnreachable`] / [`Error::RpcProtocol`] if an
    /// RPC server the model would use does not accept connections (checked first, because
    /// llama.cpp's RPC client aborts the process instead of failing),
    /// and the errors of [`Backend::init`].
    pub fn load(path: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        let path = path.as_ref();
        let backend = Backend::init()?;
        check_file(path)?;
        let mut placement = params.placement.prepare(backend)?;
        let gpu_layers = if params.vocab_only {
            GpuLayers::Count(0)
        } else {
            params.gpu_layers
        };
        let offload_devices = offload::offload_devices(
            params.placement.devices.as_deref(),
            &backend.devices(),
            params.placement.split_mode,
            params.placement.main_gpu,
        );
        offload::check_gpu_available(backend, gpu_layers, params.require_gpu, &offload_devices)?;
        let split_points = offload::split_points(&offload_devices, &params.placement.tensor_split);
        let overrides = metadata_override::build(&params.overrides)?;
        let c_path = ffi::path_c_string(path)?;
        metadata_override::check_types(&c_path, &params.overrides)?;

        // SAFETY: returns a plain struct by value.
        let mut raw = unsafe { sys::llama_model_default_params() };
        raw.n_gpu_layers = match params.gpu_layers {
            GpuLayers::All => -1,
            GpuLayers::Count(n) => i32::try_from(n).unwrap_or(i32::MAX),
        };
        raw.load_mode = params.load_mode.raw();
        raw.vocab_only = params.vocab_only;
        raw.check_tensors = params.check_tensors;
        placement.apply(&mut raw);
        if !overrides.is_empty() {
            raw.kv_overrides = overrides.as_ptr();
        }

        let state = params.progress.as_deref().map(|callback| ProgressState {
            callback,
            cancelled: AtomicBool::new(false),
            panic: Mutex::new(None),
        });
        if let Some(state) = &state {
            raw.progress_callback = Some(progress_trampoline);
            raw.progress_callback_user_data = state as *const ProgressState<'_> as *mut c_void;
        }

        let (ptr, message) = ffi::gate(|| {
            // SAFETY: c_path is NUL-terminated; `raw` only points at `state`, `placement` and
            // `overrides` (terminated by an empty key), which outlive the call.
            unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), raw) }
        });
        crate::rpc::mark_rpc_sockets(&placement.endpoints);
        if let Some(state) = state {
            if let Some(payload) = state.panic.into_inner().unwrap_or_else(|p| p.into_inner()) {
                if let Some(ptr) = NonNull::new(ptr) {
                    // SAFETY: loaded despite the panic; free it before unwinding.
                    unsafe { sys::llama_model_free(ptr.as_ptr()) };
                }
                panic::resume_unwind(payload);
            }
            if state.cancelled.into_inner() && ptr.is_null() {
                return Err(Error::LoadCancelled { path: path.into() });
            }
        }
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::ModelLoad {
            path: path.into(),
            message,
        })?;
        // SAFETY: a valid model; the vocabulary lives as long as the model.
        let vocab = unsafe { sys::llama_model_get_vocab(ptr.as_ptr()) };
        // SAFETY: `vocab` points into the live model (llama.cpp returns `&model->vocab`).
        let n_vocab = unsafe { sys::llama_vocab_n_tokens(vocab) };
        let raw = RawModel {
            ptr,
            vocab: NonNull::new(vocab.cast_mut()).ok_or_else(|| Error::ModelLoad {
                path: path.into(),
                message: Some("the model has no vocabulary".into()),
            })?,
            n_vocab: u32::try_from(n_vocab).unwrap_or(0),
            _rpc_leases: placement.leases,
        };
        let mut model = Model {
            raw: Arc::new(raw),
            path: path.into(),
            vocab_only: params.vocab_only,
            causal_attention: true,
            offload: Offload {
                total_layers: 0,
                devices: Vec::new(),
            },
        };
        model.causal_attention = model.detect_causal_attention();
        model.offload = offload::assign(
            model.n_layer_all(),
            gpu_layers,
            &offload_devices,
            &split_points,
        );
        Ok(model)
    }

    /// Whether the model attends causally. Non-causal models (BERT-style embedding models,
    /// diffusion models) must see a whole batch in one ubatch; llama.cpp asserts that, so
    /// [`Context::decode`] checks it first. Read from `<arch>.attention.causal`, plus the
    /// architectures llama.cpp makes non-causal in code.
    fn detect_causal_attention(&self) -> bool {
        const NON_CAUSAL_ARCHS: &[&str] =
            &["gemma-embedding", "dream", "llada", "llada-moe", "rnd1"];
        let arch = self.meta("general.architecture").unwrap_or_default();
        if NON_CAUSAL_ARCHS.contains(&arch.as_str()) {
            return false;
        }
        self.meta(&format!("{arch}.attention.causal")).as_deref() != Some("false")
    }

    pub(crate) fn causal_attention(&self) -> bool {
        self.causal_attention
    }

    /// Whether the model was loaded with [`ModelParams::vocab_only`].
    pub fn is_vocab_only(&self) -> bool {
        self.vocab_only
    }

    /// Creates an inference context on this model; see [`Context::new`].
    pub fn new_context(&self, params: &ContextParams) -> Result<Context<'_>> {
        Context::new(self, params)
    }

    pub(crate) fn raw(&self) -> &Arc<RawModel> {
        &self.raw
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_model {
        self.raw.as_ptr()
    }

    /// The file the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A short description such as `llama ?B F32`.
    pub fn description(&self) -> String {
        // SAFETY: writes at most `size` bytes into our buffer.
        ffi::snprintf_string(|buf, size| unsafe { sys::llama_model_desc(self.as_ptr(), buf, size) })
            .unwrap_or_default()
    }

    /// Number of parameters.
    pub fn n_params(&self) -> u64 {
        // SAFETY: a read-only query of a valid model.
        unsafe { sys::llama_model_n_params(self.as_ptr()) }
    }

    /// Total size of the tensors in bytes.
    pub fn size(&self) -> u64 {
        // SAFETY: as above.
        unsafe { sys::llama_model_size(self.as_ptr()) }
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_ctx_train(self.as_ptr()) }).unwrap_or(0)
    }

    /// Width of the embeddings (`n_embd`).
    pub fn n_embd(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_embd(self.as_ptr()) }).unwrap_or(0)
    }

    /// Length of the embedding vectors a context returns (usually [`Model::n_embd`]).
    pub fn n_embd_out(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_embd_out(self.as_ptr()) }).unwrap_or(0)
    }

    /// Number of layers.
    pub fn n_layer(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_layer(self.as_ptr()) }).unwrap_or(0)
    }

    /// Where llama.cpp put the model's layers: how many of its `n_layer + 1` placeable layers
    /// (blocks plus output) each offload device holds, and how many stayed on the CPU. The
    /// same figures as llama.cpp's log line "offloaded N/M layers to GPU", computed from
    /// [`ModelParams::gpu_layers`] and the devices the way llama.cpp assigns them (llama.h
    /// has no query for it).
    pub fn offload(&self) -> &Offload {
        &self.offload
    }

    /// All blocks as llama.cpp's loader counts them (`<arch>.block_count`, which includes
    /// multi-token-prediction blocks that [`Model::n_layer`] leaves out).
    fn n_layer_all(&self) -> u32 {
        let arch = self.meta("general.architecture").unwrap_or_default();
        self.meta(&format!("{arch}.block_count"))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| self.n_layer())
    }

    /// Number of attention heads.
    pub fn n_head(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_head(self.as_ptr()) }).unwrap_or(0)
    }

    /// Number of key/value heads.
    pub fn n_head_kv(&self) -> u32 {
        // SAFETY: as above.
        u32::try_from(unsafe { sys::llama_model_n_head_kv(self.as_ptr()) }).unwrap_or(0)
    }

    /// Whether the model has an encoder (encoder-decoder models such as T5).
    pub fn has_encoder(&self) -> bool {
        // SAFETY: as above.
        unsafe { sys::llama_model_has_encoder(self.as_ptr()) }
    }

    /// Whether the model is recurrent (Mamba, RWKV).
    pub fn is_recurrent(&self) -> bool {
        // SAFETY: as above.
        unsafe { sys::llama_model_is_recurrent(self.as_ptr()) }
    }

    /// A metadata value rendered as a string (`None` if the key is absent; arrays are not
    /// supported by llama.cpp's accessor and also give `None`).
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        ffi::snprintf_string(|buf, size| {
            // SAFETY: `key` is NUL-terminated; writes at most `size` bytes into our buffer.
            unsafe { sys::llama_model_meta_val_str(self.as_ptr(), key.as_ptr(), buf, size) }
        })
    }

    /// All metadata as `(key, value)` pairs, values rendered as strings.
    pub fn metadata(&self) -> Vec<(String, String)> {
        // SAFETY: a read-only query.
        let n = unsafe { sys::llama_model_meta_count(self.as_ptr()) };
        (0..n.max(0))
            .filter_map(|i| {
                let get = |f: unsafe extern "C" fn(
                    *const sys::llama_model,
                    i32,
                    *mut c_char,
                    usize,
                ) -> i32| {
                    // SAFETY: `i` is in range; writes at most `size` bytes into our buffer.
                    ffi::snprintf_string(|buf, size| unsafe { f(self.as_ptr(), i, buf, size) })
                };
                Some((
                    get(sys::llama_model_meta_key_by_index)?,
                    get(sys::llama_model_meta_val_str_by_index)?,
                ))
            })
            .collect()
    }
}

/// Opens `path` and runs the GGUF header check on it.
fn check_file(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let invalid = |source| Error::InvalidGguf {
        path: path.into(),
        source,
    };
    let header = gguf::parse_header_from(BufReader::new(file)).map_err(invalid)?;
    header.check_data_bounds(len).map_err(invalid)
}
