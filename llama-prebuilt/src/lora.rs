//! LoRA adapters and control vectors.
//!
//! A [`LoraAdapter`] borrows the [`Model`] it was loaded for; [`Context::set_loras`] puts
//! adapters (each with a scale) on a context, which then borrows them until it is dropped, so
//! neither the model nor an adapter in use can be freed first. Control vectors are copied
//! into the context ([`Context::set_control_vector`]) and borrow nothing.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{PoisonError, RwLock, RwLockReadGuard};

use llama_prebuilt_sys as sys;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ffi;
use crate::gguf;
use crate::model::Model;

/// Loading or freeing an adapter edits the model's set of adapters (a C++ `unordered_set`),
/// which every context of that model reads when it (re)plans its compute graph (at creation,
/// and in the first decode after adapters or a control vector changed). Writers hold this
/// lock exclusively, graph planners shared.
static MODEL_ADAPTERS: RwLock<()> = RwLock::new(());

/// Held (shared) around the C calls that read a model's adapter set: context creation and
/// decoding.
pub(crate) fn adapters_read_guard() -> RwLockReadGuard<'static, ()> {
    MODEL_ADAPTERS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
}

/// A LoRA adapter loaded for one [`Model`] (it borrows the model and cannot outlive it).
///
/// `Send + Sync`: once loaded it is read-only, and any number of contexts of its model may
/// use it at once. It is freed when dropped; a context it is set on borrows it, so that can
/// only happen after the context is gone. In one scope, declare the adapter before the
/// context (`let adapter;` first and assign it later works too): locals are dropped in
/// reverse order, also when a panic unwinds, and the compiler insists on that order.
///
/// ```
/// use llama_prebuilt::{Batch, ContextParams, Model, ModelParams};
///
/// # let model_path = llama_prebuilt_test_support::gguf::tiny_model();
/// # let dir = tempfile::tempdir().unwrap();
/// # let lora_path = llama_prebuilt_test_support::gguf_lora::lora_in(
/// #     dir.path(), "doc", &llama_prebuilt_test_support::gguf_lora::LoraSpec::tiny()).unwrap();
/// let model = Model::load(&model_path, &ModelParams::default())?;
/// let adapter = model.load_lora(&lora_path)?;
/// let mut ctx = model.new_context(&ContextParams::default().n_ctx(256))?;
/// ctx.set_loras(&[(&adapter, 0.5)])?;
/// let tokens = model.tokenize("Hello", true)?;
/// ctx.decode(&Batch::for_sequence(&tokens, 0, 0)?)?;
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct LoraAdapter<'model> {
    ptr: NonNull<sys::llama_adapter_lora>,
    model: &'model Model,
    path: PathBuf,
}

// SAFETY: the adapter is immutable after loading (contexts only read its tensors); freeing
// it from another thread is fine, and the model-level bookkeeping is under MODEL_ADAPTERS.
unsafe impl Send for LoraAdapter<'_> {}
// SAFETY: as above: every method reads only.
unsafe impl Sync for LoraAdapter<'_> {}

impl fmt::Debug for LoraAdapter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoraAdapter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for LoraAdapter<'_> {
    fn drop(&mut self) {
        let _write = MODEL_ADAPTERS
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        // SAFETY: we own the adapter; no context borrows it any more (set_loras borrows it
        // for the context's lifetime), and its model is still alive ('model).
        unsafe { sys::llama_adapter_lora_free(self.ptr.as_ptr()) };
    }
}

impl Model {
    /// Loads a LoRA adapter (GGUF, as `convert_lora_to_gguf.py` writes it) for this model.
    /// Same as [`LoraAdapter::load`].
    pub fn load_lora(&self, path: impl AsRef<Path>) -> Result<LoraAdapter<'_>> {
        LoraAdapter::load(self, path)
    }
}

