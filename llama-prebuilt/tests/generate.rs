//! The streaming generator: UTF-8 boundaries, stop conditions, cancellation, continuation.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{Error, GenerateOptions, Sampler, StopReason, Token};
use llama_prebuilt_test_support::gguf::EOS_ID;

/// A greedy sampler that must produce exactly `text` (then an end-of-generation token).
fn forced(text: &str) -> Sampler {
    let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
    Sampler::chain()
        .grammar(tiny_model(), &format!("root ::= \"{escaped}\""), "root")
        .unwrap()
        .greedy()
}

#[test]
fn greedy_generation_stops_after_max_tokens() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("Hello, world", true).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(24),
    );
    let chunks: Vec<String> = (&mut generator).collect::<Result<_, _>>().unwrap();
    assert_eq!(generator.tokens().len(), 24);
    assert_eq!(generator.stop_reason(), Some(&StopReason::MaxTokens));
    assert!(chunks.iter().all(|c| !c.is_empty()));
    let bytes: Vec<u8> = generator
        .tokens()
        .iter()
        .flat_map(|&t| model.token_piece(t, false).unwrap())
        .collect();
    assert_eq!(chunks.concat(), String::from_utf8_lossy(&bytes));
    assert!(generator.next().is_none(), "fused");
    let tokens = generator.tokens().to_vec();
    drop(generator);
    // The memory holds the prompt and every generated token.
    assert_eq!(
        ctx.seq_pos_max(0).unwrap(),
        Some((prompt.len() + tokens.len()) as i32 - 1)
    );

    // Deterministic.
    ctx.clear_memory();
    let mut sampler = Sampler::chain().greedy();
    let mut again = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(24),
    );
    again.collect_text().unwrap();
    assert_eq!(again.tokens(), &tokens[..]);
}

#[test]
fn utf8_characters_are_never_split() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("Say it:", true).unwrap();
    let text = "é🦙 日本";
    let mut sampler = forced(text);
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(64),
    );
    let chunks: Vec<String> = (&mut generator).collect::<Result<_, _>>().unwrap();
    // One token per byte: the characters arrive in pieces and are held until complete.
    assert_eq!(generator.tokens().len(), text.len());
    assert!(
        matches!(
            generator.stop_reason(),
            Some(StopReason::EndOfGeneration(_))
        ),
        "{:?}",
        generator.stop_reason()
    );
    assert_eq!(chunks.concat(), text);
    assert_eq!(chunks, ["é", "🦙", " ", "日", "本"]);
}

#[test]
fn invalid_utf8_from_the_model_becomes_replacement_characters() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("x", true).unwrap();
    // Force a lone continuation byte, then 'a', then a lead byte that never completes.
    let bias: Vec<(Token, f32)> = vec![(Token(0x80), 1000.0)];
    let mut sampler = Sampler::chain().logit_bias(model, &bias).unwrap().greedy();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(2),
    );
    assert_eq!(generator.collect_text().unwrap(), "\u{fffd}\u{fffd}");
    drop(generator);
    let mut sampler = Sampler::chain()
        .logit_bias(model, &[(Token(0xe6), 1000.0)])
        .unwrap()
        .greedy();
    let mut generator = ctx.generate(
        &[Token(b'a' as i32)],
        &mut sampler,
        GenerateOptions::default().max_tokens(2),
    );
    // Two lead bytes: the first is invalid once the second arrives, the second is an
    // incomplete character flushed at the end.
    assert_eq!(generator.collect_text().unwrap(), "\u{fffd}\u{fffd}");
}

#[test]
fn end_of_generation_tokens_stop_without_output() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("Hello", true).unwrap();
    let mut sampler = Sampler::chain()
        .logit_bias(model, &[(Token(EOS_ID), 100.0)])
        .unwrap()
        .greedy();
    let mut generator = ctx.generate(&prompt, &mut sampler, GenerateOptions::default());
    assert!(generator.next().is_none());
    assert_eq!(
        generator.stop_reason(),
        Some(&StopReason::EndOfGeneration(Token(EOS_ID)))
    );
    assert!(generator.tokens().is_empty());
}

#[test]
fn stop_strings_end_generation_and_partial_matches_are_held_back() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("Go:", true).unwrap();
    let mut sampler = forced("aSTb STX tail");
    let options = GenerateOptions::default()
        .max_tokens(64)
        .stop("STX")
        .stop("never");
    let mut generator = ctx.generate(&prompt, &mut sampler, options);
    let chunks: Vec<String> = (&mut generator).collect::<Result<_, _>>().unwrap();
    assert_eq!(
        chunks,
        ["a", "STb", " "],
        "\"S\" and \"ST\" wait until they cannot start \"STX\""
    );
    assert_eq!(
        generator.stop_reason(),
        Some(&StopReason::StopString("STX".into()))
    );

    // A stop string inside a single token's text, and the earliest of two matches wins.
    ctx.clear_memory();
    let mut sampler = forced("one two three");
    let options = GenerateOptions::default().stop("three").stop("two");
    let mut generator = ctx.generate(&prompt, &mut sampler, options);
    assert_eq!(generator.collect_text().unwrap(), "one ");
    assert_eq!(
        generator.stop_reason(),
        Some(&StopReason::StopString("two".into()))
    );

    // Held-back text is released when generation ends for another reason.
    ctx.clear_memory();
    let mut sampler = forced("abST");
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().stop("STOP"),
    );
    assert_eq!(generator.collect_text().unwrap(), "abST");
    assert!(matches!(
        generator.stop_reason(),
        Some(StopReason::EndOfGeneration(_))
    ));
}

