//! A generator for tiny llama-architecture GGUF models with random weights.
//!
//! The models are meant for tests and benchmarks that need a real model file without a
//! download: llama.cpp loads them as ordinary `llama` models, generation is deterministic
//! (greedy sampling over fixed pseudo-random weights), and the vocabulary round-trips any
//! UTF-8 text byte for byte.
//!
//! # File layout
//!
//! GGUF version 3, little-endian, default alignment (32). Metadata keys are the ones
//! llama.cpp (tag b10199) reads for `general.architecture = "llama"`: the required
//! `llama.context_length`, `llama.embedding_length`, `llama.block_count`,
//! `llama.attention.layer_norm_rms_epsilon`, plus `llama.feed_forward_length`,
//! `llama.attention.head_count(_kv)`, `llama.rope.dimension_count`, `llama.rope.freq_base`,
//! `llama.vocab_size` and optionally `llama.pooling_type`.
//!
//! Tensors (shapes in GGUF order, innermost dimension first): `token_embd.weight`
//! `{n_embd, n_vocab}`, `output_norm.weight` `{n_embd}`, `output.weight` `{n_embd, n_vocab}`,
//! and per layer `blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate,
//! ffn_up, ffn_down}.weight`. Norm weights are f32 1.0; matrices are f32 (or f16 with
//! [`TinyModelSpec::f16_weights`]) drawn uniformly with a standard deviation of
//! `1/sqrt(fan_in)`, so activations stay around unit scale.
//!
//! # Vocabulary
//!
//! A byte-level BPE vocabulary (`tokenizer.ggml.model = "gpt2"`, pre-tokenizer `"qwen2"`):
//!
//! | ids | tokens |
//! |---|---|
//! | 0..=255 | one token per byte: id `b` is byte `b`, written in GPT-2's byte-to-unicode mapping |
//! | 256 | `<s>` (BOS, control) |
//! | 257 | `</s>` (EOS, control) |
//! | 258 | `<|im_start|>` (control) |
//! | 259 | `<|im_end|>` (control; llama.cpp marks it end-of-generation by its name) |
//! | 260.. | a few merged tokens ([`MERGES`]), so the BPE merge path is exercised |
//!
//! Why byte-level BPE rather than a SentencePiece (`"llama"`) vocabulary with `<0xNN>`
//! byte-fallback tokens: in llama.cpp an SPM vocabulary prepends a space to the text, turns
//! spaces into `▁` and strips one leading space again only in some detokenize modes (not
//! after a BOS token), and a literal `▁` in the input comes back as a space. Byte-level BPE
//! has none of that: every byte maps to exactly one token character and back. The
//! `"qwen2"` pre-tokenizer is chosen because llama.cpp turns off its
//! `clean_up_tokenization_spaces` post-processing for it (the default `"gpt-2"`
//! pre-tokenizer would turn `" ,"` into `","` on detokenize).
//!
//! The rows of `output.weight` for the four control tokens are zero, so their logits are
//! exactly 0 while the byte tokens' logits are random: greedy decoding practically never
//! picks BOS/EOS/chat markers and always produces the requested number of tokens. Tests of
//! end-of-generation handling can force EOS with a logit bias.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::gguf_writer::{Kv, TensorInfo, TensorType, cached_file, fnv1a64, write_gguf};
use crate::rng::SplitMix64;

/// Token id of `<s>`, the BOS token (added by tokenize when `add_special` is set).
pub const BOS_ID: i32 = 256;
/// Token id of `</s>`, the EOS token.
pub const EOS_ID: i32 = 257;
/// Token id of `<|im_start|>`.
pub const IM_START_ID: i32 = 258;
/// Token id of `<|im_end|>` (end-of-generation by llama.cpp's name-based detection).
pub const IM_END_ID: i32 = 259;

/// BPE merges, in rank order, written in GPT-2's byte-to-unicode alphabet (`Ġ` is a space).
/// Each adds one token (the concatenation) after the control tokens.
pub const MERGES: &[&str] = &[
    "h e", "Ġ t", "Ġt he", "i n", "e r", "a n", "l l", "o r", "Ġ a", "o n",
];

