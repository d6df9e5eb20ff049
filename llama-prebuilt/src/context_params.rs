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
}
