//! Inference contexts: decode batches, read logits, manage the memory (KV cache) and state.

use std::ffi::c_void;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use llama_prebuilt_sys as sys;

use crate::batch::Batch;
use crate::cancel::{CancelHandle, abort_trampoline};
use crate::context_params::{AttentionType, ContextParams, FlashAttention, Pooling};
use crate::error::{Error, Result};
use crate::ffi;
use crate::model::Model;
use crate::token::Token;

/// An inference context on a [`Model`]: its memory (KV cache), batch buffers and outputs.
///
/// `Send` but not `Sync`: move it to another thread, but use it from one thread at a time.
/// Everything that changes its state takes `&mut self`, so outputs borrowed from it (logits,
/// embeddings) cannot be held across a decode. It borrows the model and cannot outlive it.
///
/// ```
/// use llama_prebuilt::{Batch, ContextParams, Model, ModelParams};
///
/// # let path = llama_prebuilt_test_support::gguf::tiny_model();
/// let model = Model::load(&path, &ModelParams::default())?;
/// let mut ctx = model.new_context(&ContextParams::default().n_ctx(1024))?;
/// let tokens = model.tokenize("Hello", true)?;
/// ctx.decode(&Batch::for_sequence(&tokens, 0, 0)?)?;
/// let logits = ctx.logits(tokens.len() - 1)?;
/// assert_eq!(logits.len(), model.n_vocab() as usize);
/// # Ok::<(), llama_prebuilt::Error>(())
/// ```
pub struct Context<'model> {
    ptr: NonNull<sys::llama_context>,
    model: &'model Model,
    n_ctx: u32,
    n_batch: u32,
    n_ubatch: u32,
    n_seq_max: u32,
    embeddings: bool,
    pooling: Pooling,
    /// Whether attention is causal (the model's, or what the params forced).
    causal: bool,
    /// Batch indices that have outputs after the last successful decode.
    outputs: Vec<usize>,
    abort: Arc<AtomicBool>,
    /// Keeps the type `!Sync` explicitly (the raw pointer already does).
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

// SAFETY: a llama_context may be used from any thread, one at a time; `!Sync` (and `&mut`
// for mutation) guarantees one at a time. The model it points to is `Sync`.
unsafe impl Send for Context<'_> {}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("n_ctx", &self.n_ctx)
            .field("n_batch", &self.n_batch)
            .field("n_ubatch", &self.n_ubatch)
            .field("n_seq_max", &self.n_seq_max)
            .field("embeddings", &self.embeddings)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: we own the context; nothing borrows it any more.
        unsafe { sys::llama_free(self.ptr.as_ptr()) };
    }
}

fn thread_count(name: &'static str, n: Option<u32>) -> Result<Option<i32>> {
    match n {
        None => Ok(None),
        Some(0) => Err(Error::param(name, "must be at least 1")),
        Some(n) => i32::try_from(n)
            .map(Some)
            .map_err(|_| Error::param(name, "too large")),
    }
}

fn finite(name: &'static str, value: Option<f32>, min_exclusive: bool, works: &str) -> Result<()> {
    match value {
        Some(v) if !v.is_finite() || v < 0.0 || (min_exclusive && v == 0.0) => {
            Err(Error::param(name, format!("{v} is not {works}")))
        }
        _ => Ok(()),
    }
}

/// The per-head sizes of K and V: `<arch>.attention.key_length`/`value_length` when the
/// model states them, else `n_embd / n_head` (what llama.cpp assumes too).
fn head_sizes(model: &Model) -> (u32, u32) {
    let arch = model.meta("general.architecture").unwrap_or_default();
    let read = |key: &str| {
        model
            .meta(&format!("{arch}.attention.{key}"))
            .and_then(|v| v.trim().parse::<u32>().ok())
    };
    let default = model.n_embd() / model.n_head().max(1);
    (
        read("key_length").unwrap_or(default),
        read("value_length").unwrap_or(default),
    )
}

