//! Many sequences in one context: the Batcher (continuous batching) against each sequence
//! generated alone and against the C reference; per-sequence state save/restore; shifting
//! positions to go on in a full context.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_prebuilt::{
    BatchEvent, Batcher, ContextParams, Error, GenerateOptions, Model, ModelParams, Sampler,
    SeqStateScope, StopReason, Token,
};
use llama_prebuilt_test_support::{gguf, models, reference};

const PROMPTS: [&str; 4] = [
    "Hello, world",
    "The quick brown fox",
    "x",
    "héllo wörld 🦙 and more text here",
];

fn params(n_seq: u32) -> ContextParams {
    ContextParams::default()
        .n_ctx(256 * n_seq)
        .n_batch(64)
        .n_ubatch(64)
        .n_seq_max(n_seq)
        .n_threads(2)
}

/// Greedy tokens and text of one prompt generated alone (Generator, sequence 0).
fn alone(model: &Model, prompt: &str, n: usize, n_seq: u32) -> (Vec<Token>, String) {
    let mut ctx = model.new_context(&params(n_seq)).unwrap();
    let tokens = model.tokenize(prompt, true).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &tokens,
        &mut sampler,
        GenerateOptions::default().max_tokens(n),
    );
    let text = generator.collect_text().unwrap();
    (generator.tokens().to_vec(), text)
}

/// Every prompt at once through a Batcher: (tokens, text, reason) per prompt.
fn together(model: &Model, prompts: &[&str], n: usize) -> Vec<(Vec<Token>, String, StopReason)> {
    let mut ctx = model.new_context(&params(prompts.len() as u32)).unwrap();
    let mut batcher = Batcher::new(&mut ctx);
    let mut ids = Vec::new();
    for prompt in prompts {
        let tokens = model.tokenize(prompt, true).unwrap();
        ids.push(
            batcher
                .add(
                    &tokens,
                    Sampler::chain().greedy(),
                    GenerateOptions::default().max_tokens(n),
                )
                .unwrap(),
        );
    }
    let mut out: Vec<(Vec<Token>, String, Option<StopReason>)> = prompts
        .iter()
        .map(|_| (Vec::new(), String::new(), None))
        .collect();
    for event in &mut batcher {
        match event.unwrap() {
            BatchEvent::Text { seq, text } => out[seq as usize].1.push_str(&text),
            BatchEvent::Finished {
                seq,
                reason,
                tokens,
            } => {
                out[seq as usize].0 = tokens;
                out[seq as usize].2 = Some(reason);
            }
        }
    }
    assert_eq!(ids, (0..prompts.len() as i32).collect::<Vec<_>>());
    out.into_iter()
        .map(|(t, s, r)| (t, s, r.expect("every sequence finishes")))
        .collect()
}

fn assert_together_equals_alone(model: &Model, n: usize) -> usize {
    let mut total = 0;
    let got = together(model, &PROMPTS, n);
    for (prompt, (tokens, text, _)) in PROMPTS.iter().zip(&got) {
        let (expected, expected_text) = alone(model, prompt, n, PROMPTS.len() as u32);
        assert_eq!(tokens, &expected, "prompt {prompt:?}");
        assert_eq!(text, &expected_text, "prompt {prompt:?}");
        total += tokens.len();
    }
    total
}

#[test]
fn four_sequences_together_give_the_greedy_tokens_and_text_of_each_alone() {
    let total = assert_together_equals_alone(common::tiny_model(), 40);
    eprintln!("batcher: {total} tokens identical, 4 sequences together vs alone (tiny model)");
}

#[test]
fn smollm2_sequences_together_give_the_tokens_of_each_alone() {
    let path = models::smollm2().unwrap_or_else(|e| panic!("SmolLM2: {e}"));
    let model = Model::load(&path, &ModelParams::default()).unwrap();
    let total = assert_together_equals_alone(&model, 16);
    eprintln!("batcher: {total} tokens identical, 4 sequences together vs alone (SmolLM2)");
}