impl<'model> LoraAdapter<'model> {
    /// Loads a LoRA adapter for `model`.
    ///
    /// The file is checked in Rust first: well-formed GGUF, `general.type = "adapter"`,
    /// `adapter.type = "lora"`, `general.architecture` equal to the model's, metadata of the
    /// types llama.cpp expects (it aborts the process on some others), tensors named
    /// `<base tensor>.lora_a` / `.lora_b` in complete pairs, two-dimensional, of type f32,
    /// f16, bf16 or q8_0, with matching ranks.
    ///
    /// # Failure
    /// [`Error::Io`] if the file cannot be read, [`Error::InvalidAdapter`] if a check above
    /// fails, [`Error::AdapterLoad`] if llama.cpp refuses it (a tensor the model does not
    /// have, or of another shape: an adapter for a different base model).
    pub fn load(model: &'model Model, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        check_adapter_file(model, path)?;
        let c_path = ffi::path_c_string(path)?;
        let (ptr, message) = {
            let _write = MODEL_ADAPTERS
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            ffi::gate(|| {
                // SAFETY: a valid model that outlives the adapter ('model); a NUL-terminated
                // path; the file passed the checks that keep llama.cpp from aborting.
                unsafe { sys::llama_adapter_lora_init(model.as_ptr(), c_path.as_ptr()) }
            })
        };
        let ptr = NonNull::new(ptr).ok_or_else(|| Error::AdapterLoad {
            path: path.into(),
            message,
        })?;
        Ok(LoraAdapter {
            ptr,
            model,
            path: path.into(),
        })
    }

    /// The model the adapter was loaded for.
    pub fn model(&self) -> &'model Model {
        self.model
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value of the adapter file as a string (arrays are not available).
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = std::ffi::CString::new(key).ok()?;
        ffi::snprintf_string(|buf, len| {
            // SAFETY: a valid adapter; `buf` has `len` writable bytes.
            unsafe { sys::llama_adapter_meta_val_str(self.ptr.as_ptr(), key.as_ptr(), buf, len) }
        })
    }

    /// All scalar metadata of the adapter file, as `(key, value)` strings.
    pub fn metadata(&self) -> Vec<(String, String)> {
        // SAFETY: a valid adapter.
        let n = unsafe { sys::llama_adapter_meta_count(self.ptr.as_ptr()) };
        (0..n.max(0))
            .filter_map(|i| {
                let get = |f: unsafe extern "C" fn(
                    *const sys::llama_adapter_lora,
                    i32,
                    *mut std::ffi::c_char,
                    usize,
                ) -> i32| {
                    ffi::snprintf_string(|buf, len| {
                        // SAFETY: a valid adapter, an index below the count, `len` bytes.
                        unsafe { f(self.ptr.as_ptr(), i, buf, len) }
                    })
                };
                Some((
                    get(sys::llama_adapter_meta_key_by_index)?,
                    get(sys::llama_adapter_meta_val_str_by_index)?,
                ))
            })
            .collect()
    }

    /// `adapter.lora.alpha`, if the file has it: the adapter's weights are scaled by
    /// `scale * alpha / rank` (by `scale` alone without it).
    pub fn alpha(&self) -> Option<f32> {
        self.meta("adapter.lora.alpha")?.trim().parse().ok()
    }
}

impl<'model> Context<'model> {
    /// Replaces the LoRA adapters of this context with `adapters`, each with its scale (1.0:
    /// as trained; 0.0: as if absent). An empty slice removes them all, like
    /// [`Context::clear_loras`]. The context borrows the adapters until it is dropped (so
    /// they must outlive it), even after they are replaced or cleared.
    ///
    /// The next decode sees the new adapters; the memory (KV cache) is kept, so clear it
    /// ([`Context::clear_memory`]) to recompute earlier tokens with them.
    ///
    /// # Failure
    /// [`Error::AdapterModelMismatch`] for an adapter loaded for another model,
    /// [`Error::InvalidParam`] (`scale`) for a NaN or infinite scale or an adapter listed
    /// twice. Nothing changes on failure.
    pub fn set_loras(&mut self, adapters: &[(&'model LoraAdapter<'model>, f32)]) -> Result<()> {
        let mut ptrs = Vec::with_capacity(adapters.len());
        let mut scales = Vec::with_capacity(adapters.len());
        for &(adapter, scale) in adapters {
            if !std::ptr::eq(adapter.model.as_ptr(), self.model().as_ptr()) {
                return Err(Error::AdapterModelMismatch {
                    path: adapter.path.clone(),
                });
            }
            if !scale.is_finite() {
                return Err(Error::param(
                    "scale",
                    format!(
                        "{scale} is not a valid LoRA scale for {}: use a finite value (0 turns \
                         the adapter off)",
                        adapter.path.display()
                    ),
                ));
            }
            if ptrs.contains(&adapter.ptr.as_ptr()) {
                return Err(Error::param(
                    "scale",
                    format!(
                        "the adapter {} is listed twice: give each adapter once, with the sum \
                         of the scales",
                        adapter.path.display()
                    ),
                ));
            }
            ptrs.push(adapter.ptr.as_ptr());
            scales.push(scale);
        }
        let (ptrs_arg, scales_arg) = if ptrs.is_empty() {
            (std::ptr::null_mut(), std::ptr::null_mut())
        } else {
            (ptrs.as_mut_ptr(), scales.as_mut_ptr())
        };
        // SAFETY: an exclusively borrowed context; `ptrs` and `scales` have `ptrs.len()`
        // entries (or are null with a count of 0); every adapter belongs to this context's
        // model and stays alive while the context does ('model borrow).
        unsafe { sys::llama_set_adapters_lora(self.as_ptr(), ptrs_arg, ptrs.len(), scales_arg) };
        Ok(())
    }

