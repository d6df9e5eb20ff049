//! The one error type of the crate.

use std::path::PathBuf;

use crate::gguf::GgufError;
use crate::token::Token;

use crate::backend_libs::BackendLibrary;
use crate::model::GpuLayers;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong. Each variant names what failed with the values involved;
/// `message` fields carry the last error line llama.cpp logged during the failing call, when
/// there was one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- backend ---------------------------------------------------------------------------
    /// Registering the ggml backends from `lib_dir` produced no device at all (wrong directory,
    /// or the CPU backend library is missing from it).
    #[error(
        "no ggml backend device loaded from {lib_dir} (set LLAMA_LIB_DIR to the directory holding the llama.cpp libraries)"
    )]
    NoBackendDevices {
        /// The directory the backends were loaded from.
        lib_dir: PathBuf,
    },
    /// [`ModelParams::require_gpu`](crate::ModelParams::require_gpu) is set, but llama.cpp
    /// would offload nothing because no GPU device is registered. `not_loaded` lists the
    /// backend modules of the library directory that did not load, with the reason (e.g.
    /// `vulkan` without `libvulkan.so.1`).
    #[error(
        "GPU offload is required ({} layers), but no GPU device is available{}",
        crate::offload::describe(*requested),
        fmt_not_loaded(not_loaded)
    )]
    NoGpuDevice {
        /// The layers asked for.
        requested: GpuLayers,
        /// The backend modules that did not load.
        not_loaded: Vec<BackendLibrary>,
    },
    /// [`Backend::init_with_lib_dir`](crate::Backend::init_with_lib_dir) was called after the
    /// backend had already been initialised from another directory.
    #[error(
        "the llama.cpp backend is already initialised from {current}, cannot switch to {requested}"
    )]
    BackendAlreadyInitialized {
        /// The directory the backend was initialised from.
        current: PathBuf,
        /// The directory that was asked for.
        requested: PathBuf,
    },
    /// The loaded library's default parameters differ from what the vendored headers document:
    /// the library and the bindings do not belong to the same llama.cpp version.
    #[error(
        "ABI mismatch between the loaded llama.cpp library and the bindings: {what} is {found}, the headers say {expected}"
    )]
    AbiMismatch {
        /// The struct field or size that differs.
        what: &'static str,
        /// The value the vendored headers document.
        expected: String,
        /// The value the loaded library reports.
        found: String,
    },

    // ---- RPC servers -----------------------------------------------------------------------
    /// An RPC endpoint string is not `host:port` as llama.cpp parses it.
    #[error("invalid RPC endpoint {endpoint:?}: {reason}")]
    RpcEndpoint {
        /// The string given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The library directory has no RPC backend (`libggml-rpc` / `ggml-rpc.dll`).
    #[error(
        "the RPC backend is not available: no ggml-rpc library in {lib_dir} (official release archives ship it; set LLAMA_LIB_DIR to a release's library directory)"
    )]
    RpcUnavailable {
        /// The directory the backends were loaded from.
        lib_dir: PathBuf,
    },
    /// Nothing answered at an RPC endpoint (refused, timed out, unresolvable, or busy with
    /// another client).
    #[error("RPC server {endpoint} is unreachable: {reason}")]
    RpcUnreachable {
        /// The endpoint, `host:port`.
        endpoint: String,
        /// What happened.
        reason: String,
    },
    /// Something answered at an RPC endpoint, but not a compatible ggml RPC server.
    #[error("{endpoint} is not a compatible ggml RPC server: {reason}")]
    RpcProtocol {
        /// The endpoint, `host:port`.
        endpoint: String,
        /// What was wrong with the answer.
        reason: String,
    },

    // ---- files and models ------------------------------------------------------------------
    /// A file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (`NotFound` for a missing file).
        #[source]
        source: std::io::Error,
    },
    /// The file is not a well-formed GGUF file (checked before llama.cpp sees it).
    #[error("{path} is not a valid GGUF model: {source}")]
    InvalidGguf {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: GgufError,
    },
    /// llama.cpp refused to load the model.
    #[error("llama.cpp failed to load the model {path}{}", fmt_message(message))]
    ModelLoad {
        /// The file.
        path: PathBuf,
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
    /// The progress callback asked to stop loading.
    #[error("loading {path} was cancelled by the progress callback")]
    LoadCancelled {
        /// The file.
        path: PathBuf,
    },

    /// A LoRA adapter file is not something llama.cpp can use with this model (checked in Rust
    /// before llama.cpp reads it: several of these would abort the process in llama.cpp).
    #[error("{path} is not a usable LoRA adapter: {reason}")]
    InvalidAdapter {
        /// The file.
        path: PathBuf,
        /// What is wrong, and what would work.
        reason: String,
    },
    /// llama.cpp refused the LoRA adapter (e.g. a tensor its base model does not have, or a
    /// shape that does not match: an adapter for another base model).
    #[error(
        "llama.cpp failed to load the LoRA adapter {path}{}",
        fmt_message(message)
    )]
    AdapterLoad {
        /// The file.
        path: PathBuf,
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
    /// A LoRA adapter loaded for one model was set on a context of another.
    #[error("the LoRA adapter {path} was loaded for a different model than the context's")]
    AdapterModelMismatch {
        /// The adapter's file.
        path: PathBuf,
    },

    // ---- parameters and contexts -----------------------------------------------------------
    /// A parameter value is out of its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParam {
        /// The parameter.
        name: &'static str,
        /// Why the value is rejected.
        reason: String,
    },
    /// The requested context is larger than the context the model was trained with, and
    /// [`ContextParams::allow_exceeding_train_context`](crate::ContextParams::allow_exceeding_train_context)
    /// was not set.
    #[error(
        "context of {requested} tokens exceeds the model's training context of {n_ctx_train} tokens"
    )]
    ContextTooLarge {
        /// The requested `n_ctx`.
        requested: u32,
        /// The model's training context length.
        n_ctx_train: u32,
    },
    /// llama.cpp could not create the context (out of memory, unsupported parameters).
    #[error("llama.cpp failed to create the context{}", fmt_message(message))]
    ContextCreate {
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },

    // ---- tokens and batches ----------------------------------------------------------------
    /// A token id is not in the model's vocabulary.
    #[error("token id {token} is outside the vocabulary (0..{n_vocab})")]
    TokenOutOfVocab {
        /// The offending token.
        token: Token,
        /// Size of the vocabulary.
        n_vocab: u32,
    },
    /// A sequence id is negative or not below the context's `n_seq_max`.
    #[error("sequence id {seq_id} is outside 0..{n_seq_max}")]
    SeqIdOutOfRange {
        /// The offending sequence id.
        seq_id: i32,
        /// The context's number of sequences.
        n_seq_max: u32,
    },
    /// A token position is negative.
    #[error("position {pos} is negative")]
    InvalidPosition {
        /// The offending position.
        pos: i32,
    },
    /// [`Batch::add`](crate::Batch::add) on a full batch.
    #[error("the batch is full ({capacity} tokens)")]
    BatchFull {
        /// The batch's capacity.
        capacity: usize,
    },
    /// A batch holds more tokens than the context's `n_batch` allows in one decode.
    #[error("the batch has {n_tokens} tokens, the context accepts at most {n_batch} per decode")]
    BatchTooLarge {
        /// Tokens in the batch.
        n_tokens: usize,
        /// The context's `n_batch`.
        n_batch: u32,
    },
    /// An empty batch, or a token added without any sequence id.
    #[error("invalid batch: {reason}")]
    InvalidBatch {
        /// What is wrong.
        reason: &'static str,
    },
    /// Text too long for llama.cpp's 32-bit lengths, or tokenization failed.
    #[error("cannot tokenize: {reason}")]
    Tokenize {
        /// Why.
        reason: &'static str,
    },
    /// A string passed to C contains a NUL byte.
    #[error("{what} contains a NUL byte at offset {position}")]
    NulByte {
        /// Which argument.
        what: &'static str,
        /// Offset of the first NUL byte.
        position: usize,
    },

    // ---- decoding --------------------------------------------------------------------------
    /// `llama_decode` returned 1: no KV-cache slot for the batch (reduce the batch or grow the
    /// context). The memory is unchanged.
    #[error("no KV-cache slot for the batch (context full?)")]
    NoKvSlot,
    /// `llama_decode` returned 2: aborted through the cancel handle. Ubatches processed before
    /// the abort stay in the context's memory.
    #[error("decoding was aborted")]
    Aborted,
    /// `llama_decode` returned -1: llama.cpp rejected the batch.
    #[error("llama.cpp rejected the batch{}", fmt_message(message))]
    DecodeInvalidInput {
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
    /// `llama_decode` returned another non-zero code (< -1: fatal; processed ubatches stay in
    /// the memory).
    #[error("llama_decode failed with code {code}{}", fmt_message(message))]
    Decode {
        /// The return code.
        code: i32,
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
    /// No logits or embeddings were produced for that batch index in the last decode.
    #[error("no output for batch index {index} in the last decode")]
    NoOutput {
        /// The batch index asked for.
        index: usize,
    },
    /// Embeddings were asked for, but the context was created without
    /// [`ContextParams::embeddings`](crate::ContextParams::embeddings) (or pooled embeddings
    /// with pooling `None`).
    #[error("embeddings are not available: {reason}")]
    EmbeddingsUnavailable {
        /// Why.
        reason: &'static str,
    },
    /// One of the inputs of [`Embedder::embed_batch`](crate::Embedder::embed_batch) (or
    /// [`Embedder::rerank`](crate::Embedder::rerank)) cannot be embedded as it is: empty, or
    /// longer than one decode holds.
    #[error("input {index} cannot be embedded: {reason}")]
    EmbedInput {
        /// Its position in the input slice (for `rerank`: the document's).
        index: usize,
        /// Why, and what to change.
        reason: String,
    },

    // ---- sampling --------------------------------------------------------------------------
    /// The GBNF grammar does not parse, has no rule named `root`, or is left-recursive.
    #[error("invalid grammar (root rule {root:?}){}", fmt_message(message))]
    InvalidGrammar {
        /// The start rule that was asked for.
        root: String,
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
    /// The grammar does not allow this token here (nothing else was accepted).
    #[error("the grammar does not allow token {token} here")]
    GrammarRejected {
        /// The token.
        token: Token,
    },
    /// The sampler chain did not select a token (it has no final greedy/dist step).
    #[error("the sampler chain selected no token (end the chain with greedy() or dist())")]
    NoTokenSelected,
    /// A sampler built for one model was used with a context of another.
    #[error("the sampler was built for a different model than the context's")]
    ModelMismatch,
    /// The model's vocabulary is empty, so there is no candidate token to sample (llama.cpp
    /// would abort the process in most sampling steps).
    #[error("the model's vocabulary is empty: there is no token to sample")]
    EmptyVocabulary,
    /// [`Sampler::infill`](crate::Sampler::infill) was given a model it cannot work with.
    #[error("the infill sampler cannot be used with this model: {reason}")]
    InfillUnsupported {
        /// What the model lacks, and what works instead.
        reason: String,
    },

    // ---- chat and state --------------------------------------------------------------------
    /// llama.cpp does not recognise the chat template.
    #[error("chat template not supported by llama_chat_apply_template")]
    UnsupportedChatTemplate,
    /// The chat template called `raise_exception`: it rejects the conversation (e.g. roles
    /// that do not alternate).
    #[error("the chat template raised an exception: {message}")]
    ChatTemplateRaised {
        /// The template's message.
        message: String,
    },
    /// The chat template does not render with the Jinja engine (syntax or runtime error), and
    /// llama.cpp's built-in matcher does not recognise it either (or was not tried).
    #[error("the chat template cannot be rendered: {message}")]
    ChatTemplateRender {
        /// The Jinja engine's error.
        message: String,
    },
    /// A JSON Schema uses something the GBNF converter cannot express, or is malformed.
    #[error("unsupported JSON schema at {path}: {reason}")]
    UnsupportedSchema {
        /// Where in the schema (`#/properties/name`, …).
        path: String,
        /// The feature or problem.
        reason: String,
    },
    /// A model's reply starts a tool call that does not parse.
    #[error("cannot parse the tool call: {reason}")]
    ToolCallParse {
        /// What is wrong.
        reason: String,
    },
    /// Saving or restoring the context state failed.
    #[error("{operation} failed{}", fmt_message(message))]
    State {
        /// What was attempted.
        operation: &'static str,
        /// The last error llama.cpp logged, if any.
        message: Option<String>,
    },
}

/// `; not loaded: vulkan (why), …`, or a note that there is no GPU backend module at all.
pub(crate) fn fmt_not_loaded(not_loaded: &[BackendLibrary]) -> String {
    if not_loaded.is_empty() {
        return " (every backend module loaded; none of the devices to use is a GPU)".into();
    }
    let list: Vec<String> = not_loaded
        .iter()
        .map(|l| match &l.status {
            crate::BackendStatus::NotLoaded(why) => format!("{} ({why})", l.name),
            crate::BackendStatus::Loaded { .. } => l.name.clone(),
        })
        .collect();
    format!("; not loaded: {}", list.join(", "))
}

fn fmt_message(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    #[cold]
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    #[cold]
    pub(crate) fn param(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParam {
            name,
            reason: reason.into(),
        }
    }
}