/// Checks the tuning parameters llama.cpp would abort on or reject with a bare NULL.
fn check_tuning(model: &Model, params: &ContextParams) -> Result<()> {
    finite(
        "rope_freq_base",
        params.rope_freq_base,
        true,
        "a valid RoPE base: use a finite value > 0 (e.g. 10000)",
    )?;
    finite(
        "rope_freq_scale",
        params.rope_freq_scale,
        true,
        "a valid RoPE frequency scale: use a finite value > 0 (e.g. 0.5 to double the context)",
    )?;
    finite(
        "yarn_ext_factor",
        params.yarn_ext_factor,
        false,
        "a valid YaRN extrapolation factor: use a finite value >= 0 (0 turns it off)",
    )?;
    finite(
        "yarn_attn_factor",
        params.yarn_attn_factor,
        true,
        "a valid YaRN attention factor: use a finite value > 0 (e.g. 1)",
    )?;
    finite(
        "yarn_beta_fast",
        params.yarn_beta_fast,
        true,
        "a valid YaRN beta_fast: use a finite value > 0 (e.g. 32)",
    )?;
    finite(
        "yarn_beta_slow",
        params.yarn_beta_slow,
        true,
        "a valid YaRN beta_slow: use a finite value > 0 (e.g. 1)",
    )?;
    if let (Some(fast), Some(slow)) = (params.yarn_beta_fast, params.yarn_beta_slow)
        && fast <= slow
    {
        return Err(Error::param(
            "yarn_beta_fast",
            format!("{fast} must be greater than yarn_beta_slow ({slow}), e.g. 32 and 1"),
        ));
    }
    if params.yarn_orig_ctx == Some(0) {
        return Err(Error::param(
            "yarn_orig_ctx",
            "must be at least 1 (leave it unset for the model's)",
        ));
    }
    let (head_k, head_v) = head_sizes(model);
    for (name, ty, head) in [
        ("type_k", params.type_k, head_k),
        ("type_v", params.type_v, head_v),
    ] {
        if ty.is_quantized() && head % ty.block_size() != 0 {
            return Err(Error::param(
                name,
                format!(
                    "{} stores blocks of {} values, and this model's head size {head} is not a \
                     multiple of {}: use f32, f16 or bf16",
                    ty.name(),
                    ty.block_size(),
                    ty.block_size()
                ),
            ));
        }
    }
    if params.type_v.is_quantized() && params.flash_attention == FlashAttention::Off {
        return Err(Error::param(
            "type_v",
            format!(
                "a quantized V cache ({}) needs flash attention: use FlashAttention::On or Auto, \
                 or an f32, f16 or bf16 V cache",
                params.type_v.name()
            ),
        ));
    }
    Ok(())
}

/// The pooling a context will use: the params', else the model's metadata.
fn resolved_pooling(model: &Model, params: &ContextParams) -> Pooling {
    if params.pooling != Pooling::FromModel {
        return params.pooling;
    }
    let arch = model.meta("general.architecture").unwrap_or_default();
    match model
        .meta(&format!("{arch}.pooling_type"))
        .and_then(|v| v.trim().parse::<i64>().ok())
    {
        Some(raw) => match Pooling::from_raw(raw as sys::llama_pooling_type) {
            Pooling::FromModel => Pooling::None,
            p => p,
        },
        None => Pooling::None,
    }
}

/// Checks the batch sizes against the sequence count where llama.cpp would abort, computing
/// them as `llama_context`'s constructor does (`n_batch` capped at the unpadded `n_ctx` for
/// causal attention, `n_ubatch` at `n_batch`, `n_ctx` padded to 256 per sequence).
fn check_batch_shape(
    model: &Model,
    params: &ContextParams,
    n_ctx: u32,
    causal: bool,
    kv_unified: bool,
) -> Result<()> {
    let n_seq = params.n_seq_max;
    let n_batch = if causal {
        n_ctx.min(params.n_batch)
    } else {
        params.n_batch
    };
    let n_ubatch = n_batch.min(params.n_ubatch);
    // Every decode reserves one output per sequence, at most n_batch of them
    // (`GGML_ASSERT(n_outputs_max <= cparams.n_outputs_max)` in output_reserve).
    if n_seq > n_batch {
        let capped = if causal && n_ctx < params.n_batch {
            format!(" (n_batch {} capped at n_ctx {n_ctx})", params.n_batch)
        } else {
            String::new()
        };
        return Err(Error::param(
            "n_seq_max",
            format!(
                "{n_seq} sequences need n_batch >= {n_seq}, but it is {n_batch}{capped}: raise \
                 n_batch (and n_ctx) or lower n_seq_max"
            ),
        ));
    }
    // Mean pooling: the worst-case graph is reserved for min(n_ctx, n_ubatch) tokens rounded
    // up to a multiple of n_seq_max, and its pooling matrix must match the outputs
    // (`GGML_ASSERT(ggml_can_mul_mat(a, b))` otherwise).
    if params.embeddings && resolved_pooling(model, params) == Pooling::Mean && n_seq > 1 {
        let pad = |n: u32| n.div_ceil(256).saturating_mul(256);
        let n_ctx_final = if kv_unified {
            pad(n_ctx)
        } else {
            pad(pad(n_ctx) / n_seq).saturating_mul(n_seq)
        };
        let n_tokens = n_ctx_final.min(n_ubatch);
        if n_tokens % n_seq != 0 {
            let down = n_tokens / n_seq * n_seq;
            let hint = if down > 0 {
                format!("use n_ubatch {down} or another multiple of {n_seq}")
            } else {
                format!("use n_ubatch >= {n_seq}")
            };
            return Err(Error::param(
                "n_ubatch",
                format!(
                    "with mean pooling, llama.cpp needs the ubatch ({n_tokens} tokens) to be a \
                     multiple of n_seq_max ({n_seq}): {hint}, or another n_seq_max"
                ),
            ));
        }
    }
    Ok(())
}

