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
