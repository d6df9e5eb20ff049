//! Contexts: creation limits, batch validation, decode, logits, memory and state.

mod common;

use common::{small_ctx, temp_path, tiny_model};
use llama_prebuilt::{Batch, Context, ContextParams, Error, Pooling, Token};
use llama_prebuilt_test_support::gguf::{N_VOCAB, TinyModelSpec};

fn prompt() -> Vec<Token> {
    tiny_model().tokenize("Hello, world", true).unwrap()
}

#[test]
fn context_reports_its_parameters() {
    let model = tiny_model();
    let ctx = model.new_context(&small_ctx().n_seq_max(2)).unwrap();
    // llama.cpp pads the context per sequence to a multiple of 256.
    assert!(
        ctx.n_ctx() >= 256 && ctx.n_ctx() % 256 == 0,
        "{}",
        ctx.n_ctx()
    );
    assert_eq!(ctx.n_batch(), 64);
    assert_eq!(ctx.n_ubatch(), 64);
    assert_eq!(ctx.n_seq_max(), 2);
    assert!(!ctx.embeddings_enabled());
    assert_eq!(ctx.pooling(), Pooling::None);
    assert!(std::ptr::eq(ctx.model(), model));
    fn assert_send<T: Send>() {}
    assert_send::<Context<'static>>();
}

#[test]
fn a_context_larger_than_the_training_context_needs_an_opt_in() {
    let model = tiny_model();
    let n_ctx_train = TinyModelSpec::tiny().n_ctx_train;
    let err = model
        .new_context(&small_ctx().n_ctx(n_ctx_train + 1))
        .unwrap_err();
    assert!(
        matches!(err, Error::ContextTooLarge { requested, n_ctx_train: t } if requested == n_ctx_train + 1 && t == n_ctx_train),
        "{err:?}"
    );
    let ctx = model
        .new_context(
            &small_ctx()
                .n_ctx(n_ctx_train * 2)
                .allow_exceeding_train_context(true),
        )
        .unwrap();
    assert!(ctx.n_ctx() >= n_ctx_train * 2);
    // 0 means the training context, which is allowed.
    let ctx = model.new_context(&small_ctx().n_ctx(0)).unwrap();
    assert_eq!(ctx.n_ctx(), n_ctx_train);
}

#[test]
fn invalid_context_parameters_are_errors() {
    let model = tiny_model();
    for (params, name) in [
        (small_ctx().n_batch(0), "n_batch"),
        (small_ctx().n_ubatch(0), "n_ubatch"),
        (small_ctx().n_seq_max(0), "n_seq_max"),
        (small_ctx().n_seq_max(100_000), "n_seq_max"),
        (small_ctx().n_threads(0), "n_threads"),
    ] {
        let err = model.new_context(&params).unwrap_err();
        assert!(
            matches!(err, Error::InvalidParam { name: n, .. } if n == name),
            "{err:?}"
        );
    }
}

#[test]
fn decode_produces_logits_for_requested_outputs_only() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    assert!(
        matches!(ctx.last_logits(), Err(Error::NoOutput { .. })),
        "no decode yet"
    );
    let tokens = prompt();
    let mut batch = Batch::for_sequence(&tokens, 0, 0).unwrap();
    batch.set_output(0, true).unwrap();
    ctx.decode(&batch).unwrap();
    assert_eq!(ctx.output_indices(), &[0, tokens.len() - 1]);
    let last = ctx.logits(tokens.len() - 1).unwrap();
    assert_eq!(last.len(), N_VOCAB as usize);
    assert!(last.iter().all(|v| v.is_finite()));
    assert_eq!(ctx.last_logits().unwrap(), last);
    assert_ne!(ctx.logits(0).unwrap(), last);
    assert!(matches!(ctx.logits(1), Err(Error::NoOutput { index: 1 })));
    assert!(matches!(
        ctx.logits(999),
        Err(Error::NoOutput { index: 999 })
    ));
    assert_eq!(ctx.seq_pos_max(0).unwrap(), Some(tokens.len() as i32 - 1));
}

#[test]
fn token_ids_outside_the_vocabulary_are_rejected() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    for bad in [N_VOCAB as i32, -1, i32::MAX] {
        let mut batch = Batch::new(4);
        batch.add(Token(1), 0, &[0], false).unwrap();
        batch.add(Token(bad), 1, &[0], true).unwrap();
        let err = ctx.decode(&batch).unwrap_err();
        assert!(
            matches!(err, Error::TokenOutOfVocab { token, n_vocab: N_VOCAB } if token == Token(bad)),
            "{err:?}"
        );
    }
    assert_eq!(
        ctx.seq_pos_max(0).unwrap(),
        None,
        "nothing reached the memory"
    );
}