/// Number of tokens in the vocabulary.
pub const N_VOCAB: u32 = 256 + 4 + MERGES.len() as u32;

/// The chat template written by [`TinyModelSpec::tiny`]: the ChatML form, which
/// `llama_chat_apply_template` recognises by its `<|im_start|>` marker.
pub const DEFAULT_CHAT_TEMPLATE: &str = "{% for message in messages %}\
{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}\
{% endfor %}\
{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Bump when the bytes written for a given spec change (part of the cache file name).
const GENERATOR_VERSION: u32 = 1;

const LLAMA_FTYPE_ALL_F32: u32 = 0;
const LLAMA_FTYPE_MOSTLY_F16: u32 = 1;
const TOKEN_TYPE_NORMAL: i32 = 1;
const TOKEN_TYPE_CONTROL: i32 = 3;

/// Hyperparameters of a generated model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TinyModelSpec {
    /// Width of the residual stream (`llama.embedding_length`).
    pub n_embd: u32,
    /// Number of transformer blocks (`llama.block_count`), 1..=512.
    pub n_layer: u32,
    /// Attention heads; must divide `n_embd`, and `n_embd / n_head` must be even (RoPE).
    pub n_head: u32,
    /// Key/value heads (grouped-query attention); must divide `n_head`.
    pub n_head_kv: u32,
    /// Hidden width of the SwiGLU feed-forward block.
    pub n_ff: u32,
    /// Training context length (`llama.context_length`).
    pub n_ctx_train: u32,
    /// Seed of the weights; the same spec always produces the same file.
    pub seed: u64,
    /// `tokenizer.chat_template`; `None` leaves the key out (a model without a template).
    pub chat_template: Option<String>,
    /// `llama.pooling_type` (llama.h's `enum llama_pooling_type`: 0 none, 1 mean, 2 cls,
    /// 3 last, 4 rank); `None` leaves the key out.
    pub pooling: Option<u32>,
    /// Store the weight matrices as f16 instead of f32 (norms stay f32). Halves file size
    /// and memory traffic; used by [`TinyModelSpec::bench`].
    pub f16_weights: bool,
}

impl TinyModelSpec {
    /// A model that takes milliseconds to write and load: 64 wide, 2 layers, 4 heads with
    /// 2 KV heads, ChatML template, f32 weights (108,608 parameters, a 441 kB file).
    pub fn tiny() -> Self {
        TinyModelSpec {
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 128,
            n_ctx_train: 2048,
            seed: 0x5eed_11a3_a000_0001,
            chat_template: Some(DEFAULT_CHAT_TEMPLATE.to_string()),
            pooling: None,
            f16_weights: false,
        }
    }

    /// A model for compute-bound benchmarks with about `params_target` parameters: fixed
    /// width (1024, 16 heads, 4 KV heads, feed-forward 2816, f16 weights) and as many layers
    /// (1..=512) as bring the total closest to the target. Each layer has 11.27 M
    /// parameters, so `bench(100_000_000)` has 9 layers and `bench(500_000_000)` 44.
    pub fn bench(params_target: u64) -> Self {
        let mut spec = TinyModelSpec {
            n_embd: 1024,
            n_layer: 1,
            n_head: 16,
            n_head_kv: 4,
            n_ff: 2816,
            n_ctx_train: 4096,
            seed: 0xbe4c_0000_0000_0001,
            chat_template: Some(DEFAULT_CHAT_TEMPLATE.to_string()),
            pooling: None,
            f16_weights: true,
        };
        let fixed = spec.n_params_fixed();
        let per_layer = spec.n_params_per_layer();
        let layers = (params_target.saturating_sub(fixed) + per_layer / 2) / per_layer;
        spec.n_layer = layers.clamp(1, 512) as u32;
        spec
    }

    /// Total number of parameters (all tensor elements).
    pub fn n_params(&self) -> u64 {
        self.n_params_fixed() + u64::from(self.n_layer) * self.n_params_per_layer()
    }

    /// Size in bytes of the file [`write_model`] produces for this spec.
    pub fn file_size(&self) -> u64 {
        let infos: Vec<TensorInfo> = tensors(self).into_iter().map(|(t, _)| t).collect();
        crate::gguf_writer::file_size(&metadata(self), &infos)
    }