impl<'model> Context<'model> {
    /// Creates a context.
    ///
    /// # Failure
    /// [`Error::ContextTooLarge`] if `n_ctx` exceeds the model's training context (unless
    /// allowed), [`Error::InvalidParam`] for zero batch sizes, thread counts or sequence
    /// counts, or a model loaded with `vocab_only`, [`Error::ContextCreate`] if llama.cpp
    /// fails (e.g. out of memory). Combinations llama.cpp would abort the process on are
    /// [`Error::InvalidParam`] too, each saying which values work: more sequences than
    /// `n_batch` (as capped at `n_ctx`), mean pooling with a ubatch that is not a multiple of
    /// `n_seq_max`, a quantized K or V cache on heads that are not a multiple of its block
    /// size, a quantized V cache with flash attention off, and NaN, infinite or out-of-range
    /// RoPE/YaRN values.
    pub fn new(model: &'model Model, params: &ContextParams) -> Result<Self> {
        Self::with_kv_unified(model, params, false)
    }

    /// [`Context::new`] with llama.cpp's `kv_unified` set as given: one KV buffer shared by
    /// all sequences, so a decode of many sequences is one ubatch (llama.cpp splits a batch
    /// into equal-length per-sequence slices otherwise). Used by [`crate::Embedder`].
    pub(crate) fn with_kv_unified(
        model: &'model Model,
        params: &ContextParams,
        kv_unified: bool,
    ) -> Result<Self> {
        let n_ctx_train = model.n_ctx_train();
        let requested = if params.n_ctx == 0 {
            n_ctx_train
        } else {
            params.n_ctx
        };
        if n_ctx_train > 0 && requested > n_ctx_train && !params.allow_exceeding_train_context {
            return Err(Error::ContextTooLarge {
                requested,
                n_ctx_train,
            });
        }
        if requested == 0 {
            return Err(Error::param(
                "n_ctx",
                "the model does not say its context length; set n_ctx",
            ));
        }
        if params.n_batch == 0 {
            return Err(Error::param("n_batch", "must be at least 1"));
        }
        if params.n_ubatch == 0 {
            return Err(Error::param("n_ubatch", "must be at least 1"));
        }
        // SAFETY: a constant query.
        let max_seq = unsafe { sys::llama_max_parallel_sequences() };
        if params.n_seq_max == 0 || params.n_seq_max as usize > max_seq {
            return Err(Error::param(
                "n_seq_max",
                format!("must be in 1..={max_seq}"),
            ));
        }
        if model.is_vocab_only() {
            return Err(Error::param(
                "model",
                "loaded with vocab_only: it has no weights to run",
            ));
        }
        check_tuning(model, params)?;
        let causal = match params.attention {
            AttentionType::FromModel => model.causal_attention(),
            AttentionType::Causal => true,
            AttentionType::NonCausal => false,
        };
        check_batch_shape(
            model,
            params,
            requested,
            causal,
            params.kv_unified || kv_unified,
        )?;
        let n_threads = thread_count("n_threads", params.n_threads)?;
        let n_threads_batch = thread_count("n_threads_batch", params.n_threads_batch)?;

        // SAFETY: returns a plain struct by value.
        let mut raw = unsafe { sys::llama_context_default_params() };
        raw.n_ctx = requested;
        raw.n_batch = params.n_batch;
        raw.n_ubatch = params.n_ubatch;
        raw.n_seq_max = params.n_seq_max;
        if let Some(n) = n_threads {
            raw.n_threads = n;
        }
        if let Some(n) = n_threads_batch {
            raw.n_threads_batch = n;
        }
        raw.embeddings = params.embeddings;
        raw.pooling_type = params.pooling.raw();
        raw.flash_attn_type = params.flash_attention.raw();
        raw.type_k = params.type_k.raw();
        raw.type_v = params.type_v.raw();
        raw.offload_kqv = params.offload_kqv;
        raw.op_offload = params.op_offload;
        raw.swa_full = params.swa_full;
        raw.kv_unified = params.kv_unified;
        raw.attention_type = params.attention.raw();
        raw.rope_scaling_type = params.rope_scaling.raw();
        // Unset values keep llama.cpp's "use the model's" markers (0 or -1).
        if let Some(v) = params.rope_freq_base {
            raw.rope_freq_base = v;
        }
        if let Some(v) = params.rope_freq_scale {
            raw.rope_freq_scale = v;
        }
        if let Some(v) = params.yarn_ext_factor {
            raw.yarn_ext_factor = v;
        }
        if let Some(v) = params.yarn_attn_factor {
            raw.yarn_attn_factor = v;
        }
        if let Some(v) = params.yarn_beta_fast {
            raw.yarn_beta_fast = v;
        }
        if let Some(v) = params.yarn_beta_slow {
            raw.yarn_beta_slow = v;
        }
        if let Some(v) = params.yarn_orig_ctx {
            raw.yarn_orig_ctx = v;
        }
        if kv_unified {
            raw.kv_unified = true;
        }

        let adapters = crate::lora::adapters_read_guard();
        let (ptr, message) = ffi::gate(|| {
            // SAFETY: a valid model that outlives the context ('model); plain parameters.
            unsafe { sys::llama_init_from_model(model.as_ptr(), raw) }
        });
        drop(adapters);
        let ptr = NonNull::new(ptr).ok_or(Error::ContextCreate { message })?;
        let abort = Arc::new(AtomicBool::new(false));
        // SAFETY: a valid context; the flag lives in an Arc the context keeps until after
        // llama_free.
        let (n_ctx, n_batch, n_ubatch, n_seq_max, pooling) = unsafe {
            sys::llama_set_abort_callback(
                ptr.as_ptr(),
                Some(abort_trampoline),
                Arc::as_ptr(&abort) as *mut c_void,
            );
            (
                sys::llama_n_ctx(ptr.as_ptr()),
                sys::llama_n_batch(ptr.as_ptr()),
                sys::llama_n_ubatch(ptr.as_ptr()),
                sys::llama_n_seq_max(ptr.as_ptr()),
                Pooling::from_raw(sys::llama_pooling_type(ptr.as_ptr())),
            )
        };
        Ok(Context {
            ptr,
            model,
            n_ctx,
            n_batch,
            n_ubatch,
            n_seq_max,
            embeddings: params.embeddings,
            pooling,
            causal,
            outputs: Vec::new(),
            abort,
            _not_sync: PhantomData,
        })
    }

