//! The run-time ABI probe: the loaded library must agree with the vendored headers.
//!
//! The bindings are generated from `vendor-headers/` (llama.cpp tag b10199), while the library
//! is whatever the loader found. If the two disagree on a struct layout, every call that passes
//! parameters by value is undefined behaviour. The library's `*_default_params()` functions
//! return structs whose values llama.cpp's sources fix (`src/llama-model.cpp`,
//! `src/llama-context.cpp`, `src/llama.cpp` at b10199, the same files byte for byte at b10200);
//! a field inserted, removed or retyped shifts the others and shows up here as a wrong value. [`probe`] runs at
//! [`Backend`](crate::Backend) initialisation; a mismatch is [`Error::AbiMismatch`].
//!
//! The struct sizes the headers imply are checked at compile time below.

use std::fmt::Debug;
use std::mem::{align_of, size_of};

use llama_prebuilt_sys as sys;

use crate::error::{Error, Result};

// Sizes the vendored headers imply on 64-bit targets (bindgen's own layout tests cover the
// individual offsets).
#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(size_of::<sys::llama_model_params>() == 72);
    // Also at b10605: its `n_outputs_max_per_seq` (u32) fills what was padding.
    assert!(size_of::<sys::llama_context_params>() == 160);
    assert!(size_of::<sys::llama_sampler_chain_params>() == 1);
    assert!(size_of::<sys::llama_batch>() == 56);
    assert!(size_of::<sys::llama_token_data>() == 12);
    assert!(size_of::<sys::llama_token_data_array>() == 32);
    assert!(size_of::<sys::llama_chat_message>() == 16);
    assert!(size_of::<sys::llama_logit_bias>() == 8);
    assert!(align_of::<sys::llama_context_params>() == 8);
};

/// The default model parameters, as `llama_model_default_params()` at b10199 returns them.
pub(crate) struct ExpectedModelDefaults;

impl ExpectedModelDefaults {
    pub const N_GPU_LAYERS: i32 = -1;
    pub const SPLIT_MODE: i64 = sys::LLAMA_SPLIT_MODE_LAYER as i64;
    #[cfg(llama_abi = "b10199")]
    pub const LOAD_MODE: i64 = sys::LLAMA_LOAD_MODE_MMAP as i64;
    /// b10605's `llama_model_default_params()` picks the mode per device (`src/llama-model.cpp`).
    #[cfg(llama_abi = "b10605")]
    pub const LOAD_MODE: i64 = sys::LLAMA_LOAD_MODE_AUTO as i64;
    pub const MAIN_GPU: i32 = 0;
    pub const VOCAB_ONLY: bool = false;
    pub const CHECK_TENSORS: bool = false;
    pub const USE_EXTRA_BUFTS: bool = true;
    pub const NO_HOST: bool = false;
    pub const NO_ALLOC: bool = false;
    #[cfg(llama_abi = "b10605")]
    pub const LOAD_MTP: bool = false;
}

/// The default context parameters, as `llama_context_default_params()` at b10199 returns them.
pub(crate) struct ExpectedContextDefaults;

