//! Safe Rust API for [llama.cpp](https://github.com/ggml-org/llama.cpp), linked against the
//! official prebuilt release binaries (through `llama-prebuilt-sys`, which downloads, verifies
//! and links them: no C++ toolchain needed).
//!
//! - [`Backend`]: process-wide initialisation (done for you by the constructors): backends
//!   registered from the directory the library was loaded from, llama.cpp's log routed to the
//!   [`log`](https://docs.rs/log) crate (target `llama_cpp`), and an ABI probe that checks the
//!   loaded library against the headers the bindings were made from.
//! - [`Model`] (`Send + Sync`): load a GGUF file; metadata, vocabulary, tokenizer
//!   ([`Model::tokenize`], [`Model::token_piece`], [`Model::detokenize`]), chat templates
//!   ([`Model::chat_template`]).
//! - [`Context`] (`Send`, not `Sync`, borrows the model): [`Context::decode`] a validated
//!   [`Batch`], read [`Context::logits`] or embeddings ([`Context::embeddings_seq`],
//!   [`Context::embeddings_ith`]), manage the memory and save/restore the state.
//! - [`Embedder`]: embeddings of many texts, many sequences per decode (equal to one text at a
//!   time), and reranking of documents against a query with a [`Pooling::Rank`] model.
//! - [`LoraAdapter`] ([`Model::load_lora`], borrows the model): LoRA adapters set on a
//!   context with a scale ([`Context::set_loras`]); control vectors
//!   ([`Context::set_control_vector`]).
//! - [`Sampler`]: chains of greedy, dist, top-k, top-p, min-p, typical, temperature (fixed
//!   and dynamic), top-nσ, XTC, mirostat (1 and 2), penalties, DRY, logit bias, infill and
//!   GBNF grammar steps that sample *and* accept.
//! - [`Generator`]: a streaming iterator of UTF-8 text chunks that stops at end-of-generation
//!   tokens, stop strings and a token limit, and can be cancelled from another thread.
//! - [`ChatTemplate`]: the model's own Jinja chat template rendered with minijinja (llama.cpp's
//!   built-in matcher as the fallback), tools offered through it; [`Sampler::json_schema`]
//!   for output that validates against a JSON Schema ([`json_schema_to_gbnf`]);
//!   [`Sampler::tool_calls`] and [`ToolCallFormat`] to constrain and parse tool calls.
//!
//! Misuse is a compile error or an [`Error`], not undefined behaviour: a context cannot
//! outlive its model, logits cannot be held across a decode, bad token ids, sequence ids,
//! batch sizes, grammars and files are rejected before llama.cpp sees them, and panics in
//! callbacks never unwind into C.
//!
//! ```
//! use llama_prebuilt::{ContextParams, GenerateOptions, Model, ModelParams, Sampler};
//!
//! # let path = llama_prebuilt_test_support::gguf::tiny_model();
//! let model = Model::load(&path, &ModelParams::default())?;
//! let mut ctx = model.new_context(&ContextParams::default().n_ctx(2048))?;
//! let mut sampler = Sampler::chain().top_k(40).temperature(0.8).dist(1234);
//! let prompt = model.tokenize("The capital of France is", true)?;
//! for chunk in ctx.generate(&prompt, &mut sampler, GenerateOptions::default().max_tokens(32)) {
//!     print!("{}", chunk?);
//! }
//! # Ok::<(), llama_prebuilt::Error>(())
//! ```
//!
//! This crate supports the llama.cpp tag its bindings were generated for
//! ([`llama_prebuilt_sys::VERSION`]).

mod abi;
mod backend;
mod backend_libs;
mod batch;
mod batcher;
mod cancel;
mod chat;
mod context;
mod context_params;
mod context_seq;
mod embed;
mod error;
mod ffi;
mod generate;
pub mod gguf;
mod json_schema;
mod logging;
mod lora;
mod metadata_override;
mod model;
mod offload;
mod panic;
mod placement;
mod rpc;
mod sampler;
mod sampler_grammar;
mod text_stream;
mod token;

pub use backend::{Backend, Device, DeviceKind, LibDirSource};
pub use backend_libs::{BackendLibrary, BackendLoadError, BackendStatus};
pub use batch::Batch;
pub use batcher::{BatchEvent, Batcher, SequenceCancel};
pub use cancel::CancelHandle;
pub use chat::{
    ChatMessage, ChatOptions, ChatTemplate, ParsedReply, RenderedChat, Role, TemplatePath, Tool,
    ToolCall, ToolCallFormat,
};
pub use context::Context;
pub use context_params::{
    AttentionType, ContextParams, FlashAttention, KvCacheType, Pooling, RopeScaling,
};
pub use context_seq::SeqStateScope;
pub use embed::{Embedder, cosine_similarity, normalize};
pub use error::{Error, Result};
pub use generate::{GenerateOptions, Generator, StopReason};
pub use gguf::looks_like_gguf;
pub use json_schema::json_schema_to_gbnf;
pub use logging::LOG_TARGET;
pub use lora::LoraAdapter;
pub use metadata_override::MetadataValue;
pub use model::{GpuLayers, LoadMode, Model, ModelParams, ProgressCallback};
pub use offload::Offload;
pub use placement::SplitMode;
pub use rpc::{DEFAULT_RPC_TIMEOUT, RpcEndpoint, RpcServer};
pub use sampler::{Dry, Penalties, Sampler};
pub use sampler_grammar::LazyTrigger;
pub use token::{Token, TokenAttrs};

/// The README's example, compiled as a doctest so the documentation cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// The raw bindings this crate is built on.
pub use llama_prebuilt_sys as sys;
