//! Parameters of a [`Context`](crate::Context).

use llama_prebuilt_sys as sys;

/// How per-token embeddings are pooled into one vector per sequence (llama.h's
/// `enum llama_pooling_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Pooling {
    /// What the model's metadata says (none for generative models).
    #[default]
    FromModel,
    /// No pooling: only per-token embeddings.
    None,
    /// Mean over the sequence's tokens.
    Mean,
    /// The first (CLS) token's embedding.
    Cls,
    /// The last token's embedding.
    Last,
    /// Reranking score (models with a classification head).
    Rank,
}

impl Pooling {
    pub(crate) fn raw(self) -> sys::llama_pooling_type {
        (match self {
            Pooling::FromModel => sys::LLAMA_POOLING_TYPE_UNSPECIFIED,
            Pooling::None => sys::LLAMA_POOLING_TYPE_NONE,
            Pooling::Mean => sys::LLAMA_POOLING_TYPE_MEAN,
            Pooling::Cls => sys::LLAMA_POOLING_TYPE_CLS,
            Pooling::Last => sys::LLAMA_POOLING_TYPE_LAST,
            Pooling::Rank => sys::LLAMA_POOLING_TYPE_RANK,
        }) as sys::llama_pooling_type
    }

    pub(crate) fn from_raw(raw: sys::llama_pooling_type) -> Self {
        match raw as i64 {
            x if x == sys::LLAMA_POOLING_TYPE_NONE as i64 => Pooling::None,
            x if x == sys::LLAMA_POOLING_TYPE_MEAN as i64 => Pooling::Mean,
            x if x == sys::LLAMA_POOLING_TYPE_CLS as i64 => Pooling::Cls,
            x if x == sys::LLAMA_POOLING_TYPE_LAST as i64 => Pooling::Last,
            x if x == sys::LLAMA_POOLING_TYPE_RANK as i64 => Pooling::Rank,
            _ => Pooling::FromModel,
        }
    }
}

/// Whether attention runs as one fused flash-attention kernel (llama.h's
/// `enum llama_flash_attn_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FlashAttention {
    /// llama.cpp decides: on where every layer's device supports it (llama.cpp's default).
    #[default]
    Auto,
    /// Always: less memory for the attention scores and usually faster on GPUs; required for
    /// a quantized V cache. Context creation fails where a device cannot run it.
    On,
    /// Never: the plain `softmax(QKᵀ)V` graph (more memory for large batches). A quantized V
    /// cache is then rejected.
    Off,
}

impl FlashAttention {
    pub(crate) fn raw(self) -> sys::llama_flash_attn_type {
        (match self {
            FlashAttention::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttention::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttention::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        }) as sys::llama_flash_attn_type
    }
}

/// The element type of the K or V cache: the ggml types llama.cpp accepts for the KV cache
/// (`--cache-type-k/-v` of its tools). Smaller types hold more context in the same memory at
/// some cost in quality; the quantized ones store blocks of 32 values, so a model's head size
/// must be a multiple of 32, and a quantized V cache needs flash attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KvCacheType {
    /// 32-bit floats: exact, twice the memory of f16.
    F32,
    /// 16-bit floats (llama.cpp's default).
    #[default]
    F16,
    /// bfloat16: f16's size with f32's range.
    Bf16,
    /// 8-bit blocks (8.5 bits per value): nearly lossless, about half of f16.
    Q8_0,
    /// 4-bit blocks (4.5 bits per value).
    Q4_0,
    /// 4-bit blocks with an offset (5 bits per value).
    Q4_1,
    /// 4-bit non-linear blocks (4.5 bits per value).
    Iq4Nl,
    /// 5-bit blocks (5.5 bits per value).
    Q5_0,
    /// 5-bit blocks with an offset (6 bits per value).
    Q5_1,
}

impl KvCacheType {
    /// Every type, in declaration order.
    pub const ALL: [KvCacheType; 9] = [
        KvCacheType::F32,
        KvCacheType::F16,
        KvCacheType::Bf16,
        KvCacheType::Q8_0,
        KvCacheType::Q4_0,
        KvCacheType::Q4_1,
        KvCacheType::Iq4Nl,
        KvCacheType::Q5_0,
        KvCacheType::Q5_1,
    ];