#[test]
fn batches_over_capacity_or_n_batch_are_rejected() {
    let model = tiny_model();
    let mut ctx = model
        .new_context(&small_ctx().n_batch(8).n_ubatch(8))
        .unwrap();
    let mut batch = Batch::new(3);
    for pos in 0..3 {
        batch.add(Token(65), pos, &[0], false).unwrap();
    }
    assert!(matches!(
        batch.add(Token(65), 3, &[0], true),
        Err(Error::BatchFull { capacity: 3 })
    ));
    assert_eq!(batch.len(), 3);

    let tokens = vec![Token(65); 9];
    let err = ctx
        .decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchTooLarge {
                n_tokens: 9,
                n_batch: 8
            }
        ),
        "{err:?}"
    );
    let err = ctx.decode(&Batch::new(4)).unwrap_err();
    assert!(matches!(err, Error::InvalidBatch { .. }), "{err:?}");
}

#[test]
fn sequence_ids_must_be_below_n_seq_max() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx().n_seq_max(2)).unwrap();
    let mut batch = Batch::new(2);
    batch.add(Token(65), 0, &[0, 2], true).unwrap();
    let err = ctx.decode(&batch).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SeqIdOutOfRange {
                seq_id: 2,
                n_seq_max: 2
            }
        ),
        "{err:?}"
    );
    for seq in [-1, 2, 1000] {
        assert!(matches!(
            ctx.seq_pos_max(seq),
            Err(Error::SeqIdOutOfRange { .. })
        ));
        assert!(matches!(
            ctx.seq_keep(seq),
            Err(Error::SeqIdOutOfRange { .. })
        ));
        assert!(matches!(
            ctx.seq_cp(0, seq, ..),
            Err(Error::SeqIdOutOfRange { .. })
        ));
        assert!(matches!(
            ctx.seq_rm(Some(seq), ..),
            Err(Error::SeqIdOutOfRange { .. })
        ));
    }
    // Both valid ids work.
    let mut batch = Batch::new(2);
    batch.add(Token(65), 0, &[0], false).unwrap();
    batch.add(Token(66), 0, &[1], true).unwrap();
    ctx.decode(&batch).unwrap();
}

#[test]
fn decode_return_codes_map_to_errors() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    // Positions that do not continue the sequence: llama.cpp rejects the batch (-1).
    ctx.decode(&Batch::for_sequence(&prompt(), 0, 0).unwrap())
        .unwrap();
    let err = ctx
        .decode(&Batch::for_sequence(&[Token(65)], 100, 0).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::DecodeInvalidInput { .. }), "{err:?}");
    assert!(
        ctx.output_indices().is_empty(),
        "no outputs after a failed decode"
    );

    // A full context: no KV slot (1).
    let mut ctx = model
        .new_context(&small_ctx().n_batch(256).n_ubatch(256))
        .unwrap();
    let fill = vec![Token(65); 256];
    ctx.decode(&Batch::for_sequence(&fill, 0, 0).unwrap())
        .unwrap();
    let err = ctx
        .decode(&Batch::for_sequence(&[Token(65)], 256, 0).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::NoKvSlot), "{err:?}");

    // Cancelled (2).
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let cancel = ctx.cancel_handle();
    cancel.cancel();
    let err = ctx
        .decode(&Batch::for_sequence(&prompt(), 0, 0).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::Aborted), "{err:?}");
    cancel.reset();
    ctx.clear_memory();
    ctx.decode(&Batch::for_sequence(&prompt(), 0, 0).unwrap())
        .unwrap();
}

#[test]
fn memory_sequence_operations() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx().n_seq_max(3)).unwrap();
    let tokens = prompt();
    let n = tokens.len() as i32;
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    ctx.seq_cp(0, 1, ..).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(n - 1));
    assert_eq!(ctx.seq_pos_min(1).unwrap(), Some(0));
    assert!(ctx.seq_rm(Some(1), 5..).unwrap());
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(4));
    // (Sequences have separate KV streams here, so keeping one leaves the others alone.)
    ctx.seq_keep(1).unwrap();
    assert_eq!(ctx.seq_pos_max(1).unwrap(), Some(4));
    assert!(ctx.seq_rm(None, ..).unwrap());
    assert_eq!(ctx.seq_pos_max(1).unwrap(), None);
    ctx.decode(&Batch::for_sequence(&tokens, 0, 2).unwrap())
        .unwrap();
    ctx.clear_memory();
    assert_eq!(ctx.seq_pos_max(2).unwrap(), None);
    assert!(matches!(
        ctx.seq_rm(Some(0), -1..3),
        Err(Error::InvalidPosition { pos: -1 })
    ));
}