impl ExpectedContextDefaults {
    pub const N_CTX: u32 = 512;
    pub const N_BATCH: u32 = 2048;
    pub const N_UBATCH: u32 = 512;
    pub const N_SEQ_MAX: u32 = 1;
    pub const N_RS_SEQ: u32 = 0;
    pub const N_OUTPUTS_MAX: u32 = 0;
    /// b10605 (`src/llama-context.cpp`): one output per sequence unless asked.
    #[cfg(llama_abi = "b10605")]
    pub const N_OUTPUTS_MAX_PER_SEQ: u32 = 1;
    /// `GGML_DEFAULT_N_THREADS`.
    pub const N_THREADS: i32 = 4;
    pub const CTX_TYPE: i64 = sys::LLAMA_CONTEXT_TYPE_DEFAULT as i64;
    pub const ROPE_SCALING_TYPE: i64 = sys::LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED as i64;
    pub const POOLING_TYPE: i64 = sys::LLAMA_POOLING_TYPE_UNSPECIFIED as i64;
    pub const ATTENTION_TYPE: i64 = sys::LLAMA_ATTENTION_TYPE_UNSPECIFIED as i64;
    pub const FLASH_ATTN_TYPE: i64 = sys::LLAMA_FLASH_ATTN_TYPE_AUTO as i64;
    pub const ROPE_FREQ_BASE: f32 = 0.0;
    pub const ROPE_FREQ_SCALE: f32 = 0.0;
    pub const YARN_EXT_FACTOR: f32 = -1.0;
    pub const YARN_ATTN_FACTOR: f32 = -1.0;
    pub const YARN_BETA_FAST: f32 = -1.0;
    pub const YARN_BETA_SLOW: f32 = -1.0;
    pub const YARN_ORIG_CTX: u32 = 0;
    pub const DEFRAG_THOLD: f32 = -1.0;
    pub const TYPE_K: i64 = sys::GGML_TYPE_F16 as i64;
    pub const TYPE_V: i64 = sys::GGML_TYPE_F16 as i64;
    pub const EMBEDDINGS: bool = false;
    pub const OFFLOAD_KQV: bool = true;
    pub const NO_PERF: bool = true;
    pub const OP_OFFLOAD: bool = true;
    pub const SWA_FULL: bool = true;
    pub const KV_UNIFIED: bool = false;
    pub const N_SAMPLERS: usize = 0;
}

/// `llama_sampler_chain_default_params().no_perf` at b10199.
pub(crate) const EXPECTED_CHAIN_NO_PERF: bool = true;

fn expect<T: PartialEq + Debug>(what: &'static str, found: T, expected: T) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::AbiMismatch {
            what,
            expected: format!("{expected:?}"),
            found: format!("{found:?}"),
        })
    }
}

fn expect_null(what: &'static str, is_null: bool) -> Result<()> {
    if is_null {
        Ok(())
    } else {
        Err(Error::AbiMismatch {
            what,
            expected: "NULL".into(),
            found: "non-NULL".into(),
        })
    }
}

/// Compares the loaded library's default parameter structs with the headers' values.
pub(crate) fn probe() -> Result<()> {
    // SAFETY: these functions take nothing and return plain structs by value.
    let (m, c, s) = unsafe {
        (
            sys::llama_model_default_params(),
            sys::llama_context_default_params(),
            sys::llama_sampler_chain_default_params(),
        )
    };
    check_model(&m)?;
    check_context(&c)?;
    expect(
        "llama_sampler_chain_params.no_perf",
        s.no_perf,
        EXPECTED_CHAIN_NO_PERF,
    )
}

fn check_model(m: &sys::llama_model_params) -> Result<()> {
    type E = ExpectedModelDefaults;
    expect_null("llama_model_params.devices", m.devices.is_null())?;
    expect_null(
        "llama_model_params.tensor_buft_overrides",
        m.tensor_buft_overrides.is_null(),
    )?;
    expect(
        "llama_model_params.n_gpu_layers",
        m.n_gpu_layers,
        E::N_GPU_LAYERS,
    )?;
    expect(
        "llama_model_params.split_mode",
        m.split_mode as i64,
        E::SPLIT_MODE,
    )?;
    expect(
        "llama_model_params.load_mode",
        m.load_mode as i64,
        E::LOAD_MODE,
    )?;
    expect("llama_model_params.main_gpu", m.main_gpu, E::MAIN_GPU)?;
    expect_null("llama_model_params.tensor_split", m.tensor_split.is_null())?;
    expect_null(
        "llama_model_params.progress_callback",
        m.progress_callback.is_none(),
    )?;
    expect_null(
        "llama_model_params.progress_callback_user_data",
        m.progress_callback_user_data.is_null(),
    )?;
    expect_null("llama_model_params.kv_overrides", m.kv_overrides.is_null())?;
    expect("llama_model_params.vocab_only", m.vocab_only, E::VOCAB_ONLY)?;
    expect(
        "llama_model_params.check_tensors",
        m.check_tensors,
        E::CHECK_TENSORS,
    )?;
    expect(
        "llama_model_params.use_extra_bufts",
        m.use_extra_bufts,
        E::USE_EXTRA_BUFTS,
    )?;
    expect("llama_model_params.no_host", m.no_host, E::NO_HOST)?;
    #[cfg(llama_abi = "b10605")]
    expect("llama_model_params.load_mtp", m.load_mtp, E::LOAD_MTP)?;
    expect("llama_model_params.no_alloc", m.no_alloc, E::NO_ALLOC)
}

