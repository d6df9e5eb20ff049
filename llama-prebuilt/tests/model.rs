//! Loading models: metadata, vocabulary, tokenizer, and every kind of bad file.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{model_bytes, temp_file, tiny_model};
use llama_prebuilt::gguf::GgufError;
use llama_prebuilt::{Error, LoadMode, Model, ModelParams, Token, TokenAttrs, looks_like_gguf};
use llama_prebuilt_test_support::gguf::{
    self, BOS_ID, EOS_ID, IM_END_ID, IM_START_ID, N_VOCAB, TinyModelSpec,
};

#[test]
fn metadata_and_hyperparameters() {
    let model = tiny_model();
    let spec = TinyModelSpec::tiny();
    assert_eq!(model.n_vocab(), N_VOCAB);
    assert_eq!(model.n_embd(), spec.n_embd);
    assert_eq!(model.n_embd_out(), spec.n_embd);
    assert_eq!(model.n_layer(), spec.n_layer);
    assert_eq!(model.n_head(), spec.n_head);
    assert_eq!(model.n_head_kv(), spec.n_head_kv);
    assert_eq!(model.n_ctx_train(), spec.n_ctx_train);
    assert_eq!(model.n_params(), spec.n_params());
    assert!(model.size() > 0);
    assert!(!model.has_encoder() && !model.is_recurrent() && !model.is_vocab_only());
    assert!(
        model.description().starts_with("llama"),
        "{}",
        model.description()
    );
    assert_eq!(model.meta("general.architecture").as_deref(), Some("llama"));
    assert_eq!(model.meta("llama.block_count").as_deref(), Some("2"));
    assert_eq!(model.meta("no.such.key"), None);
    assert_eq!(model.meta("bad\0key"), None);
    let all = model.metadata();
    assert!(
        all.iter()
            .any(|(k, v)| k == "llama.embedding_length" && v == "64"),
        "{all:?}"
    );
    // A long value (the chat template) comes back whole.
    let template = model.meta("tokenizer.chat_template").unwrap();
    assert_eq!(template, gguf::DEFAULT_CHAT_TEMPLATE);
    assert_eq!(model.path(), gguf::tiny_model());
}

#[test]
fn vocabulary() {
    let model = tiny_model();
    assert_eq!(model.token_bos(), Some(Token(BOS_ID)));
    assert_eq!(model.token_eos(), Some(Token(EOS_ID)));
    assert!(model.adds_bos());
    assert!(model.is_eog(Token(EOS_ID)));
    assert!(
        model.is_eog(Token(IM_END_ID)),
        "<|im_end|> ends generation by its name"
    );
    assert!(!model.is_eog(Token(b'a' as i32)));
    assert!(!model.is_eog(Token(-1)) && !model.is_eog(Token(N_VOCAB as i32)));
    assert!(model.is_control(Token(IM_START_ID)));
    assert!(!model.is_control(Token(65)));
    assert!(
        model
            .token_attrs(Token(BOS_ID))
            .unwrap()
            .contains(TokenAttrs::CONTROL)
    );
    assert!(
        model
            .token_attrs(Token(65))
            .unwrap()
            .contains(TokenAttrs::NORMAL)
    );
    assert_eq!(model.token_text(Token(b' ' as i32)).unwrap(), "Ġ");
    assert_eq!(
        model.token_text(Token(IM_START_ID)).unwrap(),
        "<|im_start|>"
    );
    assert_eq!(model.token_piece(Token(b' ' as i32), false).unwrap(), b" ");
    assert_eq!(model.token_piece(Token(0xc3), false).unwrap(), [0xc3]);
    assert_eq!(model.token_piece(Token(EOS_ID), false).unwrap(), b"");
    assert_eq!(model.token_piece(Token(EOS_ID), true).unwrap(), b"</s>");
    for bad in [Token(-1), Token(N_VOCAB as i32), Token(i32::MAX)] {
        assert!(
            matches!(model.token_piece(bad, false), Err(Error::TokenOutOfVocab { token, n_vocab }) if token == bad && n_vocab == N_VOCAB)
        );
        assert!(model.token_text(bad).is_err());
        assert!(model.token_attrs(bad).is_err());
        assert!(matches!(
            model.detokenize(&[Token(65), bad]),
            Err(Error::TokenOutOfVocab { .. })
        ));
    }
}