#[test]
fn state_round_trips_through_bytes_and_files() {
    let model = tiny_model();
    let tokens = prompt();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    let logits = ctx.last_logits().unwrap().to_vec();
    let state = ctx.save_state().unwrap();
    assert!(!state.is_empty());

    let next = Batch::for_sequence(&[Token(66)], tokens.len() as i32, 0).unwrap();
    ctx.decode(&next).unwrap();
    let after = ctx.last_logits().unwrap().to_vec();

    let mut other = model.new_context(&small_ctx()).unwrap();
    other.load_state(&state).unwrap();
    assert_eq!(other.seq_pos_max(0).unwrap(), Some(tokens.len() as i32 - 1));
    other.decode(&next).unwrap();
    assert_eq!(
        other.last_logits().unwrap(),
        &after[..],
        "restored memory continues identically"
    );
    assert_ne!(logits, after);

    let (_dir, path) = temp_path("session.bin");
    ctx.clear_memory();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    ctx.save_state_file(&path, &tokens).unwrap();
    let mut third = model.new_context(&small_ctx()).unwrap();
    assert_eq!(third.load_state_file(&path).unwrap(), tokens);
    third.decode(&next).unwrap();
    assert_eq!(third.last_logits().unwrap(), &after[..]);

    assert!(matches!(
        third.load_state(b"garbage"),
        Err(Error::State { .. })
    ));
    assert!(matches!(
        third.load_state_file("/no/such/session"),
        Err(Error::Io { .. })
    ));
    let (_dir2, junk) = common::temp_file("junk.bin", b"not a session file at all");
    assert!(matches!(
        third.load_state_file(&junk),
        Err(Error::State { .. })
    ));
}

#[test]
fn contexts_run_on_other_threads() {
    let model = tiny_model();
    let tokens = prompt();
    let reference = {
        let mut ctx = model.new_context(&small_ctx()).unwrap();
        ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
            .unwrap();
        ctx.last_logits().unwrap().to_vec()
    };
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let moved = std::thread::scope(|s| {
        s.spawn(move || {
            ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
                .unwrap();
            ctx.last_logits().unwrap().to_vec()
        })
        .join()
        .unwrap()
    });
    assert_eq!(moved, reference);
}

#[test]
fn thread_counts_can_change() {
    let mut ctx = tiny_model()
        .new_context(&ContextParams::default().n_ctx(256))
        .unwrap();
    ctx.set_threads(1, 2).unwrap();
    assert!(ctx.set_threads(0, 1).is_err());
}

/// The tiny model with 64-wide heads (2 heads of a 128-wide model), where quantized KV
/// caches fit (their blocks hold 32 values).
fn wide_head_model() -> &'static llama_prebuilt::Model {
    static MODEL: std::sync::OnceLock<llama_prebuilt::Model> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let spec = TinyModelSpec {
            n_embd: 128,
            n_head: 2,
            n_head_kv: 1,
            n_ff: 128,
            seed: 0x5eed_5eee_0000_0002,
            pooling: Some(1),
            ..TinyModelSpec::tiny()
        };
        let path = llama_prebuilt_test_support::gguf::cached_model(&spec).unwrap();
        llama_prebuilt::Model::load(
            path,
            &llama_prebuilt::ModelParams::default().n_gpu_layers(0),
        )
        .unwrap()
    })
}

fn param_error(result: Result<Context<'_>, Error>) -> (&'static str, String) {
    match result {
        Err(Error::InvalidParam { name, reason }) => (name, reason),
        Err(other) => panic!("expected InvalidParam, got {other}"),
        Ok(_) => panic!("expected InvalidParam, got a context"),
    }
}