    pub(crate) fn raw(self) -> sys::ggml_type {
        (match self {
            KvCacheType::F32 => sys::GGML_TYPE_F32,
            KvCacheType::F16 => sys::GGML_TYPE_F16,
            KvCacheType::Bf16 => sys::GGML_TYPE_BF16,
            KvCacheType::Q8_0 => sys::GGML_TYPE_Q8_0,
            KvCacheType::Q4_0 => sys::GGML_TYPE_Q4_0,
            KvCacheType::Q4_1 => sys::GGML_TYPE_Q4_1,
            KvCacheType::Iq4Nl => sys::GGML_TYPE_IQ4_NL,
            KvCacheType::Q5_0 => sys::GGML_TYPE_Q5_0,
            KvCacheType::Q5_1 => sys::GGML_TYPE_Q5_1,
        }) as sys::ggml_type
    }

    /// ggml's name for the type (`"q8_0"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            KvCacheType::F32 => "f32",
            KvCacheType::F16 => "f16",
            KvCacheType::Bf16 => "bf16",
            KvCacheType::Q8_0 => "q8_0",
            KvCacheType::Q4_0 => "q4_0",
            KvCacheType::Q4_1 => "q4_1",
            KvCacheType::Iq4Nl => "iq4_nl",
            KvCacheType::Q5_0 => "q5_0",
            KvCacheType::Q5_1 => "q5_1",
        }
    }

    /// Whether the type stores quantized blocks (everything but f32, f16 and bf16).
    pub fn is_quantized(self) -> bool {
        self.block_size() > 1
    }

    /// Values per block: 1 for the float types, 32 for the quantized ones.
    pub fn block_size(self) -> u32 {
        match self {
            KvCacheType::F32 | KvCacheType::F16 | KvCacheType::Bf16 => 1,
            _ => 32,
        }
    }
}

/// How RoPE positions are scaled to stretch a model beyond its training context (llama.h's
/// `enum llama_rope_scaling_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RopeScaling {
    /// What the model's metadata says (llama.cpp's default).
    #[default]
    FromModel,
    /// No scaling (the frequency scale is forced to 1).
    None,
    /// Linear position interpolation: positions are multiplied by the frequency scale.
    Linear,
    /// YaRN: interpolation that keeps the high frequencies (see the `yarn_*` settings).
    Yarn,
    /// LongRoPE (Phi-3 style per-dimension factors from the model).
    LongRope,
}

impl RopeScaling {
    pub(crate) fn raw(self) -> sys::llama_rope_scaling_type {
        (match self {
            RopeScaling::FromModel => sys::LLAMA_ROPE_SCALING_TYPE_UNSPECIFIED,
            RopeScaling::None => sys::LLAMA_ROPE_SCALING_TYPE_NONE,
            RopeScaling::Linear => sys::LLAMA_ROPE_SCALING_TYPE_LINEAR,
            RopeScaling::Yarn => sys::LLAMA_ROPE_SCALING_TYPE_YARN,
            RopeScaling::LongRope => sys::LLAMA_ROPE_SCALING_TYPE_LONGROPE,
        }) as sys::llama_rope_scaling_type
    }
}

/// Whether tokens attend only to earlier tokens (llama.h's `enum llama_attention_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AttentionType {
    /// What the model's metadata says (llama.cpp's default).
    #[default]
    FromModel,
    /// Each token sees itself and earlier tokens (generative models).
    Causal,
    /// Each token sees the whole batch (embedding models). A batch must then fit in one
    /// ubatch, which [`Context::decode`](crate::Context::decode) checks.
    NonCausal,
}

impl AttentionType {
    pub(crate) fn raw(self) -> sys::llama_attention_type {
        (match self {
            AttentionType::FromModel => sys::LLAMA_ATTENTION_TYPE_UNSPECIFIED,
            AttentionType::Causal => sys::LLAMA_ATTENTION_TYPE_CAUSAL,
            AttentionType::NonCausal => sys::LLAMA_ATTENTION_TYPE_NON_CAUSAL,
        }) as sys::llama_attention_type
    }
}