#[test]
fn tokenizer_round_trips_and_keeps_special_text_plain_by_default() {
    let model = tiny_model();
    for text in [
        "héllo wörld 🦙 日本語",
        " spaces  ",
        "tabs\tand\nnewlines\r\n",
        "",
        "nul\0byte",
    ] {
        let tokens = model.tokenize(text, false).unwrap();
        assert_eq!(model.detokenize(&tokens).unwrap(), text);
        let with_bos = model.tokenize(text, true).unwrap();
        assert_eq!(with_bos[0], Token(BOS_ID));
        assert_eq!(&with_bos[1..], &tokens[..]);
        let bytes: Vec<u8> = tokens
            .iter()
            .flat_map(|&t| model.token_piece(t, false).unwrap())
            .collect();
        assert_eq!(bytes, text.as_bytes());
    }
    let marked = "<|im_start|>user";
    let plain = model.tokenize(marked, false).unwrap();
    assert!(
        !plain.contains(&Token(IM_START_ID)),
        "parse_special is off by default: {plain:?}"
    );
    let special = model.tokenize_special(marked, false).unwrap();
    assert_eq!(special[0], Token(IM_START_ID));
    assert_eq!(
        model.detokenize_bytes(&special, false, true).unwrap(),
        marked.as_bytes()
    );
    assert_eq!(
        model.detokenize(&special).unwrap(),
        "user",
        "control tokens render as nothing"
    );
    // Long text grows the output buffer.
    let long = "abc ".repeat(5000);
    assert_eq!(
        model
            .detokenize(&model.tokenize(&long, false).unwrap())
            .unwrap(),
        long
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let err = Model::load("/definitely/not/here.gguf", &ModelParams::default()).unwrap_err();
    match err {
        Error::Io { path, source } => {
            assert_eq!(path, std::path::Path::new("/definitely/not/here.gguf"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_file_that_is_not_gguf_is_rejected_before_llama_sees_it() {
    for (name, bytes) in [
        ("elf.gguf", b"\x7fELF\x02\x01\x01\0 not a model".to_vec()),
        ("empty.gguf", Vec::new()),
        ("text.gguf", b"{\"hello\": \"world\"}\n".to_vec()),
        ("v1.gguf", b"GGUF\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec()),
    ] {
        assert!(!looks_like_gguf(&bytes), "{name}");
        let (_dir, path) = temp_file(name, &bytes);
        let err = Model::load(&path, &ModelParams::default()).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidGguf {
                    source: GgufError::BadMagic { .. } | GgufError::UnsupportedVersion { .. },
                    ..
                }
            ),
            "{name}: {err:?}"
        );
    }
    let err = Model::load(std::env::temp_dir(), &ModelParams::default()).unwrap_err();
    assert!(
        matches!(err, Error::Io { .. } | Error::InvalidGguf { .. }),
        "a directory: {err:?}"
    );
}

#[test]
fn truncated_gguf_files_are_errors_not_crashes() {
    let bytes = model_bytes();
    assert!(looks_like_gguf(&bytes));
    let header = llama_prebuilt::gguf::parse_header(&bytes).unwrap();
    let data_start = header.data_offset as usize;
    let cuts = [
        10,
        100,
        data_start / 2,
        data_start - 1,
        data_start,
        data_start + 100,
        bytes.len() / 2,
        bytes.len() - 1,
    ];
    for cut in cuts {
        let (_dir, path) = temp_file("truncated.gguf", &bytes[..cut]);
        let err = Model::load(&path, &ModelParams::default()).unwrap_err();
        assert!(
            matches!(err, Error::InvalidGguf { .. } | Error::ModelLoad { .. }),
            "cut at {cut} of {}: {err:?}",
            bytes.len()
        );
        if cut < data_start {
            assert!(
                matches!(
                    err,
                    Error::InvalidGguf {
                        source: GgufError::Truncated { .. } | GgufError::TensorOutOfBounds { .. },
                        ..
                    }
                ),
                "cut at {cut}: {err:?}"
            );
        }
    }
}

#[test]
fn a_gguf_llama_refuses_reports_llamas_message() {
    // Valid GGUF structure, but without any tensors or architecture.
    let mut bytes = b"GGUF".to_vec();
    bytes.extend_from_slice(&3u32.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    bytes.extend_from_slice(&0u64.to_le_bytes());
    let (_dir, path) = temp_file("hollow.gguf", &bytes);
    match Model::load(&path, &ModelParams::default()).unwrap_err() {
        Error::ModelLoad { path: p, message } => {
            assert_eq!(p, path);
            assert!(message.is_some(), "llama.cpp logged why");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn load_modes_and_vocab_only() {
    let path = gguf::tiny_model();
    let read = Model::load(
        &path,
        &ModelParams::default()
            .load_mode(LoadMode::Read)
            .n_gpu_layers(0),
    )
    .unwrap();
    assert_eq!(read.n_params(), tiny_model().n_params());
    let vocab = Model::load(&path, &ModelParams::default().vocab_only(true)).unwrap();
    assert!(vocab.is_vocab_only());
    assert_eq!(vocab.tokenize("hi", false).unwrap().len(), 2);
    let err = vocab.new_context(&common::small_ctx()).unwrap_err();
    assert!(
        matches!(err, Error::InvalidParam { name: "model", .. }),
        "{err:?}"
    );
}

#[test]
fn progress_callback_reports_and_can_cancel() {
    let path = gguf::tiny_model();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let params = ModelParams::default().progress_callback(move |p| {
        assert!((0.0..=1.0).contains(&p));
        seen.fetch_add(1, Ordering::SeqCst);
        true
    });
    Model::load(&path, &params).unwrap();
    assert!(calls.load(Ordering::SeqCst) >= 1);

    let err = Model::load(&path, &ModelParams::default().progress_callback(|_| false)).unwrap_err();
    assert!(matches!(err, Error::LoadCancelled { .. }), "{err:?}");
}

#[test]
fn a_panicking_progress_callback_unwinds_in_rust_not_c() {
    let path = gguf::tiny_model();
    let params = ModelParams::default().progress_callback(|_| panic!("progress exploded"));
    let payload =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Model::load(&path, &params)))
            .unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"progress exploded"));
    // Everything still works afterwards.
    assert!(Model::load(&path, &ModelParams::default()).is_ok());
}

#[test]
fn model_is_send_and_sync_and_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Model>();
    let model = tiny_model();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| s.spawn(move || model.tokenize(&format!("thread {i}"), false).unwrap()))
            .collect();
        for h in handles {
            assert!(!h.join().unwrap().is_empty());
        }
    });
}

#[test]
fn metadata_overrides_change_what_the_model_reports_and_bad_ones_are_errors() {
    use llama_prebuilt::MetadataValue;

    let path = llama_prebuilt_test_support::gguf::tiny_model();
    let plain = Model::load(&path, &ModelParams::default()).unwrap();
    let model = Model::load(
        &path,
        &ModelParams::default().metadata_override("llama.context_length", MetadataValue::Int(77)),
    )
    .unwrap();
    assert_ne!(plain.n_ctx_train(), 77);
    assert_eq!(model.n_ctx_train(), 77);

    // The wrong type for the key: llama.cpp would ignore it with a warning and keep the file's
    // value; here it is an Err that says which type to use.
    let err = Model::load(
        &path,
        &ModelParams::default()
            .metadata_override("llama.context_length", MetadataValue::Str("long".into())),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("llama.context_length is u32 in the model")
            && err.to_string().contains("use MetadataValue::Int"),
        "{err}"
    );
    // A key the file lacks is taken as given.
    Model::load(
        &path,
        &ModelParams::default().metadata_override("llama.no_such_key", MetadataValue::Bool(true)),
    )
    .unwrap();

    let err = Model::load(
        &path,
        &ModelParams::default().metadata_override("k".repeat(200), MetadataValue::Int(1)),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("metadata_override") && err.to_string().contains("at most 127"),
        "{err}"
    );
}