    /// Sets one adapter with `scale` (replacing any others): `set_loras(&[(adapter, scale)])`.
    pub fn set_lora(&mut self, adapter: &'model LoraAdapter<'model>, scale: f32) -> Result<()> {
        self.set_loras(&[(adapter, scale)])
    }

    /// Removes every LoRA adapter from the context.
    pub fn clear_loras(&mut self) {
        // SAFETY: an exclusively borrowed context; null arrays with a count of 0.
        unsafe {
            sys::llama_set_adapters_lora(
                self.as_ptr(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        };
    }

    /// Applies a control vector: `vector` holds one direction of `n_embd` values per layer,
    /// for layers 1, 2, … in order (llama.cpp never steers layer 0), at most `n_layer - 1` of
    /// them; layers it does not cover get zeros. Only the layers in `layers` (inclusive, a
    /// subrange of `1..=n_layer - 1`) are steered. The values are copied.
    ///
    /// # Failure
    /// [`Error::InvalidParam`]: `vector` (empty, not a whole number of `n_embd` rows, more
    /// rows than layers 1..n_layer, NaN or infinite values) or `layers` (empty, or outside
    /// `1..=n_layer - 1`, e.g. for a one-layer model), [`Error::State`] if llama.cpp refuses.
    pub fn set_control_vector(
        &mut self,
        vector: &[f32],
        layers: RangeInclusive<u32>,
    ) -> Result<()> {
        let n_embd = self.model().n_embd() as usize;
        let n_layer = self.model().n_layer();
        let steerable = n_layer.saturating_sub(1) as usize;
        if n_embd == 0 || steerable == 0 {
            return Err(Error::param(
                "layers",
                format!("a model with {n_layer} layer(s) has no layer to steer (layer 0 never is)"),
            ));
        }
        if vector.is_empty()
            || !vector.len().is_multiple_of(n_embd)
            || vector.len() / n_embd > steerable
        {
            return Err(Error::param(
                "vector",
                format!(
                    "{} values are not 1..={steerable} rows of n_embd = {n_embd} (one per layer \
                     from layer 1)",
                    vector.len()
                ),
            ));
        }
        if let Some(i) = vector.iter().position(|v| !v.is_finite()) {
            return Err(Error::param(
                "vector",
                format!("value {i} is {} (use finite values)", vector[i]),
            ));
        }
        let (start, end) = (*layers.start(), *layers.end());
        if start == 0 || start > end || end as usize > steerable {
            return Err(Error::param(
                "layers",
                format!(
                    "{start}..={end} is not a non-empty subrange of 1..={steerable} (layer 0 is \
                     never steered)"
                ),
            ));
        }
        // Pad to every steerable layer, so no layer keeps values of an earlier vector.
        let mut data = vector.to_vec();
        data.resize(n_embd * steerable, 0.0);
        let (rc, message) = ffi::gate(|| {
            // SAFETY: an exclusively borrowed context; `data` holds `data.len()` floats and is
            // copied during the call; n_embd is the model's, the range checked above.
            unsafe {
                sys::llama_set_adapter_cvec(
                    self.as_ptr(),
                    data.as_ptr(),
                    data.len(),
                    n_embd as i32,
                    start as i32,
                    end as i32,
                )
            }
        });
        if rc != 0 {
            return Err(Error::State {
                operation: "applying the control vector",
                message,
            });
        }
        Ok(())
    }

    /// Turns the control vector off.
    pub fn clear_control_vector(&mut self) {
        // SAFETY: an exclusively borrowed context; a null vector means "clear" (never fails).
        unsafe { sys::llama_set_adapter_cvec(self.as_ptr(), std::ptr::null(), 0, 0, 0, 0) };
    }
}

// ---- the pre-flight check of an adapter file ---------------------------------------------

const GGML_TYPE_F32: u32 = 0;
const GGML_TYPE_F16: u32 = 1;
const GGML_TYPE_Q8_0: u32 = 8;
const GGML_TYPE_BF16: u32 = 30;

/// A scalar metadata value, as far as the check needs it.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    F32(f32),
    /// Any other type (its GGUF type id).
    Other(u32),
}

impl Value {
    fn type_name(&self) -> String {
        match self {
            Value::Str(_) => "a string".into(),
            Value::F32(_) => "a float32".into(),
            Value::Other(t) => format!("GGUF type {t}"),
        }
    }
}

struct Tensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: u32,
}

