//! LoRA adapters and control vectors on the tiny model: scale 0 changes nothing, a non-zero
//! scale changes the logits exactly as the C reference (`test-support/c/reference.c
//! --lora`) does on the same files, and every bad adapter or control vector is an `Err` with
//! a message saying what is wrong.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_prebuilt::{Batch, ContextParams, Error, Model, ModelParams, Sampler, Token};
use llama_prebuilt_test_support::gguf::{self, TinyModelSpec};
use llama_prebuilt_test_support::gguf_lora::{self, Kv, LoraSpec, Tensor};

const PROMPT: &str = "The capital of France is";
const N_PREDICT: usize = 12;
/// One thread on both sides: the results must be bit-identical.
const THREADS: u32 = 1;

fn model() -> &'static Model {
    common::tiny_model()
}

/// A directory for this test binary's adapter files, kept until the process exits.
fn dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn tiny_lora() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| gguf_lora::lora_in(dir(), "tiny", &LoraSpec::tiny()).unwrap())
}

/// Context parameters equal to what reference.c uses for `n_prompt` prompt tokens.
fn ctx_params(n_prompt: usize) -> ContextParams {
    ContextParams::default()
        .n_ctx((n_prompt + N_PREDICT) as u32)
        .n_batch(n_prompt as u32)
        .n_ubatch(n_prompt as u32)
        .n_threads(THREADS)
}

/// Decodes the prompt, returns the last logits and the greedy continuation (as reference.c
/// does: sample, stop at end-of-generation, decode each token).
fn run(ctx: &mut llama_prebuilt::Context<'_>, prompt: &[Token]) -> (Vec<f32>, Vec<i32>) {
    ctx.clear_memory();
    ctx.decode(&Batch::for_sequence(prompt, 0, 0).unwrap())
        .unwrap();
    let logits = ctx.last_logits().unwrap().to_vec();
    let mut sampler = Sampler::chain().greedy();
    let mut out = Vec::new();
    let mut pos = prompt.len() as i32;
    for i in 0..N_PREDICT {
        let tok = sampler.sample_last(ctx).unwrap();
        if model().is_eog(tok) {
            break;
        }
        out.push(tok.0);
        if i + 1 < N_PREDICT {
            ctx.decode(&Batch::for_sequence(&[tok], pos, 0).unwrap())
                .unwrap();
            pos += 1;
        }
    }
    (logits, out)
}

fn prompt() -> Vec<Token> {
    model().tokenize(PROMPT, true).unwrap()
}

#[test]
fn scale_zero_is_identical_to_no_adapter() {
    let prompt = prompt();
    let adapter = model().load_lora(tiny_lora()).unwrap();
    let mut ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
    let (base_logits, base_tokens) = run(&mut ctx, &prompt);

    ctx.set_lora(&adapter, 0.0).unwrap();
    let (logits, tokens) = run(&mut ctx, &prompt);
    assert_eq!(tokens, base_tokens);
    assert_eq!(logits, base_logits, "scale 0 must not change a single bit");

    // A non-zero scale changes the logits; clearing the adapters restores them exactly.
    ctx.set_lora(&adapter, 1.0).unwrap();
    let (lora_logits, _) = run(&mut ctx, &prompt);
    let max_diff = lora_logits
        .iter()
        .zip(&base_logits)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        max_diff > 0.1,
        "the adapter barely changes the logits: {max_diff}"
    );
    ctx.clear_loras();
    let (logits, tokens) = run(&mut ctx, &prompt);
    assert_eq!((logits, tokens), (base_logits.clone(), base_tokens.clone()));

    // An empty set is the same as clearing.
    ctx.set_loras(&[(&adapter, 2.0)]).unwrap();
    ctx.set_loras(&[]).unwrap();
    assert_eq!(run(&mut ctx, &prompt).0, base_logits);
}