    fn head_dim(&self) -> u32 {
        self.n_embd / self.n_head
    }

    fn n_params_fixed(&self) -> u64 {
        let d = u64::from(self.n_embd);
        2 * u64::from(N_VOCAB) * d + d
    }

    fn n_params_per_layer(&self) -> u64 {
        let d = u64::from(self.n_embd);
        let kv = u64::from(self.head_dim()) * u64::from(self.n_head_kv);
        let ff = u64::from(self.n_ff);
        2 * d + 2 * d * d + 2 * d * kv + 3 * d * ff
    }

    fn validate(&self) -> io::Result<()> {
        let bad = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.n_embd == 0 || self.n_head == 0 || self.n_head_kv == 0 || self.n_ff == 0 {
            return bad(format!(
                "n_embd, n_head, n_head_kv and n_ff must be non-zero: {self:?}"
            ));
        }
        if !(1..=512).contains(&self.n_layer) {
            return bad(format!("n_layer must be in 1..=512, got {}", self.n_layer));
        }
        if !self.n_embd.is_multiple_of(self.n_head) || !self.head_dim().is_multiple_of(2) {
            return bad(format!(
                "n_head ({}) must divide n_embd ({}) into an even head size",
                self.n_head, self.n_embd
            ));
        }
        if !self.n_head.is_multiple_of(self.n_head_kv) {
            return bad(format!(
                "n_head_kv ({}) must divide n_head ({})",
                self.n_head_kv, self.n_head
            ));
        }
        if self.n_ctx_train == 0 {
            return bad("n_ctx_train must be non-zero".to_string());
        }
        Ok(())
    }
}

impl Default for TinyModelSpec {
    fn default() -> Self {
        Self::tiny()
    }
}

/// Writes the model described by `spec` to `path`, streaming the weights (memory use does
/// not grow with the model size). The output is a pure function of `spec`.
pub fn write_model(spec: &TinyModelSpec, path: &Path) -> io::Result<()> {
    spec.validate()?;
    let (infos, inits): (Vec<TensorInfo>, Vec<Init>) = tensors(spec).into_iter().unzip();
    write_gguf(path, &metadata(spec), &infos, |index, sink| {
        let mut rng =
            SplitMix64::new(spec.seed ^ (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let row_len = infos[index].dims[0];
        for j in 0..infos[index].n_elements() {
            sink(match inits[index] {
                Init::Ones => 1.0,
                Init::Uniform {
                    half_width,
                    zero_rows: (from, to),
                } => {
                    // Zero rows draw nothing, so the other rows' values do not depend on them.
                    if (from..to).contains(&(j / row_len)) {
                        0.0
                    } else {
                        half_width * rng.next_symmetric()
                    }
                }
            });
        }
    })
}

/// Returns the path of a model file for `spec`, writing it only if no complete file for
/// the same spec exists yet. Files live in `$LLAMA_TEST_MODEL_DIR`, else in
/// `<temp dir>/llama-prebuilt-test-models/`, named by a hash of the spec and the generator
/// version; they are written under a temporary name and renamed into place, so concurrent
/// processes never see a partial file. Useful for large benchmark models.
pub fn cached_model(spec: &TinyModelSpec) -> io::Result<PathBuf> {
    spec.validate()?;
    let key = fnv1a64(format!("v{GENERATOR_VERSION} {spec:?}").as_bytes());
    let name = format!("llama-{}x{}-{key:016x}.gguf", spec.n_layer, spec.n_embd);
    cached_file(&name, Some(spec.file_size()), |tmp| write_model(spec, tmp))
}

/// The [`TinyModelSpec::tiny`] model: resolved once per process through [`cached_model`]
/// (written unless a complete file from the same generator version is already there).
/// Panics if the file cannot be written.
pub fn tiny_model() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        cached_model(&TinyModelSpec::tiny())
            .unwrap_or_else(|e| panic!("cannot write the tiny test model: {e}"))
    })
    .clone()
}