fn check_adapter_file(model: &Model, path: &Path) -> Result<()> {
    let invalid = |reason: String| Error::InvalidAdapter {
        path: path.into(),
        reason,
    };
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let header = gguf::parse_header_from(BufReader::new(file))
        .map_err(|e| invalid(format!("not a valid GGUF file: {e}")))?;
    header
        .check_data_bounds(len)
        .map_err(|e| invalid(format!("not a valid GGUF file: {e}")))?;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let (kvs, tensors) = read_kvs_and_tensors(BufReader::new(file))
        .map_err(|e| invalid(format!("not a valid GGUF file: {e}")))?;

    let string = |key: &str| -> Result<Option<&str>> {
        match kvs.get(key) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s)),
            Some(v) => Err(invalid(format!("{key} is {}, not a string", v.type_name()))),
        }
    };
    match string("general.type")? {
        Some("adapter") => {}
        other => {
            return Err(invalid(format!(
                "general.type is {other:?}, not \"adapter\" (is it a model rather than an adapter?)"
            )));
        }
    }
    match string("adapter.type")? {
        Some("lora") => {}
        other => {
            return Err(invalid(format!(
                "adapter.type is {other:?}, not \"lora\" (control vectors are applied with \
                 Context::set_control_vector)"
            )));
        }
    }
    let model_arch = model.meta("general.architecture").unwrap_or_default();
    let arch = string("general.architecture")?.unwrap_or_default();
    if arch != model_arch {
        return Err(invalid(format!(
            "it is for architecture {arch:?}, the model is {model_arch:?} (wrong base model?)"
        )));
    }
    match kvs.get("adapter.lora.alpha") {
        None | Some(Value::F32(_)) => {}
        Some(v) => {
            return Err(invalid(format!(
                "adapter.lora.alpha is {}, not a float32",
                v.type_name()
            )));
        }
    }

    let mut pairs: HashMap<&str, [Option<&Tensor>; 2]> = HashMap::new();
    for t in &tensors {
        let (base, slot) = if let Some(base) = t.name.strip_suffix(".lora_a") {
            (base, 0)
        } else if let Some(base) = t.name.strip_suffix(".lora_b") {
            (base, 1)
        } else if t.name.ends_with("_norm.weight") {
            continue; // llama.cpp ignores these
        } else {
            return Err(invalid(format!(
                "tensor {:?} is neither a .lora_a nor a .lora_b tensor",
                t.name
            )));
        };
        if !matches!(
            t.ggml_type,
            GGML_TYPE_F32 | GGML_TYPE_F16 | GGML_TYPE_BF16 | GGML_TYPE_Q8_0
        ) {
            return Err(invalid(format!(
                "tensor {:?} has ggml type {}; adapters must be f32, f16, bf16 or q8_0",
                t.name, t.ggml_type
            )));
        }
        if t.dims.len() > 2 && t.dims[2..].iter().any(|&d| d != 1) {
            return Err(invalid(format!(
                "tensor {:?} has dimensions {:?}; LoRA tensors must be two-dimensional",
                t.name, t.dims
            )));
        }
        let entry = pairs.entry(base).or_default();
        if entry[slot].is_some() {
            return Err(invalid(format!("tensor {:?} appears twice", t.name)));
        }
        entry[slot] = Some(t);
    }
    if pairs.is_empty() {
        return Err(invalid("it has no .lora_a/.lora_b tensors".into()));
    }
    let dim = |t: &Tensor, i: usize| t.dims.get(i).copied().unwrap_or(1);
    for (base, pair) in &pairs {
        let [Some(a), Some(b)] = pair else {
            return Err(invalid(format!(
                "{base} has only one of .lora_a and .lora_b"
            )));
        };
        // A is [n_in, rank] and B [rank, n_out]; for the token embeddings A is
        // [rank, n_vocab] and B [rank, n_embd] (llm_build_inp_embd), so both start with rank.
        let (rank_a, rank_b) = if base.ends_with("token_embd.weight") {
            (dim(a, 0), dim(b, 0))
        } else {
            (dim(a, 1), dim(b, 0))
        };
        if rank_a != rank_b || rank_a == 0 {
            return Err(invalid(format!(
                "{base}: the ranks of lora_a {:?} and lora_b {:?} do not match",
                a.dims, b.dims
            )));
        }
    }
    Ok(())
}