/// Parameters for [`Context::new`](crate::Context::new). Defaults are llama.cpp's (`n_ctx` 512, `n_batch` 2048,
/// `n_ubatch` 512, one sequence, 4 threads, no embeddings).
#[derive(Debug, Clone, PartialEq)]
pub struct ContextParams {
    pub(crate) n_ctx: u32,
    pub(crate) n_batch: u32,
    pub(crate) n_ubatch: u32,
    pub(crate) n_seq_max: u32,
    pub(crate) n_threads: Option<u32>,
    pub(crate) n_threads_batch: Option<u32>,
    pub(crate) embeddings: bool,
    pub(crate) pooling: Pooling,
    pub(crate) allow_exceeding_train_context: bool,
    pub(crate) flash_attention: FlashAttention,
    pub(crate) type_k: KvCacheType,
    pub(crate) type_v: KvCacheType,
    pub(crate) offload_kqv: bool,
    pub(crate) op_offload: bool,
    pub(crate) swa_full: bool,
    pub(crate) kv_unified: bool,
    pub(crate) attention: AttentionType,
    pub(crate) rope_scaling: RopeScaling,
    pub(crate) rope_freq_base: Option<f32>,
    pub(crate) rope_freq_scale: Option<f32>,
    pub(crate) yarn_ext_factor: Option<f32>,
    pub(crate) yarn_attn_factor: Option<f32>,
    pub(crate) yarn_beta_fast: Option<f32>,
    pub(crate) yarn_beta_slow: Option<f32>,
    pub(crate) yarn_orig_ctx: Option<u32>,
}

impl Default for ContextParams {
    fn default() -> Self {
        ContextParams {
            n_ctx: 512,
            n_batch: 2048,
            n_ubatch: 512,
            n_seq_max: 1,
            n_threads: None,
            n_threads_batch: None,
            embeddings: false,
            pooling: Pooling::FromModel,
            allow_exceeding_train_context: false,
            flash_attention: FlashAttention::Auto,
            type_k: KvCacheType::F16,
            type_v: KvCacheType::F16,
            offload_kqv: true,
            op_offload: true,
            swa_full: true,
            kv_unified: false,
            attention: AttentionType::FromModel,
            rope_scaling: RopeScaling::FromModel,
            rope_freq_base: None,
            rope_freq_scale: None,
            yarn_ext_factor: None,
            yarn_attn_factor: None,
            yarn_beta_fast: None,
            yarn_beta_slow: None,
            yarn_orig_ctx: None,
        }
    }
}

impl ContextParams {
    /// Context size in tokens (shared by all sequences); 0 means the model's training context.
    /// llama.cpp rounds it up to a multiple of 256.
    pub fn n_ctx(mut self, n_ctx: u32) -> Self {
        self.n_ctx = n_ctx;
        self
    }

    /// Maximum number of tokens in one [`Context::decode`](crate::Context::decode) call (capped at `n_ctx`).
    pub fn n_batch(mut self, n_batch: u32) -> Self {
        self.n_batch = n_batch;
        self
    }

    /// Physical batch size: how many tokens are computed at once.
    pub fn n_ubatch(mut self, n_ubatch: u32) -> Self {
        self.n_ubatch = n_ubatch;
        self
    }

    /// Number of distinct sequences (sequence ids `0..n_seq_max`), at most 256.
    pub fn n_seq_max(mut self, n_seq_max: u32) -> Self {
        self.n_seq_max = n_seq_max;
        self
    }

    /// Threads for single-token decodes and for batches (sets both).
    pub fn n_threads(mut self, n: u32) -> Self {
        self.n_threads = Some(n);
        self.n_threads_batch = Some(n);
        self
    }

    /// Threads for batches of more than one token.
    pub fn n_threads_batch(mut self, n: u32) -> Self {
        self.n_threads_batch = Some(n);
        self
    }

    /// Compute embeddings (in an embeddings context every token of a batch is an output).
    pub fn embeddings(mut self, embeddings: bool) -> Self {
        self.embeddings = embeddings;
        self
    }