fn check_context(c: &sys::llama_context_params) -> Result<()> {
    type E = ExpectedContextDefaults;
    expect("llama_context_params.n_ctx", c.n_ctx, E::N_CTX)?;
    expect("llama_context_params.n_batch", c.n_batch, E::N_BATCH)?;
    expect("llama_context_params.n_ubatch", c.n_ubatch, E::N_UBATCH)?;
    expect("llama_context_params.n_seq_max", c.n_seq_max, E::N_SEQ_MAX)?;
    expect("llama_context_params.n_rs_seq", c.n_rs_seq, E::N_RS_SEQ)?;
    expect(
        "llama_context_params.n_outputs_max",
        c.n_outputs_max,
        E::N_OUTPUTS_MAX,
    )?;
    #[cfg(llama_abi = "b10605")]
    expect(
        "llama_context_params.n_outputs_max_per_seq",
        c.n_outputs_max_per_seq,
        E::N_OUTPUTS_MAX_PER_SEQ,
    )?;
    expect("llama_context_params.n_threads", c.n_threads, E::N_THREADS)?;
    expect(
        "llama_context_params.n_threads_batch",
        c.n_threads_batch,
        E::N_THREADS,
    )?;
    expect(
        "llama_context_params.ctx_type",
        c.ctx_type as i64,
        E::CTX_TYPE,
    )?;
    expect(
        "llama_context_params.rope_scaling_type",
        c.rope_scaling_type as i64,
        E::ROPE_SCALING_TYPE,
    )?;
    expect(
        "llama_context_params.pooling_type",
        c.pooling_type as i64,
        E::POOLING_TYPE,
    )?;
    expect(
        "llama_context_params.attention_type",
        c.attention_type as i64,
        E::ATTENTION_TYPE,
    )?;
    expect(
        "llama_context_params.flash_attn_type",
        c.flash_attn_type as i64,
        E::FLASH_ATTN_TYPE,
    )?;
    expect(
        "llama_context_params.rope_freq_base",
        c.rope_freq_base,
        E::ROPE_FREQ_BASE,
    )?;
    expect(
        "llama_context_params.rope_freq_scale",
        c.rope_freq_scale,
        E::ROPE_FREQ_SCALE,
    )?;
    expect(
        "llama_context_params.yarn_ext_factor",
        c.yarn_ext_factor,
        E::YARN_EXT_FACTOR,
    )?;
    expect(
        "llama_context_params.yarn_attn_factor",
        c.yarn_attn_factor,
        E::YARN_ATTN_FACTOR,
    )?;
    expect(
        "llama_context_params.yarn_beta_fast",
        c.yarn_beta_fast,
        E::YARN_BETA_FAST,
    )?;
    expect(
        "llama_context_params.yarn_beta_slow",
        c.yarn_beta_slow,
        E::YARN_BETA_SLOW,
    )?;
    expect(
        "llama_context_params.yarn_orig_ctx",
        c.yarn_orig_ctx,
        E::YARN_ORIG_CTX,
    )?;
    expect(
        "llama_context_params.defrag_thold",
        c.defrag_thold,
        E::DEFRAG_THOLD,
    )?;
    expect_null("llama_context_params.cb_eval", c.cb_eval.is_none())?;
    expect_null(
        "llama_context_params.cb_eval_user_data",
        c.cb_eval_user_data.is_null(),
    )?;
    expect("llama_context_params.type_k", c.type_k as i64, E::TYPE_K)?;
    expect("llama_context_params.type_v", c.type_v as i64, E::TYPE_V)?;
    expect_null(
        "llama_context_params.abort_callback",
        c.abort_callback.is_none(),
    )?;
    expect_null(
        "llama_context_params.abort_callback_data",
        c.abort_callback_data.is_null(),
    )?;
    expect(
        "llama_context_params.embeddings",
        c.embeddings,
        E::EMBEDDINGS,
    )?;
    expect(
        "llama_context_params.offload_kqv",
        c.offload_kqv,
        E::OFFLOAD_KQV,
    )?;
    expect("llama_context_params.no_perf", c.no_perf, E::NO_PERF)?;
    expect(
        "llama_context_params.op_offload",
        c.op_offload,
        E::OP_OFFLOAD,
    )?;
    expect("llama_context_params.swa_full", c.swa_full, E::SWA_FULL)?;
    expect(
        "llama_context_params.kv_unified",
        c.kv_unified,
        E::KV_UNIFIED,
    )?;
    expect_null("llama_context_params.samplers", c.samplers.is_null())?;
    expect(
        "llama_context_params.n_samplers",
        c.n_samplers,
        E::N_SAMPLERS,
    )?;
    expect_null("llama_context_params.ctx_other", c.ctx_other.is_null())
}