/// GPT-2's byte-to-unicode mapping: printable Latin-1 bytes stand for themselves, the rest
/// are shifted to U+0100 and up (so a space is `Ġ`, U+0120). This is the text llama.cpp
/// stores for byte-level BPE tokens.
pub fn byte_token_text(b: u8) -> char {
    let printable = |c: u8| (0x21..=0x7e).contains(&c) || (0xa1..=0xac).contains(&c) || c >= 0xae;
    if printable(b) {
        return char::from(b);
    }
    let n = (0..b).filter(|&c| !printable(c)).count() as u32;
    char::from_u32(256 + n).expect("valid code point")
}

/// The token strings of the vocabulary, indexed by id.
pub fn vocab_tokens() -> Vec<String> {
    let mut tokens: Vec<String> = (0..=255u8)
        .map(|b| byte_token_text(b).to_string())
        .collect();
    for special in ["<s>", "</s>", "<|im_start|>", "<|im_end|>"] {
        tokens.push(special.to_string());
    }
    for merge in MERGES {
        tokens.push(merge.replace(' ', ""));
    }
    debug_assert_eq!(tokens.len() as u32, N_VOCAB);
    tokens
}

fn metadata(spec: &TinyModelSpec) -> Vec<(&'static str, Kv)> {
    use Kv::*;
    let tokens = vocab_tokens();
    let token_types: Vec<i32> = (0..N_VOCAB as i32)
        .map(|id| {
            if (BOS_ID..=IM_END_ID).contains(&id) {
                TOKEN_TYPE_CONTROL
            } else {
                TOKEN_TYPE_NORMAL
            }
        })
        .collect();
    let mut kvs = vec![
        ("general.architecture", Str("llama".into())),
        ("general.name", Str("llama-prebuilt tiny test model".into())),
        (
            "general.file_type",
            U32(if spec.f16_weights {
                LLAMA_FTYPE_MOSTLY_F16
            } else {
                LLAMA_FTYPE_ALL_F32
            }),
        ),
        ("llama.vocab_size", U32(N_VOCAB)),
        ("llama.context_length", U32(spec.n_ctx_train)),
        ("llama.embedding_length", U32(spec.n_embd)),
        ("llama.block_count", U32(spec.n_layer)),
        ("llama.feed_forward_length", U32(spec.n_ff)),
        ("llama.attention.head_count", U32(spec.n_head)),
        ("llama.attention.head_count_kv", U32(spec.n_head_kv)),
        ("llama.attention.layer_norm_rms_epsilon", F32(1e-5)),
        ("llama.rope.dimension_count", U32(spec.head_dim())),
        ("llama.rope.freq_base", F32(10000.0)),
    ];
    if let Some(pooling) = spec.pooling {
        kvs.push(("llama.pooling_type", U32(pooling)));
    }
    kvs.extend([
        ("tokenizer.ggml.model", Str("gpt2".into())),
        ("tokenizer.ggml.pre", Str("qwen2".into())),
        ("tokenizer.ggml.tokens", StrArray(tokens)),
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
    ]);
    if let Some(template) = &spec.chat_template {
        kvs.push(("tokenizer.chat_template", Str(template.clone())));
    }
    kvs
}

#[derive(Clone, Copy)]
enum Init {
    Ones,
    /// Uniform in `[-half_width, half_width)`, except that rows (index along the second
    /// dimension) in `zero_rows.0..zero_rows.1` are zero.
    Uniform {
        half_width: f32,
        zero_rows: (u64, u64),
    },
}