#[test]
fn cancellation_stops_generation() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let prompt = model.tokenize("Hello", true).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(100),
    );
    let handle = generator.cancel_handle();
    let mut n = 0;
    for chunk in generator.by_ref() {
        chunk.unwrap();
        n += 1;
        if n == 3 {
            let handle = handle.clone();
            std::thread::spawn(move || handle.cancel()).join().unwrap();
        }
    }
    assert_eq!(generator.stop_reason(), Some(&StopReason::Cancelled));
    assert!(generator.tokens().len() < 100);
    drop(generator);

    // Cancelled before the first step: the prompt decode is aborted.
    ctx.clear_memory();
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(&prompt, &mut sampler, GenerateOptions::default());
    generator.cancel_handle().cancel();
    assert!(generator.next().is_none());
    assert_eq!(generator.stop_reason(), Some(&StopReason::Cancelled));
    assert!(generator.tokens().is_empty());
    drop(generator);

    // A new generator starts uncancelled.
    let mut sampler = Sampler::chain().greedy();
    ctx.clear_memory();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(2),
    );
    generator.collect_text().unwrap();
    assert_eq!(generator.tokens().len(), 2);
}

#[test]
fn generation_continues_a_sequence_and_reports_errors() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let first = model.tokenize("First turn.", true).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let generated = {
        let mut generator = ctx.generate(
            &first,
            &mut sampler,
            GenerateOptions::default().max_tokens(4),
        );
        generator.collect_text().unwrap();
        generator.tokens().to_vec()
    };
    let second = model.tokenize(" Second turn.", false).unwrap();
    let mut generator = ctx.generate(
        &second,
        &mut sampler,
        GenerateOptions::default().max_tokens(4),
    );
    generator.collect_text().unwrap();
    drop(generator);
    let expected_len = first.len() + generated.len() + second.len() + 4;
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(expected_len as i32 - 1));

    // Errors come out of the iterator once, then it ends.
    let mut generator = ctx.generate(&[], &mut sampler, GenerateOptions::default());
    assert!(matches!(
        generator.next(),
        Some(Err(Error::InvalidBatch { .. }))
    ));
    assert!(generator.next().is_none());
    assert_eq!(generator.stop_reason(), Some(&StopReason::Error));
    drop(generator);
    let options = GenerateOptions {
        seq_id: 5,
        ..GenerateOptions::default()
    };
    let mut generator = ctx.generate(&first, &mut sampler, options);
    assert!(matches!(
        generator.next(),
        Some(Err(Error::SeqIdOutOfRange { seq_id: 5, .. }))
    ));
    drop(generator);
    let mut generator = ctx.generate(&[Token(-3)], &mut sampler, GenerateOptions::default());
    assert!(matches!(
        generator.next(),
        Some(Err(Error::TokenOutOfVocab { .. }))
    ));
}

#[test]
fn long_prompts_are_decoded_in_n_batch_pieces() {
    let model = tiny_model();
    let mut ctx = model
        .new_context(&small_ctx().n_batch(16).n_ubatch(16))
        .unwrap();
    let prompt = model
        .tokenize(&"many words here ".repeat(10), true)
        .unwrap();
    assert!(prompt.len() > 16);
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(3),
    );
    generator.collect_text().unwrap();
    assert_eq!(generator.tokens().len(), 3);
}

#[test]
fn a_full_context_ends_generation_with_the_text_so_far() {
    let model = tiny_model();
    let mut ctx = model
        .new_context(&small_ctx().n_ctx(256).n_batch(256).n_ubatch(256))
        .unwrap();
    assert_eq!(ctx.n_ctx(), 256);
    let prompt = vec![Token(b'a' as i32); 250];
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &prompt,
        &mut sampler,
        GenerateOptions::default().max_tokens(100),
    );
    let text = generator.collect_text().unwrap();
    assert_eq!(generator.stop_reason(), Some(&StopReason::ContextFull));
    assert_eq!(
        generator.tokens().len(),
        256 - 250 + 1,
        "the last token is returned but not decoded"
    );
    let bytes: Vec<u8> = generator
        .tokens()
        .iter()
        .flat_map(|&t| model.token_piece(t, false).unwrap())
        .collect();
    assert_eq!(text, String::from_utf8_lossy(&bytes));
    drop(generator);
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(255));
}
