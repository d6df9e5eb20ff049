//! A generator for tiny **reranking** GGUF models with random weights: llama.cpp's `qwen3`
//! architecture with a classification head, the shape of Qwen3-Reranker conversions.
//!
//! llama.cpp (b10199) ranks with `qwen3` models this way when the context pools with
//! `LLAMA_POOLING_TYPE_RANK`: the last token's hidden state (after `output_norm`) goes through
//! `cls.output.weight` (`{n_embd, n_cls_out}`), then a softmax over the `n_cls_out` outputs
//! (`qwen3.classifier.output_labels`, here `["yes", "no"]`); `llama_get_embeddings_seq` returns
//! those probabilities and a reranker's score is the first one.
//!
//! Same vocabulary as [`crate::gguf`] (byte-level BPE, BOS `<s>` added, ChatML markers), so
//! any text tokenizes. Tensors: `token_embd`, `output_norm`, `output`, `cls.output`, and per
//! layer the llama ones plus `attn_q_norm`/`attn_k_norm` (`{head_dim}`). Optionally the
//! model carries a `tokenizer.chat_template.rerank` template (`{query}`, `{document}`), which
//! llama.cpp's server (and `Embedder::rerank`) use to build the prompt.

use std::io;
use std::path::{Path, PathBuf};

use crate::gguf::{self, BOS_ID, EOS_ID, IM_END_ID, MERGES, N_VOCAB};
use crate::gguf_writer::{Kv, TensorInfo, cached_file, fnv1a64, write_gguf};
use crate::rng::SplitMix64;

/// The rerank template [`RerankModelSpec::tiny`] stores (Qwen3-Reranker's shape, shortened).
pub const RERANK_TEMPLATE: &str = "<|im_start|>system\nJudge whether the Document meets the \
requirements of the Query. Answer yes or no.<|im_end|>\n<|im_start|>user\n<Query>: {query}\n\
<Document>: {document}<|im_end|>\n<|im_start|>assistant\n";

/// Hyperparameters of a generated reranker.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RerankModelSpec {
    /// Width of the residual stream.
    pub n_embd: u32,
    /// Number of blocks.
    pub n_layer: u32,
    /// Attention heads (must divide `n_embd` into an even head size).
    pub n_head: u32,
    /// Key/value heads (must divide `n_head`).
    pub n_head_kv: u32,
    /// Feed-forward width.
    pub n_ff: u32,
    /// Training context length.
    pub n_ctx_train: u32,
    /// Seed of the weights.
    pub seed: u64,
    /// `tokenizer.chat_template.rerank`; `None` leaves it out (llama.cpp then joins query and
    /// document with the vocabulary's special tokens).
    pub rerank_template: Option<String>,
}

impl RerankModelSpec {
    /// 64 wide, 2 layers, 4 heads (2 KV), labels `yes`/`no`, with [`RERANK_TEMPLATE`].
    pub fn tiny() -> Self {
        RerankModelSpec {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_ctx_train: 2048,
            seed: 0x5eed_4e4a_0000_0001,
            rerank_template: Some(RERANK_TEMPLATE.to_string()),
        }
    }

    fn head_dim(&self) -> u32 {
        self.n_embd / self.n_head
    }

    fn validate(&self) -> io::Result<()> {
        let ok = self.n_embd > 0
            && self.n_head > 0
            && self.n_head_kv > 0
            && self.n_ff > 0
            && self.n_ctx_train > 0
            && (1..=64).contains(&self.n_layer)
            && self.n_embd.is_multiple_of(self.n_head)
            && self.head_dim().is_multiple_of(2)
            && self.n_head.is_multiple_of(self.n_head_kv);
        if ok {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid reranker spec: {self:?}"),
            ))
        }
    }
}

impl Default for RerankModelSpec {
    fn default() -> Self {
        Self::tiny()
    }
}