#[test]
fn a_quantized_cache_needs_heads_that_hold_whole_blocks() {
    use llama_prebuilt::KvCacheType;
    // The tiny model's heads are 16 wide: no 32-value block fits (llama.cpp would abort in
    // ggml_row_size without flash attention, and return NULL with it).
    for ty in KvCacheType::ALL.into_iter().filter(|t| t.is_quantized()) {
        let (name, reason) = param_error(tiny_model().new_context(&small_ctx().type_k(ty)));
        assert_eq!(name, "type_k");
        assert_eq!(
            reason,
            format!(
                "{} stores blocks of 32 values, and this model's head size 16 is not a multiple of 32: use f32, f16 or bf16",
                ty.name()
            )
        );
        let (name, _) = param_error(tiny_model().new_context(&small_ctx().type_v(ty)));
        assert_eq!(name, "type_v");
    }
    // Float caches work on any model; quantized ones where the heads are 64 wide.
    for ty in [KvCacheType::F32, KvCacheType::Bf16] {
        let mut ctx = tiny_model()
            .new_context(&small_ctx().type_k(ty).type_v(ty))
            .unwrap();
        ctx.decode(&Batch::for_sequence(&prompt(), 0, 0).unwrap())
            .unwrap();
    }
    let model = wide_head_model();
    let tokens = model.tokenize("Hello, world", true).unwrap();
    let mut ctx = model
        .new_context(
            &small_ctx()
                .type_k(KvCacheType::Q8_0)
                .type_v(KvCacheType::Q4_0)
                .flash_attention(llama_prebuilt::FlashAttention::On),
        )
        .unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    assert!(ctx.last_logits().unwrap().iter().all(|l| l.is_finite()));
}

#[test]
fn a_quantized_v_cache_needs_flash_attention() {
    use llama_prebuilt::{FlashAttention, KvCacheType};
    let (name, reason) = param_error(
        wide_head_model().new_context(
            &small_ctx()
                .type_v(KvCacheType::Q8_0)
                .flash_attention(FlashAttention::Off),
        ),
    );
    assert_eq!(name, "type_v");
    assert_eq!(
        reason,
        "a quantized V cache (q8_0) needs flash attention: use FlashAttention::On or Auto, or an f32, f16 or bf16 V cache"
    );
    // A quantized K cache is fine without it.
    wide_head_model()
        .new_context(
            &small_ctx()
                .type_k(KvCacheType::Q8_0)
                .flash_attention(FlashAttention::Off),
        )
        .unwrap();
}

#[test]
fn rope_and_yarn_settings_must_be_finite_and_in_range() {
    let model = tiny_model();
    let cases: Vec<(ContextParams, &str, &str)> = vec![
        (
            small_ctx().rope_freq_base(f32::NAN),
            "rope_freq_base",
            "NaN is not a valid RoPE base: use a finite value > 0 (e.g. 10000)",
        ),
        (
            small_ctx().rope_freq_base(0.0),
            "rope_freq_base",
            "0 is not a valid RoPE base: use a finite value > 0 (e.g. 10000)",
        ),
        (
            small_ctx().rope_freq_scale(-0.5),
            "rope_freq_scale",
            "-0.5 is not a valid RoPE frequency scale: use a finite value > 0 (e.g. 0.5 to double the context)",
        ),
        (
            small_ctx().rope_freq_scale(f32::INFINITY),
            "rope_freq_scale",
            "inf is not a valid RoPE frequency scale: use a finite value > 0 (e.g. 0.5 to double the context)",
        ),
        (
            small_ctx().yarn_ext_factor(-1.0),
            "yarn_ext_factor",
            "-1 is not a valid YaRN extrapolation factor: use a finite value >= 0 (0 turns it off)",
        ),
        (
            small_ctx().yarn_attn_factor(0.0),
            "yarn_attn_factor",
            "0 is not a valid YaRN attention factor: use a finite value > 0 (e.g. 1)",
        ),
        (
            small_ctx().yarn_beta_fast(f32::NAN),
            "yarn_beta_fast",
            "NaN is not a valid YaRN beta_fast: use a finite value > 0 (e.g. 32)",
        ),
        (
            small_ctx().yarn_beta_slow(-1.0),
            "yarn_beta_slow",
            "-1 is not a valid YaRN beta_slow: use a finite value > 0 (e.g. 1)",
        ),
        (
            small_ctx().yarn_beta_fast(1.0).yarn_beta_slow(2.0),
            "yarn_beta_fast",
            "1 must be greater than yarn_beta_slow (2), e.g. 32 and 1",
        ),
        (
            small_ctx().yarn_orig_ctx(0),
            "yarn_orig_ctx",
            "must be at least 1 (leave it unset for the model's)",
        ),
    ];
    for (params, want_name, want_reason) in cases {
        let (name, reason) = param_error(model.new_context(&params));
        assert_eq!((name, reason.as_str()), (want_name, want_reason));
    }
    // Valid settings of every kind decode.
    use llama_prebuilt::RopeScaling;
    for scaling in [
        RopeScaling::None,
        RopeScaling::Linear,
        RopeScaling::Yarn,
        RopeScaling::FromModel,
    ] {
        let mut ctx = model
            .new_context(
                &small_ctx()
                    .rope_scaling(scaling)
                    .rope_freq_base(20_000.0)
                    .rope_freq_scale(0.5)
                    .yarn_ext_factor(1.0)
                    .yarn_attn_factor(1.0)
                    .yarn_beta_fast(32.0)
                    .yarn_beta_slow(1.0)
                    .yarn_orig_ctx(1024),
            )
            .unwrap();
        ctx.decode(&Batch::for_sequence(&prompt(), 0, 0).unwrap())
            .unwrap();
        assert!(ctx.last_logits().unwrap().iter().all(|l| l.is_finite()));
    }
}

