//! The generated GGUF models against the real llama.cpp library, through the C reference
//! program `test-support/c/reference.c` (compiled here with `cc`).
//!
//! The library and headers are the test-support fixture's (a cached release-flags build of
//! llama.cpp b10199's source from its PyPI sdist); `LLAMA_TEST_LIB_DIR` and
//! `LLAMA_TEST_INCLUDE_DIRS` (colon-separated) override them, e.g. to try another build.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_prebuilt_test_support::gguf::{
    self, BOS_ID, EOS_ID, IM_END_ID, IM_START_ID, N_VOCAB, TinyModelSpec,
};
use llama_prebuilt_test_support::reference::{self, Output as Run};

struct Reference {
    exe: PathBuf,
    lib_dir: PathBuf,
}

fn lib_dir() -> PathBuf {
    match std::env::var_os("LLAMA_TEST_LIB_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => fixture().lib_dir.clone(),
    }
}

fn include_dirs() -> Vec<PathBuf> {
    match std::env::var_os("LLAMA_TEST_INCLUDE_DIRS").filter(|d| !d.is_empty()) {
        Some(dirs) => std::env::split_paths(&dirs).collect(),
        None => vec![fixture().include_dir.clone()],
    }
}

fn fixture() -> &'static llama_prebuilt_test_support::fixture::Fixture {
    llama_prebuilt_test_support::fixture::fixture().expect("the llama.cpp fixture builds")
}

/// Compiles reference.c once per test process (test_support::reference does the work).
fn reference() -> &'static Reference {
    static REFERENCE: OnceLock<Reference> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let lib_dir = lib_dir();
        assert!(
            lib_dir.join("libllama.so").exists(),
            "no libllama.so in {} (set LLAMA_TEST_LIB_DIR to a llama.cpp build's library dir)",
            lib_dir.display()
        );
        let exe = reference::compile(
            &lib_dir,
            &include_dirs(),
            Path::new(env!("CARGO_TARGET_TMPDIR")),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        Reference { exe, lib_dir }
    })
}