/// The tensors of the model `spec` describes, in file order, with how each is filled.
fn tensors(spec: &TinyModelSpec) -> Vec<(TensorInfo, Init)> {
    let d = u64::from(spec.n_embd);
    let kv = u64::from(spec.head_dim()) * u64::from(spec.n_head_kv);
    let ff = u64::from(spec.n_ff);
    let vocab = u64::from(N_VOCAB);
    let mat = if spec.f16_weights {
        TensorType::F16
    } else {
        TensorType::F32
    };
    // A uniform distribution on [-a, a] has standard deviation a / sqrt(3).
    let uniform = |std: f64| Init::Uniform {
        half_width: (std * 3f64.sqrt()) as f32,
        zero_rows: (0, 0),
    };
    let fan_in = |n: u64| uniform(1.0 / (n as f64).sqrt());
    // Layers writing into the residual stream are scaled down with depth.
    let residual = |n: u64| uniform(1.0 / ((n as f64) * 2.0 * f64::from(spec.n_layer)).sqrt());

    let mut tensors = Vec::with_capacity(3 + 9 * spec.n_layer as usize);
    let mut add = |name: String, dims: Vec<u64>, ty: TensorType, init: Init| {
        tensors.push((TensorInfo { name, dims, ty }, init));
    };
    add(
        "token_embd.weight".into(),
        vec![d, vocab],
        mat,
        uniform(1.0),
    );
    add(
        "output_norm.weight".into(),
        vec![d],
        TensorType::F32,
        Init::Ones,
    );
    let Init::Uniform { half_width, .. } = fan_in(d) else {
        unreachable!()
    };
    add(
        "output.weight".into(),
        vec![d, vocab],
        mat,
        // The control tokens' rows are zero (logit exactly 0); the merged tokens after
        // them stay random.
        Init::Uniform {
            half_width,
            zero_rows: (BOS_ID as u64, IM_END_ID as u64 + 1),
        },
    );
    for il in 0..u64::from(spec.n_layer) {
        let blk = |t: &str| format!("blk.{il}.{t}.weight");
        add(blk("attn_norm"), vec![d], TensorType::F32, Init::Ones);
        add(blk("attn_q"), vec![d, d], mat, fan_in(d));
        add(blk("attn_k"), vec![d, kv], mat, fan_in(d));
        add(blk("attn_v"), vec![d, kv], mat, fan_in(d));
        add(blk("attn_output"), vec![d, d], mat, residual(d));
        add(blk("ffn_norm"), vec![d], TensorType::F32, Init::Ones);
        add(blk("ffn_gate"), vec![d, ff], mat, fan_in(d));
        add(blk("ffn_up"), vec![d, ff], mat, fan_in(d));
        add(blk("ffn_down"), vec![ff, d], mat, residual(ff));
    }
    tensors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gguf_writer::align;
    use std::fs;

    const GGML_TYPE_F32: u32 = 0;
    const GGML_TYPE_F16: u32 = 1;

    #[test]
    fn byte_mapping_is_a_bijection_onto_gpt2_alphabet() {
        assert_eq!(byte_token_text(b'a'), 'a');
        assert_eq!(byte_token_text(b' '), 'Ġ');
        assert_eq!(byte_token_text(b'\n'), 'Ċ');
        assert_eq!(byte_token_text(0xad), '\u{143}');
        let mut all: Vec<char> = (0..=255u8).map(byte_token_text).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn vocab_is_unique_and_merges_resolve() {
        let tokens = vocab_tokens();
        let mut sorted = tokens.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), tokens.len());
        for merge in MERGES {
            let (a, b) = merge.split_once(' ').unwrap();
            assert!(tokens.iter().any(|t| t == a), "{a}");
            assert!(tokens.iter().any(|t| t == b), "{b}");
        }
    }

    #[test]
    fn sizes() {
        let tiny = TinyModelSpec::tiny();
        assert_eq!(
            tiny.n_params(),
            2 * 270 * 64 + 64 + 2 * (128 + 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 128)
        );
        assert_eq!(TinyModelSpec::bench(100_000_000).n_layer, 9);
        assert_eq!(TinyModelSpec::bench(500_000_000).n_layer, 44);
        assert_eq!(TinyModelSpec::bench(0).n_layer, 1);
        for target in [100_000_000u64, 300_000_000, 500_000_000] {
            let got = TinyModelSpec::bench(target).n_params() as f64;
            assert!((got / target as f64 - 1.0).abs() < 0.06, "{target}: {got}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "llama-prebuilt-bad-spec-{}.gguf",
            std::process::id()
        ));
        for spec in [
            TinyModelSpec {
                n_head: 3,
                ..TinyModelSpec::tiny()
            },
            TinyModelSpec {
                n_head_kv: 3,
                ..TinyModelSpec::tiny()
            },
            TinyModelSpec {
                n_layer: 0,
                ..TinyModelSpec::tiny()
            },
            TinyModelSpec {
                n_embd: 4,
                n_head: 4,
                n_head_kv: 4,
                ..TinyModelSpec::tiny()
            },
        ] {
            let err = write_model(&spec, &path).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{spec:?}");
        }
        assert!(!path.exists());
    }

    /// Reads the file back with an independent little parser and checks the structure
    /// llama.cpp's gguf reader insists on: counts, contiguous aligned offsets, file size.
    #[test]
    fn written_file_parses() {
        let dir = std::env::temp_dir();
        for spec in [
            TinyModelSpec::tiny(),
            TinyModelSpec {
                f16_weights: true,
                pooling: Some(1),
                chat_template: None,
                ..TinyModelSpec::tiny()
            },
        ] {
            let path = dir.join(format!(
                "llama-prebuilt-parse-{}-{}.gguf",
                std::process::id(),
                spec.f16_weights
            ));
            write_model(&spec, &path).unwrap();
            let bytes = fs::read(&path).unwrap();
            let again = {
                write_model(&spec, &path).unwrap();
                fs::read(&path).unwrap()
            };
            fs::remove_file(&path).unwrap();
            assert_eq!(bytes, again, "deterministic");
            assert_eq!(bytes.len() as u64, spec.file_size());

            let mut p = Parser {
                bytes: &bytes,
                pos: 0,
            };
            assert_eq!(p.take(4), b"GGUF");
            assert_eq!(p.u32(), 3);
            let n_tensors = p.u64();
            let n_kv = p.u64();
            assert_eq!(n_tensors, 3 + 9 * u64::from(spec.n_layer));
            let mut keys = Vec::new();
            for _ in 0..n_kv {
                keys.push(p.string());
                let ty = p.u32();
                p.skip_value(ty);
            }
            assert!(keys.iter().any(|k| k == "llama.block_count"));
            assert_eq!(
                keys.iter().any(|k| k == "tokenizer.chat_template"),
                spec.chat_template.is_some()
            );
            assert_eq!(
                keys.iter().any(|k| k == "llama.pooling_type"),
                spec.pooling.is_some()
            );
            let mut expected_offset = 0;
            for _ in 0..n_tensors {
                let name = p.string();
                let n_dims = p.u32();
                let dims: Vec<u64> = (0..n_dims).map(|_| p.u64()).collect();
                let ty = p.u32();
                let offset = p.u64();
                assert_eq!(offset, expected_offset, "{name}");
                let elem = if ty == GGML_TYPE_F16 { 2 } else { 4 };
                if n_dims == 1 {
                    assert_eq!(ty, GGML_TYPE_F32, "{name}");
                }
                expected_offset += align(dims.iter().product::<u64>() * elem);
            }
            let data_start = align(p.pos as u64);
            assert_eq!(data_start + expected_offset, bytes.len() as u64);
        }
    }

    struct Parser<'a> {
        bytes: &'a [u8],
        pos: usize,
    }

    impl Parser<'_> {
        fn take(&mut self, n: usize) -> &[u8] {
            let s = &self.bytes[self.pos..self.pos + n];
            self.pos += n;
            s
        }
        fn u32(&mut self) -> u32 {
            u32::from_le_bytes(self.take(4).try_into().unwrap())
        }
        fn u64(&mut self) -> u64 {
            u64::from_le_bytes(self.take(8).try_into().unwrap())
        }
        fn string(&mut self) -> String {
            let n = self.u64() as usize;
            String::from_utf8(self.take(n).to_vec()).unwrap()
        }
        fn skip_value(&mut self, ty: u32) {
            match ty {
                0 | 1 | 7 => drop(self.take(1)),
                2 | 3 => drop(self.take(2)),
                4..=6 => drop(self.take(4)),
                10..=12 => drop(self.take(8)),
                8 => drop(self.string()),
                9 => {
                    let elem = self.u32();
                    let n = self.u64();
                    for _ in 0..n {
                        self.skip_value(elem);
                    }
                }
                other => panic!("bad type {other}"),
            }
        }
    }
}