#[test]
fn forcing_non_causal_attention_limits_a_batch_to_one_ubatch() {
    use llama_prebuilt::AttentionType;
    // llama.cpp asserts n_ubatch >= n_tokens for non-causal attention (an abort); decode
    // checks it first, also when the context (not the model) makes attention non-causal.
    let model = tiny_model();
    let mut ctx = model
        .new_context(
            &small_ctx()
                .n_batch(64)
                .n_ubatch(4)
                .attention(AttentionType::NonCausal),
        )
        .unwrap();
    let tokens = prompt();
    assert!(tokens.len() > 4);
    let err = ctx
        .decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::BatchTooLarge {
                n_batch: 4,
                n_tokens
            } if n_tokens == tokens.len()
        ),
        "{err}"
    );
    ctx.decode(&Batch::for_sequence(&tokens[..4], 0, 0).unwrap())
        .unwrap();
    // Forcing causal attention lifts the limit.
    let mut ctx = model
        .new_context(&small_ctx().n_ubatch(4).attention(AttentionType::Causal))
        .unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
}

#[test]
fn more_sequences_than_a_batch_holds_are_rejected() {
    // llama.cpp reserves one output per sequence, at most n_batch of them, and asserts that
    // at context creation (`n_outputs_max <= cparams.n_outputs_max`: an abort).
    let model = tiny_model();
    let (name, reason) = param_error(model.new_context(&small_ctx().n_batch(8).n_seq_max(16)));
    assert_eq!(name, "n_seq_max");
    assert_eq!(
        reason,
        "16 sequences need n_batch >= 16, but it is 8: raise n_batch (and n_ctx) or lower n_seq_max"
    );
    // n_batch is capped at n_ctx for causal attention (before llama.cpp pads n_ctx to 256).
    let (name, reason) =
        param_error(model.new_context(&small_ctx().n_ctx(2).n_batch(64).n_seq_max(4)));
    assert_eq!(name, "n_seq_max");
    assert_eq!(
        reason,
        "4 sequences need n_batch >= 4, but it is 2 (n_batch 64 capped at n_ctx 2): raise n_batch (and n_ctx) or lower n_seq_max"
    );
    let ctx = model
        .new_context(&small_ctx().n_batch(16).n_seq_max(16))
        .unwrap();
    assert_eq!(ctx.n_seq_max(), 16);
}

#[test]
fn mean_pooling_needs_a_ubatch_that_is_a_multiple_of_the_sequences() {
    // llama.cpp reserves the worst-case graph for n_ubatch tokens rounded up to a multiple of
    // n_seq_max, and the mean-pooling matrix then no longer matches the outputs
    // (`GGML_ASSERT(ggml_can_mul_mat(a, b))`: an abort).
    let model = tiny_model();
    let pooled = || small_ctx().embeddings(true).pooling(Pooling::Mean);
    let (name, reason) =
        param_error(model.new_context(&pooled().n_batch(64).n_ubatch(64).n_seq_max(3)));
    assert_eq!(name, "n_ubatch");
    assert_eq!(
        reason,
        "with mean pooling, llama.cpp needs the ubatch (64 tokens) to be a multiple of n_seq_max (3): use n_ubatch 63 or another multiple of 3, or another n_seq_max"
    );
    let (_, reason) =
        param_error(model.new_context(&pooled().n_batch(64).n_ubatch(2).n_seq_max(3)));
    assert!(
        reason.ends_with("use n_ubatch >= 3, or another n_seq_max"),
        "{reason}"
    );
    // What the message suggests works, and so do other poolings.
    let mut ctx = model
        .new_context(&pooled().n_batch(64).n_ubatch(63).n_seq_max(3))
        .unwrap();
    let tokens = prompt();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 2).unwrap())
        .unwrap();
    assert_eq!(ctx.embeddings_seq(2).unwrap().len(), 64);
    model
        .new_context(
            &small_ctx()
                .embeddings(true)
                .pooling(Pooling::Last)
                .n_seq_max(3),
        )
        .unwrap();
}