fn metadata(spec: &RerankModelSpec) -> Vec<(&'static str, Kv)> {
    use Kv::*;
    let token_types = (0..N_VOCAB as i32)
        .map(|id| {
            if (BOS_ID..=IM_END_ID).contains(&id) {
                3
            } else {
                1
            }
        })
        .collect();
    let mut kvs = vec![
        ("general.architecture", Str("qwen3".into())),
        ("general.name", Str("llama-prebuilt tiny reranker".into())),
        ("general.file_type", U32(0)),
        ("qwen3.vocab_size", U32(N_VOCAB)),
        ("qwen3.context_length", U32(spec.n_ctx_train)),
        ("qwen3.embedding_length", U32(spec.n_embd)),
        ("qwen3.block_count", U32(spec.n_layer)),
        ("qwen3.feed_forward_length", U32(spec.n_ff)),
        ("qwen3.attention.head_count", U32(spec.n_head)),
        ("qwen3.attention.head_count_kv", U32(spec.n_head_kv)),
        ("qwen3.attention.layer_norm_rms_epsilon", F32(1e-6)),
        ("qwen3.rope.freq_base", F32(10000.0)),
        ("qwen3.pooling_type", U32(4)),
        (
            "qwen3.classifier.output_labels",
            StrArray(vec!["yes".into(), "no".into()]),
        ),
        ("tokenizer.ggml.model", Str("gpt2".into())),
        ("tokenizer.ggml.pre", Str("qwen2".into())),
        ("tokenizer.ggml.tokens", StrArray(gguf::vocab_tokens())),
        ("tokenizer.ggml.token_type", I32Array(token_types)),
        (
            "tokenizer.ggml.merges",
            StrArray(MERGES.iter().map(|m| m.to_string()).collect()),
        ),
        ("tokenizer.ggml.bos_token_id", U32(BOS_ID as u32)),
        ("tokenizer.ggml.eos_token_id", U32(EOS_ID as u32)),
        ("tokenizer.ggml.padding_token_id", U32(EOS_ID as u32)),
        ("tokenizer.ggml.add_bos_token", Bool(true)),
        ("tokenizer.ggml.add_eos_token", Bool(false)),
    ];
    if let Some(t) = &spec.rerank_template {
        kvs.push(("tokenizer.chat_template.rerank", Str(t.clone())));
    }
    kvs
}

/// (name, dims, ones?) of every tensor, in file order.
fn tensors(spec: &RerankModelSpec) -> Vec<(String, Vec<u64>, bool)> {
    let d = u64::from(spec.n_embd);
    let hd = u64::from(spec.head_dim());
    let kv = hd * u64::from(spec.n_head_kv);
    let ff = u64::from(spec.n_ff);
    let vocab = u64::from(N_VOCAB);
    let mut t = vec![
        ("token_embd.weight".to_string(), vec![d, vocab], false),
        ("output_norm.weight".to_string(), vec![d], true),
        ("output.weight".to_string(), vec![d, vocab], false),
        ("cls.output.weight".to_string(), vec![d, 2], false),
    ];
    for il in 0..spec.n_layer {
        let blk = |n: &str| format!("blk.{il}.{n}.weight");
        t.push((blk("attn_norm"), vec![d], true));
        t.push((blk("attn_q"), vec![d, d], false));
        t.push((blk("attn_k"), vec![d, kv], false));
        t.push((blk("attn_v"), vec![d, kv], false));
        t.push((blk("attn_q_norm"), vec![hd], true));
        t.push((blk("attn_k_norm"), vec![hd], true));
        t.push((blk("attn_output"), vec![d, d], false));
        t.push((blk("ffn_norm"), vec![d], true));
        t.push((blk("ffn_gate"), vec![d, ff], false));
        t.push((blk("ffn_up"), vec![d, ff], false));
        t.push((blk("ffn_down"), vec![ff, d], false));
    }
    t
}

/// Writes the reranker described by `spec` to `path` (all weights f32; a pure function of
/// `spec`).
pub fn write_rerank_model(spec: &RerankModelSpec, path: &Path) -> io::Result<()> {
    spec.validate()?;
    let tensors = tensors(spec);
    let infos: Vec<TensorInfo> = tensors
        .iter()
        .map(|(name, dims, _)| TensorInfo::f32(name.clone(), dims.clone()))
        .collect();
    write_gguf(path, &metadata(spec), &infos, |index, sink| {
        let (_, dims, ones) = &tensors[index];
        let mut rng =
            SplitMix64::new(spec.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Uniform with standard deviation 1/sqrt(fan_in) (1 for the embeddings).
        let fan_in = if index == 0 { 1 } else { dims[0] };
        let half_width = (3.0 / fan_in as f64).sqrt() as f32;
        for _ in 0..infos[index].n_elements() {
            sink(if *ones {
                1.0
            } else {
                half_width * rng.next_symmetric()
            });
        }
    })
}

/// The path of a reranker file for `spec`, written once (under a temporary name, then
/// renamed) into `$LLAMA_TEST_MODEL_DIR` or `<temp dir>/llama-prebuilt-test-models/`.
pub fn cached_rerank_model(spec: &RerankModelSpec) -> io::Result<PathBuf> {
    spec.validate()?;
    let key = fnv1a64(format!("v1 {spec:?}").as_bytes());
    cached_file(&format!("qwen3-rerank-{key:016x}.gguf"), None, |tmp| {
        write_rerank_model(spec, tmp)
    })
}

/// The [`RerankModelSpec::tiny`] reranker; panics if it cannot be written.
pub fn tiny_rerank_model() -> PathBuf {
    cached_rerank_model(&RerankModelSpec::tiny())
        .unwrap_or_else(|e| panic!("cannot write the tiny reranker: {e}"))
}