    pub(crate) fn as_ptr(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }

    /// The model this context runs.
    pub fn model(&self) -> &'model Model {
        self.model
    }

    /// The context size in tokens, as llama.cpp set it up (rounded up to a multiple of 256).
    pub fn n_ctx(&self) -> u32 {
        self.n_ctx
    }

    /// The maximum number of tokens per [`Context::decode`].
    pub fn n_batch(&self) -> u32 {
        self.n_batch
    }

    /// The physical batch size.
    pub fn n_ubatch(&self) -> u32 {
        self.n_ubatch
    }

    /// The number of sequences (valid sequence ids are `0..n_seq_max`).
    pub fn n_seq_max(&self) -> u32 {
        self.n_seq_max
    }

    /// Whether the context computes embeddings.
    pub fn embeddings_enabled(&self) -> bool {
        self.embeddings
    }

    /// The pooling in effect.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// A handle that cancels decoding from another thread.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle(Arc::clone(&self.abort))
    }

    /// Sets the threads used for single tokens and for batches.
    pub fn set_threads(&mut self, n_threads: u32, n_threads_batch: u32) -> Result<()> {
        let n = thread_count("n_threads", Some(n_threads))?.unwrap_or(1);
        let nb = thread_count("n_threads_batch", Some(n_threads_batch))?.unwrap_or(1);
        // SAFETY: a valid context, exclusively borrowed.
        unsafe { sys::llama_set_n_threads(self.as_ptr(), n, nb) };
        Ok(())
    }

    pub(crate) fn check_seq_id(&self, seq_id: i32) -> Result<i32> {
        if u32::try_from(seq_id).is_ok_and(|s| s < self.n_seq_max) {
            Ok(seq_id)
        } else {
            Err(Error::SeqIdOutOfRange {
                seq_id,
                n_seq_max: self.n_seq_max,
            })
        }
    }

    /// Checks a batch against this context without decoding it.
    pub fn validate(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Err(Error::InvalidBatch {
                reason: "the batch is empty",
            });
        }
        if batch.len() > self.n_batch as usize {
            return Err(Error::BatchTooLarge {
                n_tokens: batch.len(),
                n_batch: self.n_batch,
            });
        }
        // llama.cpp asserts this for non-causal models (it would abort the process), and with
        // pooled embeddings it pools each ubatch separately (the result would be wrong).
        let pooled = self.embeddings && self.pooling != Pooling::None;
        if (pooled || !self.causal) && batch.len() > self.n_ubatch as usize {
            return Err(Error::BatchTooLarge {
                n_tokens: batch.len(),
                n_batch: self.n_ubatch,
            });
        }
        for token in batch.tokens() {
            self.model.check_token(token)?;
        }
        for &seq_id in batch.all_seq_ids() {
            self.check_seq_id(seq_id)?;
        }
        Ok(())
    }

    /// Decodes a batch: runs the model over its tokens, adds them to the memory and computes
    /// the outputs the batch asks for (in an embeddings context: for every token).
    ///
    /// # Failure
    /// Checked before llama.cpp sees the batch: [`Error::InvalidBatch`] (empty),
    /// [`Error::BatchTooLarge`] (more than `n_batch` tokens; more than `n_ubatch` for pooled
    /// embeddings or a non-causal model), [`Error::TokenOutOfVocab`],
    /// [`Error::SeqIdOutOfRange`]. From `llama_decode`, as `llama.h` documents its return
    /// codes: 1 → [`Error::NoKvSlot`], 2 → [`Error::Aborted`], -1 →
    /// [`Error::DecodeInvalidInput`] (e.g. positions that do not continue the sequence),
    /// anything else → [`Error::Decode`].
    pub fn decode(&mut self, batch: &Batch) -> Result<()> {
        self.validate(batch)?;
        self.outputs.clear();
        let mut seq_ptrs = batch.seq_id_ptrs();
        let mut raw = batch.raw(&mut seq_ptrs);
        if self.embeddings {
            // llama.cpp requires every token to be an output when computing embeddings; a
            // null `logits` array asks for exactly that.
            raw.logits = std::ptr::null_mut();
        }
        let adapters = crate::lora::adapters_read_guard();
        let (rc, message) = ffi::gate(|| {
            // SAFETY: a valid context, exclusively borrowed; every array in `raw` has
            // n_tokens entries and outlives the call; llama.cpp only reads them.
            unsafe { sys::llama_decode(self.as_ptr(), raw) }
        });
        drop(adapters);
        match rc {
            0 => {}
            1 => return Err(Error::NoKvSlot),
            2 => return Err(Error::Aborted),
            -1 => return Err(Error::DecodeInvalidInput { message }),
            code => return Err(Error::Decode { code, message }),
        }
        if self.embeddings {
            self.outputs.extend(0..batch.len());
        } else {
            self.outputs.extend(batch.output_indices());
        }
        if !self.outputs.is_empty() {
            // Let llama.cpp put its output rows (logits and embeddings) in batch order now,
            // while we hold `&mut`, so the `&self` accessors below only read.
            // SAFETY: a valid context after a successful decode.
            unsafe { sys::llama_get_logits(self.as_ptr()) };
        }
        Ok(())
    }

    /// Batch indices that have outputs (logits or embeddings) from the last decode.
    pub fn output_indices(&self) -> &[usize] {
        &self.outputs
    }

    pub(crate) fn check_output(&self, index: usize) -> Result<i32> {
        if self.outputs.binary_search(&index).is_ok() {
            i32::try_from(index).map_err(|_| Error::NoOutput { index })
        } else {
            Err(Error::NoOutput { index })
        }
    }

    /// The logits (one per vocabulary entry) of the token at batch index `index` of the last
    /// decode. The slice borrows the context: it cannot be held across the next decode.
    ///
    /// # Failure
    /// [`Error::NoOutput`] if that token's output was not requested or there was no decode.
    pub fn logits(&self, index: usize) -> Result<&[f32]> {
        let i = self.check_output(index)?;
        // SAFETY: the index had an output in the last decode; the buffer holds n_vocab floats
        // per output and lives until the next call that takes `&mut self`.
        unsafe {
            let ptr = sys::llama_get_logits_ith(self.as_ptr(), i);
            if ptr.is_null() {
                return Err(Error::NoOutput { index });
            }
            Ok(std::slice::from_raw_parts(
                ptr,
                self.model.n_vocab() as usize,
            ))
        }
    }

    /// The logits of the last output of the last decode.
    pub fn last_logits(&self) -> Result<&[f32]> {
        let index = *self.outputs.last().ok_or(Error::NoOutput { index: 0 })?;
        self.logits(index)
    }

    pub(crate) fn memory(&self) -> sys::llama_memory_t {
        // SAFETY: a valid context; null for models without memory (the memory functions
        // accept null).
        unsafe { sys::llama_get_memory(self.as_ptr()) }
    }

    /// Clears the memory (all sequences).
    pub fn clear_memory(&mut self) {
        // SAFETY: a valid context, exclusively borrowed.
        unsafe { sys::llama_memory_clear(self.memory(), true) };
    }

    /// Removes the tokens of sequence `seq_id` (all sequences for `None`) at positions in
    /// `positions`. Returns `false` if a partial removal is impossible (recurrent models).
    pub fn seq_rm(
        &mut self,
        seq_id: Option<i32>,
        positions: impl RangeBounds<i32>,
    ) -> Result<bool> {
        let seq = match seq_id {
            Some(s) => self.check_seq_id(s)?,
            None => -1,
        };
        let (p0, p1) = position_range(&positions)?;
        // SAFETY: checked sequence id, exclusively borrowed context.
        Ok(unsafe { sys::llama_memory_seq_rm(self.memory(), seq, p0, p1) })
    }

    /// Copies the tokens of sequence `src` at `positions` to sequence `dst`.
    pub fn seq_cp(&mut self, src: i32, dst: i32, positions: impl RangeBounds<i32>) -> Result<()> {
        let (src, dst) = (self.check_seq_id(src)?, self.check_seq_id(dst)?);
        let (p0, p1) = position_range(&positions)?;
        // SAFETY: checked sequence ids, exclusively borrowed context.
        unsafe { sys::llama_memory_seq_cp(self.memory(), src, dst, p0, p1) };
        Ok(())
    }

    /// Removes every token that does not belong to sequence `seq_id`. (With `n_seq_max > 1`
    /// each sequence has its own KV stream, and only tokens sharing `seq_id`'s stream are
    /// affected.)
    pub fn seq_keep(&mut self, seq_id: i32) -> Result<()> {
        let seq = self.check_seq_id(seq_id)?;
        // SAFETY: checked sequence id, exclusively borrowed context.
        unsafe { sys::llama_memory_seq_keep(self.memory(), seq) };
        Ok(())
    }

    /// The largest position of sequence `seq_id` in the memory, `None` if it is empty.
    pub fn seq_pos_max(&self, seq_id: i32) -> Result<Option<i32>> {
        let seq = self.check_seq_id(seq_id)?;
        // SAFETY: checked sequence id; a read-only query.
        let pos = unsafe { sys::llama_memory_seq_pos_max(self.memory(), seq) };
        Ok((pos >= 0).then_some(pos))
    }

    /// The smallest position of sequence `seq_id` in the memory, `None` if it is empty.
    pub fn seq_pos_min(&self, seq_id: i32) -> Result<Option<i32>> {
        let seq = self.check_seq_id(seq_id)?;
        // SAFETY: checked sequence id; a read-only query.
        let pos = unsafe { sys::llama_memory_seq_pos_min(self.memory(), seq) };
        Ok((pos >= 0).then_some(pos))
    }

    /// The whole state (memory, outputs) as bytes, for [`Context::load_state`].
    pub fn save_state(&mut self) -> Result<Vec<u8>> {
        // SAFETY: a valid context, exclusively borrowed; writes at most `size` bytes.
        unsafe {
            let size = sys::llama_state_get_size(self.as_ptr());
            let mut buf = vec![0u8; size];
            let (n, message) =
                ffi::gate(|| sys::llama_state_get_data(self.as_ptr(), buf.as_mut_ptr(), buf.len()));
            if n == 0 && size > 0 {
                return Err(Error::State {
                    operation: "saving the state",
                    message,
                });
            }
            buf.truncate(n);
            Ok(buf)
        }
    }

    /// Restores a state saved by [`Context::save_state`] of a context with the same model and
    /// parameters. Outputs of earlier decodes are no longer available afterwards.
    pub fn load_state(&mut self, state: &[u8]) -> Result<()> {
        self.outputs.clear();
        let (n, message) = ffi::gate(|| {
            // SAFETY: reads at most state.len() bytes; exclusively borrowed context.
            unsafe { sys::llama_state_set_data(self.as_ptr(), state.as_ptr(), state.len()) }
        });
        if n == 0 {
            return Err(Error::State {
                operation: "loading the state",
                message,
            });
        }
        Ok(())
    }

    /// Saves the state and the tokens it was built from to a session file.
    pub fn save_state_file(&mut self, path: impl AsRef<Path>, tokens: &[Token]) -> Result<()> {
        let c_path = ffi::path_c_string(path.as_ref())?;
        let ids: Vec<sys::llama_token> = tokens.iter().map(|t| t.0).collect();
        let (ok, message) = ffi::gate(|| {
            // SAFETY: NUL-terminated path; `ids` has the length we pass.
            unsafe {
                sys::llama_state_save_file(self.as_ptr(), c_path.as_ptr(), ids.as_ptr(), ids.len())
            }
        });
        if !ok {
            return Err(Error::State {
                operation: "saving the session file",
                message,
            });
        }
        Ok(())
    }

    /// Restores a session file written by [`Context::save_state_file`]; returns its tokens.
    pub fn load_state_file(&mut self, path: impl AsRef<Path>) -> Result<Vec<Token>> {
        let path = path.as_ref();
        std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let c_path = ffi::path_c_string(path)?;
        self.outputs.clear();
        let mut ids: Vec<sys::llama_token> = vec![0; self.n_ctx as usize];
        let mut count = 0usize;
        let (ok, message) = ffi::gate(|| {
            // SAFETY: NUL-terminated path; `ids` has the capacity we pass.
            unsafe {
                sys::llama_state_load_file(
                    self.as_ptr(),
                    c_path.as_ptr(),
                    ids.as_mut_ptr(),
                    ids.len(),
                    &mut count,
                )
            }
        });
        if !ok {
            return Err(Error::State {
                operation: "loading the session file",
                message,
            });
        }
        ids.truncate(count.min(ids.len()));
        Ok(ids.into_iter().map(Token).collect())
    }
}

/// `RangeBounds` → llama.cpp's `[p0, p1)` with -1 for open ends.
pub(crate) fn position_range(range: &impl RangeBounds<i32>) -> Result<(i32, i32)> {
    let check = |p: i32| {
        if p < 0 {
            Err(Error::InvalidPosition { pos: p })
        } else {
            Ok(p)
        }
    };
    let p0 = match range.start_bound() {
        Bound::Unbounded => -1,
        Bound::Included(&p) => check(p)?,
        Bound::Excluded(&p) => check(p)?.saturating_add(1),
    };
    let p1 = match range.end_bound() {
        Bound::Unbounded => -1,
        Bound::Excluded(&p) => check(p)?,
        Bound::Included(&p) => check(p)?.saturating_add(1),
    };
    Ok((p0, p1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(position_range(&(..)).unwrap(), (-1, -1));
        assert_eq!(position_range(&(3..)).unwrap(), (3, -1));
        assert_eq!(position_range(&(..7)).unwrap(), (-1, 7));
        assert_eq!(position_range(&(2..=4)).unwrap(), (2, 5));
        assert!(position_range(&(-3..4)).is_err());
    }
}