fn run(model: &Path, prompt: &str, n_predict: u32, extra: &[&str]) -> Run {
    let r = reference();
    reference::run(
        &r.exe,
        model,
        prompt,
        n_predict as usize,
        &r.lib_dir,
        2,
        extra,
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The bytes a token stands for, from the generator's own vocabulary table.
fn token_bytes(id: i32) -> Vec<u8> {
    let text = &gguf::vocab_tokens()[id as usize];
    text.chars()
        .map(|c| {
            (0..=255u8)
                .find(|&b| gguf::byte_token_text(b) == c)
                .expect("byte-level token")
        })
        .collect()
}

fn temp_model(spec: &TinyModelSpec, name: &str) -> PathBuf {
    let path =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}.gguf", std::process::id()));
    gguf::write_model(spec, &path).unwrap();
    path
}

#[test]
fn greedy_generation_produces_n_tokens_deterministically() {
    let model = gguf::tiny_model();
    let first = run(&model, "Hello, world", 24, &[]);
    let ids = first.generated();
    assert_eq!(ids.len(), 24, "{}", first.stdout);
    for &id in &ids {
        assert!((0..N_VOCAB as i32).contains(&id), "{id}");
        assert!(
            ![BOS_ID, EOS_ID, IM_START_ID, IM_END_ID].contains(&id),
            "control token {id} generated"
        );
    }
    let expected: Vec<u8> = ids.iter().flat_map(|&id| token_bytes(id)).collect();
    assert_eq!(first.bytes("text"), expected);
    assert!(first.timing("pp_tok_s") > 0.0);
    assert!(first.timing("tg_tok_s") > 0.0);
    assert_eq!(first.timing("tg_tokens"), 23.0);

    let second = run(&model, "Hello, world", 24, &[]);
    assert_eq!(
        second.generated(),
        ids,
        "greedy decoding of a fixed model is deterministic"
    );
    let other = run(&model, "Something else entirely", 24, &[]);
    assert_ne!(other.generated(), ids, "the prompt matters");
}

#[test]
fn mean_pooled_embeddings_are_finite() {
    let model = gguf::tiny_model();
    let parse = |r: &Run| -> Vec<f32> {
        r.line("emb")
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect()
    };
    let a = parse(&run(&model, "héllo wörld", 0, &["--embed"]));
    let b = parse(&run(&model, "a different sentence", 0, &["--embed"]));
    assert_eq!(a.len(), TinyModelSpec::tiny().n_embd as usize);
    assert!(a.iter().chain(&b).all(|v| v.is_finite()), "{a:?} {b:?}");
    assert!(a.iter().any(|&v| v != 0.0));
    assert_ne!(a, b);
}

#[test]
fn tokenizer_round_trips_utf8() {
    let model = gguf::tiny_model();
    for text in [
        "héllo wörld 🦙 日本語",
        " leading and trailing spaces  ",
        "punctuation , . ! ? ' s don't",
        "▁ is not a space; <s> and <|im_end|> are plain text here",
        "tabs\tand\nnewlines\r\n",
        "\u{7f}\u{80}\u{ad}ÿ",
    ] {
        let r = run(&model, text, 0, &["--roundtrip"]);
        assert_eq!(r.bytes("text"), text.as_bytes(), "{text:?}");
        assert_eq!(r.bytes("text_bos"), text.as_bytes(), "{text:?}");
        let plain = r.ids("tokens");
        let with_bos = r.ids("tokens_bos");
        assert_eq!(with_bos[0], BOS_ID, "the vocabulary adds BOS");
        assert_eq!(&with_bos[1..], &plain[..]);
        assert!(
            plain.iter().all(|&id| !(BOS_ID..=IM_END_ID).contains(&id)),
            "no special tokens parsed: {plain:?}"
        );
        let concatenated: Vec<u8> = plain.iter().flat_map(|&id| token_bytes(id)).collect();
        assert_eq!(concatenated, text.as_bytes());
    }
    // Multi-byte characters become one token per byte; merges apply to ASCII words.
    let r = run(&model, "é the", 0, &["--roundtrip"]);
    let tokens = gguf::vocab_tokens();
    let id = |t: &str| tokens.iter().position(|x| x == t).unwrap() as i32;
    assert_eq!(r.ids("tokens"), vec![0xc3, 0xa9, id("Ġthe")]);
}

#[test]
fn chat_template_is_recognised() {
    let r = run(&gguf::tiny_model(), "Hi there", 0, &["--chat"]);
    assert_eq!(
        String::from_utf8(r.bytes("chat")).unwrap(),
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
    );
    let no_template = temp_model(
        &TinyModelSpec {
            chat_template: None,
            ..TinyModelSpec::tiny()
        },
        "no-template",
    );
    let r = run(&no_template, "Hi", 0, &["--chat"]);
    std::fs::remove_file(&no_template).unwrap();
    assert_eq!(r.line("chat"), "none");
}

#[test]
fn spec_variants_load_and_run() {
    for (name, spec) in [
        (
            "f16",
            TinyModelSpec {
                f16_weights: true,
                ..TinyModelSpec::tiny()
            },
        ),
        (
            "mha-3layer",
            TinyModelSpec {
                n_layer: 3,
                n_head: 8,
                n_head_kv: 8,
                n_embd: 128,
                n_ff: 256,
                ..TinyModelSpec::tiny()
            },
        ),
        (
            "pooled",
            TinyModelSpec {
                pooling: Some(1),
                seed: 7,
                ..TinyModelSpec::tiny()
            },
        ),
    ] {
        let path = temp_model(&spec, name);
        let generator = run(&path, "Hello", 8, &[]);
        let emb = run(&path, "Hello", 0, &["--embed"]);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(generator.generated().len(), 8, "{name}");
        let values: Vec<f32> = emb
            .line("emb")
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(values.len(), spec.n_embd as usize, "{name}");
        assert!(values.iter().all(|v| v.is_finite()), "{name}");
    }
}

/// Not run by default: writes a ~100M-parameter model and prints the reference program's
/// speed (`cargo test -p llama-prebuilt-test-support --test gguf_model -- --ignored --nocapture`).
/// `LLAMA_TEST_BENCH_PARAMS` picks the size.
#[test]
#[ignore = "writes a few hundred MB and takes tens of seconds"]
fn bench_model_timings() {
    let target = std::env::var("LLAMA_TEST_BENCH_PARAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000_000);
    let spec = TinyModelSpec::bench(target);
    let t = std::time::Instant::now();
    let path = gguf::cached_model(&spec).unwrap();
    eprintln!(
        "bench model: {} layers, {} params, {} bytes, ready in {:?} at {}",
        spec.n_layer,
        spec.n_params(),
        spec.file_size(),
        t.elapsed(),
        path.display()
    );
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(3);
    let r = run(&path, &prompt, 32, &[]);
    assert_eq!(r.generated().len(), 32);
    eprintln!(
        "pp: {} tokens at {:.1} tok/s; tg: {} tokens at {:.1} tok/s",
        r.timing("pp_tokens"),
        r.timing("pp_tok_s"),
        r.timing("tg_tokens"),
        r.timing("tg_tok_s")
    );
}