/// The C reference (llama.h straight, one sequence, its own context) generates what the
/// Batcher generates for each of the sequences it runs together.
#[cfg(unix)]
#[test]
fn sequences_together_match_the_c_reference_alone() {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    let exe = EXE.get_or_init(|| {
        let headers = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("vendor-headers");
        reference::compile(
            Path::new(llama_prebuilt::sys::LIB_DIR),
            &[headers],
            Path::new(env!("CARGO_TARGET_TMPDIR")),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    });
    let n = 24;
    let got = together(common::tiny_model(), &PROMPTS, n);
    for (prompt, (tokens, _, _)) in PROMPTS.iter().zip(&got) {
        let out = reference::run(
            exe,
            &gguf::tiny_model(),
            prompt,
            n,
            Path::new(llama_prebuilt::sys::LIB_DIR),
            2,
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let expected: Vec<Token> = out.generated().into_iter().map(Token).collect();
        assert_eq!(tokens, &expected, "prompt {prompt:?}");
    }
}

#[test]
fn each_sequence_has_its_own_limit_stop_strings_and_cancellation() {
    let model = common::tiny_model();
    let (free_tokens, free_text) = alone(model, "Hello, world", 30, 4);
    // A stop string taken from what the sequence generates anyway.
    let chars: Vec<char> = free_text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let expected_text = &free_text[..free_text.find(&stop).unwrap()];

    let mut ctx = model.new_context(&params(4)).unwrap();
    let mut batcher = Batcher::new(&mut ctx);
    let prompt = model.tokenize("Hello, world", true).unwrap();
    let limited = batcher
        .add(
            &prompt,
            Sampler::chain().greedy(),
            GenerateOptions::default().max_tokens(5),
        )
        .unwrap();
    let stopped = batcher
        .add(
            &prompt,
            Sampler::chain().greedy(),
            GenerateOptions::default().max_tokens(30).stop(stop.clone()),
        )
        .unwrap();
    let cancelled = batcher
        .add(
            &prompt,
            Sampler::chain().greedy(),
            GenerateOptions::default().max_tokens(30),
        )
        .unwrap();
    batcher.cancel_handle(cancelled).unwrap().cancel();
    assert!(batcher.cancel_handle(3).is_none(), "no sequence 3 yet");

    let mut texts = vec![String::new(); 3];
    let mut reasons = vec![None; 3];
    for event in &mut batcher {
        match event.unwrap() {
            BatchEvent::Text { seq, text } => texts[seq as usize].push_str(&text),
            BatchEvent::Finished {
                seq,
                reason,
                tokens,
            } => {
                if seq == limited {
                    assert_eq!(tokens, free_tokens[..5]);
                }
                reasons[seq as usize] = Some(reason);
            }
        }
    }
    assert_eq!(reasons[limited as usize], Some(StopReason::MaxTokens));
    assert_eq!(
        reasons[stopped as usize],
        Some(StopReason::StopString(stop))
    );
    assert_eq!(texts[stopped as usize], expected_text);
    assert_eq!(reasons[cancelled as usize], Some(StopReason::Cancelled));
    assert!(texts[cancelled as usize].is_empty());
}

#[test]
fn ids_are_reused_after_finishing_and_a_full_batcher_says_what_to_do() {
    let model = common::tiny_model();
    let mut ctx = model.new_context(&params(2)).unwrap();
    let mut batcher = Batcher::new(&mut ctx);
    let prompt = model.tokenize("abc", true).unwrap();
    let opts = || GenerateOptions::default().max_tokens(3);
    assert_eq!(
        batcher
            .add(&prompt, Sampler::chain().greedy(), opts())
            .unwrap(),
        0
    );
    assert_eq!(
        batcher
            .add(&prompt, Sampler::chain().greedy(), opts())
            .unwrap(),
        1
    );
    let err = batcher
        .add(&prompt, Sampler::chain().greedy(), opts())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParam {
                name: "n_seq_max",
                ..
            }
        ) && err
            .to_string()
            .contains("all 2 sequences of the context are running"),
        "{err}"
    );
    let finished: Vec<i32> = (&mut batcher)
        .filter_map(|e| match e.unwrap() {
            BatchEvent::Finished { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(batcher.running(), 0);
    assert_eq!(
        batcher
            .add(&prompt, Sampler::chain().greedy(), opts())
            .unwrap(),
        0
    );

    let err = batcher
        .add(&[], Sampler::chain().greedy(), opts())
        .unwrap_err();
    assert!(err.to_string().contains("the prompt is empty"), "{err}");
    let err = batcher
        .add(&[Token(i32::MAX)], Sampler::chain().greedy(), opts())
        .unwrap_err();
    assert!(matches!(err, Error::TokenOutOfVocab { .. }), "{err}");
}

#[test]
fn a_sequence_state_restored_into_another_sequence_continues_identically() {
    let model = common::tiny_model();
    let mut ctx = model.new_context(&params(2)).unwrap();
    let prompt = model.tokenize("The quick brown fox", true).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let first: Vec<Token> = {
        let mut generator = ctx.generate(
            &prompt,
            &mut sampler,
            GenerateOptions::default().max_tokens(6),
        );
        generator.collect_text().unwrap();
        generator.tokens().to_vec()
    };
    let state = ctx.seq_state(0, SeqStateScope::Full).unwrap();
    assert!(!state.is_empty());
    ctx.load_seq_state(1, &state, SeqStateScope::Full).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), ctx.seq_pos_max(0).unwrap());

    // Both sequences continue from the same memory with the same next token.
    let next = *first.last().unwrap();
    let continuation = |seq: i32, ctx: &mut llama_prebuilt::Context<'_>| -> Vec<Token> {
        let mut sampler = Sampler::chain().greedy();
        let mut generator = ctx.generate(
            &[next],
            &mut sampler,
            GenerateOptions {
                seq_id: seq,
                ..GenerateOptions::default().max_tokens(8)
            },
        );
        generator.collect_text().unwrap();
        generator.tokens().to_vec()
    };
    let a = continuation(0, &mut ctx);
    let b = continuation(1, &mut ctx);
    assert_eq!(a, b);

    // A fresh context of the same model and parameters takes the state too.
    let mut other = model.new_context(&params(2)).unwrap();
    other
        .load_seq_state(0, &state, SeqStateScope::Full)
        .unwrap();
    assert_eq!(continuation(0, &mut other), a);

    let err = other
        .load_seq_state(1, &[], SeqStateScope::Full)
        .unwrap_err();
    assert!(err.to_string().contains("the state is empty"), "{err}");
    let err = other
        .load_seq_state(1, &state[..state.len() / 2], SeqStateScope::Full)
        .unwrap_err();
    assert!(matches!(err, Error::State { .. }), "{err}");
    let err = other.seq_state(9, SeqStateScope::Full).unwrap_err();
    assert!(matches!(err, Error::SeqIdOutOfRange { .. }), "{err}");
}