    /// How embeddings are pooled per sequence.
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }

    /// Allow `n_ctx` beyond the model's training context (quality degrades; some models
    /// support it with RoPE scaling). Without this, [`Context::new`](crate::Context::new) fails with
    /// [`Error::ContextTooLarge`](crate::Error::ContextTooLarge).
    pub fn allow_exceeding_train_context(mut self, allow: bool) -> Self {
        self.allow_exceeding_train_context = allow;
        self
    }

    /// Flash attention: [`FlashAttention::Auto`] (default) lets llama.cpp pick per device.
    /// Trades: less memory for attention scores and usually speed on GPUs, against the
    /// plain graph's support on every device; a quantized V cache needs it.
    pub fn flash_attention(mut self, flash_attention: FlashAttention) -> Self {
        self.flash_attention = flash_attention;
        self
    }

    /// Element type of the K cache (default f16). Smaller types fit more context in the same
    /// memory and lose some precision; quantized types need a head size that is a multiple
    /// of 32 ([`Context::new`](crate::Context::new) checks).
    pub fn type_k(mut self, ty: KvCacheType) -> Self {
        self.type_k = ty;
        self
    }

    /// Element type of the V cache (default f16). As [`ContextParams::type_k`], and a
    /// quantized V cache also needs flash attention not [`FlashAttention::Off`].
    pub fn type_v(mut self, ty: KvCacheType) -> Self {
        self.type_v = ty;
        self
    }

    /// Keep the KV cache and the attention computation on the GPU with the layers (default
    /// true). Off saves GPU memory at the cost of moving K/V to the CPU every step.
    pub fn offload_kqv(mut self, offload: bool) -> Self {
        self.offload_kqv = offload;
        self
    }

    /// Let the scheduler run operations of host-resident weights on the GPU (default true):
    /// faster prompt processing with partial offload, more host-to-device copies.
    pub fn op_offload(mut self, offload: bool) -> Self {
        self.op_offload = offload;
        self
    }

    /// For sliding-window-attention models, keep a full-size cache for the SWA layers
    /// (default true): more memory, but any past state can be restored or reused. No effect
    /// on models without SWA.
    pub fn swa_full(mut self, full: bool) -> Self {
        self.swa_full = full;
        self
    }

    /// One KV buffer shared by all sequences (default false: each of the `n_seq_max`
    /// sequences gets `n_ctx / n_seq_max` cells of its own). Unified lets sequences of very
    /// different lengths share the space, at some speed cost when they do not share a prefix.
    pub fn kv_unified(mut self, unified: bool) -> Self {
        self.kv_unified = unified;
        self
    }

    /// Causal or non-causal attention instead of what the model says. Forcing non-causal
    /// attention on a generative model gives bidirectional embeddings (and meaningless
    /// next-token logits); a non-causal context decodes at most `n_ubatch` tokens at a time.
    pub fn attention(mut self, attention: AttentionType) -> Self {
        self.attention = attention;
        self
    }

    /// The RoPE scaling method (default: the model's). Extends the usable context beyond
    /// the training length at some quality cost; see [`RopeScaling`].
    pub fn rope_scaling(mut self, scaling: RopeScaling) -> Self {
        self.rope_scaling = scaling;
        self
    }

    /// RoPE base frequency instead of the model's (finite, > 0). Larger bases stretch the
    /// positions a model can tell apart ("NTK-aware" scaling) but change what it learned.
    pub fn rope_freq_base(mut self, base: f32) -> Self {
        self.rope_freq_base = Some(base);
        self
    }

    /// RoPE frequency scale instead of the model's (finite, in `(0, 1]` for stretching:
    /// 0.5 doubles the usable context with linear or YaRN scaling). Ignored with
    /// [`RopeScaling::None`].
    pub fn rope_freq_scale(mut self, scale: f32) -> Self {
        self.rope_freq_scale = Some(scale);
        self
    }

    /// YaRN extrapolation mix factor (finite, >= 0; 0 turns the YaRN ramp off; llama.cpp
    /// picks 1 with [`RopeScaling::Yarn`] and 0 otherwise).
    pub fn yarn_ext_factor(mut self, factor: f32) -> Self {
        self.yarn_ext_factor = Some(factor);
        self
    }

    /// YaRN attention magnitude scale (finite, > 0; default the model's). Compensates the
    /// attention entropy change of stretched positions.
    pub fn yarn_attn_factor(mut self, factor: f32) -> Self {
        self.yarn_attn_factor = Some(factor);
        self
    }

    /// YaRN low correction dimension (finite, > 0; default the model's, usually 32): where
    /// the ramp from extrapolation to interpolation starts. Must exceed
    /// [`ContextParams::yarn_beta_slow`] when both are set.
    pub fn yarn_beta_fast(mut self, beta: f32) -> Self {
        self.yarn_beta_fast = Some(beta);
        self
    }

    /// YaRN high correction dimension (finite, > 0; default the model's, usually 1).
    pub fn yarn_beta_slow(mut self, beta: f32) -> Self {
        self.yarn_beta_slow = Some(beta);
        self
    }

    /// The original (pre-scaling) context length YaRN computes with (at least 1; default the
    /// model's).
    pub fn yarn_orig_ctx(mut self, n_ctx: u32) -> Self {
        self.yarn_orig_ctx = Some(n_ctx);
        self
    }
}