/// Reads the scalar metadata (arrays skipped) and the tensor infos of a GGUF file whose
/// structure [`gguf::parse_header_from`] already accepted.
fn read_kvs_and_tensors(
    mut r: impl Read,
) -> std::io::Result<(HashMap<String, Value>, Vec<Tensor>)> {
    fn bytes<const N: usize>(r: &mut impl Read) -> std::io::Result<[u8; N]> {
        let mut b = [0u8; N];
        r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u32_(r: &mut impl Read) -> std::io::Result<u32> {
        Ok(u32::from_le_bytes(bytes(r)?))
    }
    fn u64_(r: &mut impl Read) -> std::io::Result<u64> {
        Ok(u64::from_le_bytes(bytes(r)?))
    }
    fn string(r: &mut impl Read) -> std::io::Result<String> {
        let n = u64_(r)?;
        let mut buf = Vec::new();
        r.take(n).read_to_end(&mut buf)?;
        if buf.len() as u64 != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
    fn skip(r: &mut impl Read, n: u64) -> std::io::Result<()> {
        let copied = std::io::copy(&mut r.take(n), &mut std::io::sink())?;
        if copied != n {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
    fn scalar_size(ty: u32) -> Option<u64> {
        match ty {
            0 | 1 | 7 => Some(1),
            2 | 3 => Some(2),
            4..=6 => Some(4),
            10..=12 => Some(8),
            _ => None,
        }
    }
    fn skip_value(r: &mut impl Read, ty: u32) -> std::io::Result<()> {
        match ty {
            8 => string(r).map(drop),
            9 => {
                let elem = u32_(r)?;
                let n = u64_(r)?;
                match (elem, scalar_size(elem)) {
                    (_, Some(size)) => skip(r, n.saturating_mul(size)),
                    (8, None) => (0..n).try_for_each(|_| string(r).map(drop)),
                    _ => Err(std::io::Error::other(format!("array of GGUF type {elem}"))),
                }
            }
            t => match scalar_size(t) {
                Some(size) => skip(r, size),
                None => Err(std::io::Error::other(format!("GGUF type {t}"))),
            },
        }
    }

    let _magic: [u8; 4] = bytes(&mut r)?;
    let _version = u32_(&mut r)?;
    let n_tensors = u64_(&mut r)?;
    let n_kv = u64_(&mut r)?;
    let mut kvs = HashMap::new();
    for _ in 0..n_kv {
        let key = string(&mut r)?;
        let ty = u32_(&mut r)?;
        let value = match ty {
            8 => Value::Str(string(&mut r)?),
            6 => Value::F32(f32::from_le_bytes(bytes(&mut r)?)),
            t => {
                skip_value(&mut r, t)?;
                Value::Other(t)
            }
        };
        kvs.insert(key, value);
    }
    let mut tensors = Vec::new();
    for _ in 0..n_tensors {
        let name = string(&mut r)?;
        let n_dims = u32_(&mut r)?;
        let dims = (0..n_dims)
            .map(|_| u64_(&mut r))
            .collect::<std::io::Result<Vec<_>>>()?;
        let ggml_type = u32_(&mut r)?;
        let _offset = u64_(&mut r)?;
        tensors.push(Tensor {
            name,
            dims,
            ggml_type,
        });
    }
    Ok((kvs, tensors))
}