#[test]
fn shifting_out_old_tokens_lets_decoding_go_on_in_a_full_context() {
    let model = common::tiny_model();
    let mut ctx = model
        .new_context(
            &ContextParams::default()
                .n_ctx(128)
                .n_batch(64)
                .n_ubatch(64)
                .n_threads(2),
        )
        .unwrap();
    assert!(ctx.can_shift());
    let n = ctx.n_ctx() as i32;
    let token = |i: i32| Token(32 + i % 64);
    // Fill all but 4 cells.
    let mut pos = 0;
    while pos < n - 4 {
        let mut batch = llama_prebuilt::Batch::new(64);
        while batch.len() < 64 && pos < n - 4 {
            batch.add(token(pos), pos, &[0], false).unwrap();
            pos += 1;
        }
        ctx.decode(&batch).unwrap();
    }
    let eight = |from: i32| {
        let mut batch = llama_prebuilt::Batch::new(8);
        for i in 0..8 {
            batch.add(token(from + i), from + i, &[0], i == 7).unwrap();
        }
        batch
    };
    assert!(matches!(ctx.decode(&eight(pos)), Err(Error::NoKvSlot)));

    let next = ctx.shift_out(0, 4, 32).unwrap();
    assert_eq!(next, pos - 32);
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(pos - 33));
    ctx.decode(&eight(next)).unwrap();
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(next + 7));

    let err = ctx.seq_div(0, .., 0).unwrap_err();
    assert!(err.to_string().contains("divided by 1 or more"), "{err}");
    let err = ctx.shift_out(0, 4, 0).unwrap_err();
    assert!(err.to_string().contains("discard >= 1"), "{err}");
    ctx.seq_div(0, .., 1).unwrap();
}

/// The `batch` example (built next to the test binaries by `cargo test`).
#[test]
fn the_batch_example_runs_several_sequences() {
    let example = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(format!("batch{}", std::env::consts::EXE_SUFFIX));
    let out = std::process::Command::new(&example)
        .args(["--sequences", "3", "--max-tokens", "6"])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (cargo test builds examples)", example.display()));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for i in 0..3 {
        assert!(stdout.contains(&format!("[{i}] ")), "{stdout}");
    }
    assert!(
        stderr.contains("[3 sequences,") && stderr.contains("tok_s "),
        "{stderr}"
    );
    let out = std::process::Command::new(&example)
        .args(["--sequences", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sequences must be 1..=64"));
}