/// The build script's tag → ABI mapping, compiled here too so it is unit-tested.
#[cfg(test)]
mod abi_select {
    include!("../build/abi_select.rs");

    #[test]
    fn tags_select_the_newest_supported_abi_not_newer_than_them() {
        for (tag, abi) in [
            ("b10199", "b10199"),
            ("b10199-fixture", "b10199"),
            ("b10604", "b10199"),
            ("b10605", "b10605"),
            ("b10605-fixture", "b10605"),
            ("b11194", "b10605"),
            // Older than every supported tag, or not a `b<number>` tag: the oldest ABI.
            ("b6089", "b10199"),
            ("", "b10199"),
            ("newest", "b10199"),
            ("bxyz", "b10199"),
        ] {
            assert_eq!(abi_for(tag), abi, "{tag}");
        }
        assert!(
            SUPPORTED.windows(2).all(|w| w[0].0 < w[1].0),
            "oldest first"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shifted_field_is_reported() {
        // SAFETY: plain struct-returning calls.
        let mut c = unsafe { sys::llama_context_default_params() };
        assert!(check_context(&c).is_ok());
        c.n_ubatch = c.n_batch; // what a one-field shift could look like
        let err = check_context(&c).unwrap_err();
        assert!(
            matches!(
                err,
                Error::AbiMismatch {
                    what: "llama_context_params.n_ubatch",
                    ..
                }
            ),
            "{err}"
        );
        // SAFETY: as above, a plain struct-returning call.
        let mut m = unsafe { sys::llama_model_default_params() };
        assert!(check_model(&m).is_ok());
        m.use_extra_bufts = false;
        assert!(check_model(&m).is_err());
    }

    #[test]
    fn the_safe_context_defaults_are_the_headers_defaults() {
        // Every tuning field ContextParams::default() passes to llama.cpp must be the value
        // the probe expects from llama_context_default_params(), so an untouched setting
        // behaves exactly as llama.cpp's own default.
        use crate::context_params::ContextParams;
        type E = ExpectedContextDefaults;
        let p = ContextParams::default();
        assert_eq!(p.n_ctx, E::N_CTX);
        assert_eq!(p.n_batch, E::N_BATCH);
        assert_eq!(p.n_ubatch, E::N_UBATCH);
        assert_eq!(p.n_seq_max, E::N_SEQ_MAX);
        assert_eq!(p.embeddings, E::EMBEDDINGS);
        assert_eq!(p.pooling.raw() as i64, E::POOLING_TYPE);
        assert_eq!(p.flash_attention.raw() as i64, E::FLASH_ATTN_TYPE);
        assert_eq!(p.type_k.raw() as i64, E::TYPE_K);
        assert_eq!(p.type_v.raw() as i64, E::TYPE_V);
        assert_eq!(p.offload_kqv, E::OFFLOAD_KQV);
        assert_eq!(p.op_offload, E::OP_OFFLOAD);
        assert_eq!(p.swa_full, E::SWA_FULL);
        assert_eq!(p.kv_unified, E::KV_UNIFIED);
        assert_eq!(p.attention.raw() as i64, E::ATTENTION_TYPE);
        assert_eq!(p.rope_scaling.raw() as i64, E::ROPE_SCALING_TYPE);
        // Unset RoPE/YaRN values leave llama.cpp's "the model's" markers in place.
        assert_eq!(
            (
                p.rope_freq_base,
                p.rope_freq_scale,
                p.yarn_ext_factor,
                p.yarn_attn_factor,
                p.yarn_beta_fast,
                p.yarn_beta_slow,
                p.yarn_orig_ctx
            ),
            (None, None, None, None, None, None, None)
        );
    }
}