#[test]
fn metadata_of_the_adapter() {
    let adapter = model().load_lora(tiny_lora()).unwrap();
    assert_eq!(adapter.alpha(), Some(8.0));
    assert_eq!(adapter.meta("adapter.type").as_deref(), Some("lora"));
    assert_eq!(adapter.meta("no.such.key"), None);
    assert!(
        adapter
            .metadata()
            .contains(&("general.name".to_string(), "tiny-lora".to_string()))
    );
    assert_eq!(adapter.path(), tiny_lora().as_path());
    assert!(std::ptr::eq(adapter.model(), model()));
}

#[cfg(unix)]
mod parity {
    use super::*;
    use llama_prebuilt_test_support::reference;

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

    fn c_run(extra: &[&str]) -> (Vec<f32>, Vec<i32>) {
        let mut args = vec!["--logits"];
        args.extend_from_slice(extra);
        let out = reference::run(
            reference_exe(),
            &gguf::tiny_model(),
            PROMPT,
            N_PREDICT,
            Path::new(llama_prebuilt::sys::LIB_DIR),
            THREADS,
            &args,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        (out.floats("logits"), out.generated())
    }

    /// The logits and greedy tokens with the adapter at several scales equal the C
    /// reference's bit for bit (`%.9g` round-trips an f32 exactly).
    #[test]
    fn logits_and_tokens_equal_the_c_reference() {
        let prompt = prompt();
        let adapter = model().load_lora(tiny_lora()).unwrap();
        let path = tiny_lora().to_str().unwrap();
        let (c_base, c_base_tokens) = c_run(&[]);
        let mut ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
        let (base, base_tokens) = run(&mut ctx, &prompt);
        assert_eq!(base, c_base);
        assert_eq!(base_tokens, c_base_tokens);
        for scale in ["1", "0.5", "-2.5"] {
            let (c_logits, c_tokens) = c_run(&["--lora", path, "--lora-scale", scale]);
            ctx.set_lora(&adapter, scale.parse().unwrap()).unwrap();
            let (logits, tokens) = run(&mut ctx, &prompt);
            assert_eq!(tokens, c_tokens, "scale {scale}");
            assert_eq!(logits, c_logits, "scale {scale}: logits differ from C");
            assert_ne!(logits, base, "scale {scale} changes nothing");
        }
        // Scale 0 in C is the unadapted model too.
        let (c_zero, c_zero_tokens) = c_run(&["--lora", path, "--lora-scale", "0"]);
        assert_eq!((c_zero, c_zero_tokens), (base, base_tokens));
    }
    /// A control vector changes the logits exactly as llama_set_adapter_cvec does in C.
    #[test]
    fn control_vector_equals_the_c_reference() {
        let prompt = prompt();
        let n_embd = model().n_embd() as usize;
        let v: Vec<f32> = (0..n_embd).map(|i| ((i % 5) as f32 - 2.0) * 0.25).collect();
        let path = dir().join("cvec.f32");
        let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        let (c_logits, c_tokens) =
            c_run(&["--cvec", path.to_str().unwrap(), "--cvec-layers", "1:1"]);
        let mut ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
        let (base, _) = run(&mut ctx, &prompt);
        ctx.set_control_vector(&v, 1..=1).unwrap();
        let (logits, tokens) = run(&mut ctx, &prompt);
        assert_ne!(logits, base, "the control vector changes nothing");
        assert_eq!(tokens, c_tokens);
        assert_eq!(logits, c_logits, "logits differ from C");
    }
}

/// Loads an adapter file, expecting an error whose message contains `needle`.
fn load_err(path: &Path, needle: &str) -> Error {
    let err = model().load_lora(path).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    err
}

#[test]
fn adapter_for_another_base_model_is_an_error() {
    let path = gguf_lora::lora_in(dir(), "wrong-base", &gguf_lora::wrong_base_spec()).unwrap();
    let err = load_err(&path, "has incorrect shape (hint: maybe wrong base model?)");
    assert!(matches!(err, Error::AdapterLoad { .. }), "{err:?}");

    // A tensor the base model does not have.
    let mut spec = LoraSpec::tiny();
    spec.base.n_layer = 3;
    spec.targets = vec!["blk.2.attn_q.weight".into()];
    let path = gguf_lora::lora_in(dir(), "extra-layer", &spec).unwrap();
    let err = load_err(&path, "does not exist in base model");
    assert!(matches!(err, Error::AdapterLoad { .. }), "{err:?}");

    // Another architecture.
    let mut spec = LoraSpec::tiny();
    spec.arch = "qwen2".into();
    let path = gguf_lora::lora_in(dir(), "qwen2", &spec).unwrap();
    let err = load_err(
        &path,
        "is not a usable LoRA adapter: it is for architecture \"qwen2\", the model is \"llama\"",
    );
    assert!(matches!(err, Error::InvalidAdapter { .. }), "{err:?}");
}

#[test]
fn adapter_of_another_model_on_a_context_is_an_error() {
    let mut spec = TinyModelSpec::tiny();
    spec.seed ^= 1;
    let other_path = gguf::cached_model(&spec).unwrap();
    let other = Model::load(&other_path, &ModelParams::default().n_gpu_layers(0)).unwrap();
    let adapter = other.load_lora(tiny_lora()).unwrap();
    let mut ctx = model().new_context(&common::small_ctx()).unwrap();
    let err = ctx.set_lora(&adapter, 1.0).unwrap_err();
    assert!(matches!(err, Error::AdapterModelMismatch { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "the LoRA adapter {} was loaded for a different model than the context's",
            tiny_lora().display()
        )
    );
}

#[test]
fn bad_scales_are_errors() {
    let adapter = model().load_lora(tiny_lora()).unwrap();
    let mut ctx = model().new_context(&common::small_ctx()).unwrap();
    for scale in [f32::NAN, f32::INFINITY] {
        let err = ctx.set_lora(&adapter, scale).unwrap_err();
        assert!(
            err.to_string().starts_with("invalid parameter scale: ")
                && err.to_string().contains("is not a valid LoRA scale"),
            "{err}"
        );
    }
    let err = ctx
        .set_loras(&[(&adapter, 1.0), (&adapter, 0.5)])
        .unwrap_err();
    assert!(err.to_string().contains("is listed twice"), "{err}");
}

/// The metadata the tiny adapter has, with `key` replaced (or removed for `None`).
fn write_with(name: &str, key: &str, value: Option<Kv>) -> PathBuf {
    let spec = LoraSpec::tiny();
    let mut kvs: Vec<(&str, Kv)> = spec
        .metadata()
        .into_iter()
        .filter(|(k, _)| *k != key)
        .collect();
    if let Some(v) = value {
        kvs.push((key, v));
    }
    let path = dir().join(format!("{name}.gguf"));
    gguf_lora::write_gguf(&path, &kvs, &spec.tensors().unwrap()).unwrap();
    path
}

fn write_tensors(name: &str, tensors: &[Tensor]) -> PathBuf {
    let path = dir().join(format!("{name}.gguf"));
    gguf_lora::write_gguf(&path, &LoraSpec::tiny().metadata(), tensors).unwrap();
    path
}

/// Files llama.cpp would abort on, or reject with a vaguer message, are rejected first.
#[test]
fn invalid_adapter_files_are_errors() {
    let cases: Vec<(PathBuf, &str)> = vec![
        // gguf_get_val_f32 on a non-f32 value aborts the process in llama.cpp.
        (
            write_with("alpha-u32", "adapter.lora.alpha", Some(Kv::U32(8))),
            "adapter.lora.alpha is GGUF type 4, not a float32",
        ),
        (
            write_with("alpha-str", "adapter.lora.alpha", Some(Kv::Str("8".into()))),
            "adapter.lora.alpha is a string, not a float32",
        ),
        // gguf_get_val_str on a non-string value aborts too.
        (
            write_with("type-f32", "general.type", Some(Kv::F32(1.0))),
            "general.type is a float32, not a string",
        ),
        (
            write_with("arch-u32", "general.architecture", Some(Kv::U32(1))),
            "general.architecture is GGUF type 4, not a string",
        ),
        (
            write_with("adapter-type-u32", "adapter.type", Some(Kv::U32(1))),
            "adapter.type is GGUF type 4, not a string",
        ),
        (
            write_with("no-general-type", "general.type", None),
            "general.type is None, not \"adapter\"",
        ),
        (
            write_with("model-type", "general.type", Some(Kv::Str("model".into()))),
            "general.type is Some(\"model\"), not \"adapter\"",
        ),
        (
            write_with(
                "cvec",
                "adapter.type",
                Some(Kv::Str("control_vector".into())),
            ),
            "adapter.type is Some(\"control_vector\"), not \"lora\"",
        ),
    ];
    for (path, needle) in &cases {
        let err = load_err(path, needle);
        assert!(matches!(err, Error::InvalidAdapter { .. }), "{err:?}");
    }

    let t = |name: &str, dims: &[u64]| Tensor {
        name: name.into(),
        dims: dims.to_vec(),
        data: vec![0.1; dims.iter().product::<u64>() as usize],
    };
    let q = "blk.0.attn_q.weight";
    let embd_rank = format!(
        "token_embd.weight: the ranks of lora_a [4, {}] and lora_b [3, 64] do not match",
        gguf::N_VOCAB
    );
    let tensor_cases: Vec<(&str, Vec<Tensor>, &str)> = vec![
        ("none", vec![], "it has no .lora_a/.lora_b tensors"),
        (
            "half-pair",
            vec![t(&format!("{q}.lora_a"), &[64, 4])],
            "blk.0.attn_q.weight has only one of .lora_a and .lora_b",
        ),
        (
            "suffix",
            vec![t("blk.0.attn_q.weight.delta", &[64, 4])],
            "tensor \"blk.0.attn_q.weight.delta\" is neither a .lora_a nor a .lora_b tensor",
        ),
        (
            "three-d",
            vec![
                t(&format!("{q}.lora_a"), &[64, 4, 2]),
                t(&format!("{q}.lora_b"), &[4, 64]),
            ],
            "has dimensions [64, 4, 2]; LoRA tensors must be two-dimensional",
        ),
        (
            "embd-rank",
            vec![
                t("token_embd.weight.lora_a", &[4, gguf::N_VOCAB as u64]),
                t("token_embd.weight.lora_b", &[3, 64]),
            ],
            &embd_rank,
        ),
        (
            "rank",
            vec![
                t(&format!("{q}.lora_a"), &[64, 4]),
                t(&format!("{q}.lora_b"), &[5, 64]),
            ],
            "the ranks of lora_a [64, 4] and lora_b [5, 64] do not match",
        ),
    ];
    for (name, tensors, needle) in &tensor_cases {
        let path = write_tensors(name, tensors);
        let err = load_err(&path, needle);
        assert!(
            matches!(err, Error::InvalidAdapter { .. }),
            "{name}: {err:?}"
        );
    }

    // Not a GGUF file at all, and a missing file.
    let path = dir().join("garbage.gguf");
    std::fs::write(&path, b"not a gguf file").unwrap();
    load_err(&path, "is not a usable LoRA adapter: not a valid GGUF file");
    let missing = dir().join("missing.gguf");
    let err = model().load_lora(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");

    // The model file itself is not an adapter.
    load_err(&gguf::tiny_model(), "general.type is");
}

#[test]
fn control_vector_zero_changes_nothing_and_nonzero_changes_logits() {
    let prompt = prompt();
    let mut ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
    let (base, base_tokens) = run(&mut ctx, &prompt);
    let n_embd = model().n_embd() as usize;
    let steerable = model().n_layer() - 1;

    ctx.set_control_vector(&vec![0.0; n_embd], 1..=steerable)
        .unwrap();
    assert_eq!(run(&mut ctx, &prompt), (base.clone(), base_tokens.clone()));

    let v: Vec<f32> = (0..n_embd).map(|i| ((i % 7) as f32 - 3.0) * 0.3).collect();
    ctx.set_control_vector(&v, 1..=steerable).unwrap();
    let (steered, _) = run(&mut ctx, &prompt);
    assert_ne!(steered, base);

    // Repeatable, and cleared exactly.
    assert_eq!(run(&mut ctx, &prompt).0, steered);
    ctx.clear_control_vector();
    assert_eq!(run(&mut ctx, &prompt), (base, base_tokens));
}

#[test]
fn bad_control_vectors_are_errors() {
    let mut ctx = model().new_context(&common::small_ctx()).unwrap();
    let n_embd = model().n_embd() as usize; // 64
    let steerable = model().n_layer() - 1; // 1
    let cases: Vec<(Vec<f32>, std::ops::RangeInclusive<u32>, &str)> = vec![
        (
            vec![],
            1..=1,
            "invalid parameter vector: 0 values are not 1..=1 rows of n_embd = 64",
        ),
        (
            vec![0.0; n_embd + 1],
            1..=1,
            "invalid parameter vector: 65 values are not 1..=1 rows of n_embd = 64",
        ),
        (
            vec![0.0; 2 * n_embd],
            1..=1,
            "invalid parameter vector: 128 values are not 1..=1 rows",
        ),
        (
            {
                let mut v = vec![0.0; n_embd];
                v[3] = f32::NAN;
                v
            },
            1..=1,
            "invalid parameter vector: value 3 is NaN (use finite values)",
        ),
        (
            vec![0.0; n_embd],
            0..=1,
            "invalid parameter layers: 0..=1 is not a non-empty subrange of 1..=1",
        ),
        (
            vec![0.0; n_embd],
            1..=2,
            "invalid parameter layers: 1..=2 is not a non-empty subrange of 1..=1",
        ),
        #[allow(clippy::reversed_empty_ranges)]
        (
            vec![0.0; n_embd],
            1..=0,
            "invalid parameter layers: 1..=0 is not a non-empty subrange",
        ),
    ];
    assert_eq!(steerable, 1);
    for (v, layers, needle) in cases {
        let err = ctx.set_control_vector(&v, layers).unwrap_err();
        assert!(err.to_string().starts_with(needle), "{err} !~ {needle}");
    }

    // A one-layer model has no layer to steer.
    let mut spec = TinyModelSpec::tiny();
    spec.n_layer = 1;
    let one = Model::load(
        gguf::cached_model(&spec).unwrap(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    let mut ctx = one.new_context(&common::small_ctx()).unwrap();
    let err = ctx
        .set_control_vector(&vec![0.0; n_embd], 1..=1)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid parameter layers: a model with 1 layer(s) has no layer to steer (layer 0 never is)"
    );
}

/// Lifetimes enforced by the compiler (trybuild, `tests/ui_lora/`): an adapter cannot outlive
/// its model, and an adapter set on a context cannot be dropped before the context.
#[test]
fn misuse_does_not_compile() {
    trybuild::TestCases::new().compile_fail("tests/ui_lora/*.rs");
}

/// Loading and freeing adapters edits the model's adapter set, which contexts of the same
/// model read when they plan their graph (creation, and the first decode after a change):
/// threads doing both at once on one model must work (they are serialised by a lock).
/// Contexts are also created *before* the adapter they use is loaded.
#[test]
fn adapters_and_contexts_on_many_threads() {
    let prompt = prompt();
    let adapter = model().load_lora(tiny_lora()).unwrap();
    let mut base_ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
    base_ctx.set_lora(&adapter, 1.0).unwrap();
    let (expected, _) = run(&mut base_ctx, &prompt);
    drop(base_ctx);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..8 {
                    // Declared first, so it is dropped after the context (also when
                    // unwinding), but loaded after the context is created.
                    let adapter;
                    let mut ctx = model().new_context(&ctx_params(prompt.len())).unwrap();
                    adapter = model().load_lora(tiny_lora()).unwrap();
                    ctx.set_lora(&adapter, 1.0).unwrap();
                    ctx.decode(&Batch::for_sequence(&prompt, 0, 0).unwrap())
                        .unwrap();
                    assert_eq!(ctx.last_logits().unwrap(), expected.as_slice());
                    drop(ctx);
                    drop(adapter);
                }
            });
        }
    });
}
