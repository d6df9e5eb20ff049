//! Chat templates from metadata, and embeddings.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{
    Batch, ChatMessage, ChatTemplate, Error, Model, ModelParams, Pooling, Role, cosine_similarity,
    normalize,
};
use llama_prebuilt_test_support::gguf::{self, IM_END_ID, IM_START_ID, TinyModelSpec};

#[test]
fn the_models_template_formats_a_conversation() {
    let model = tiny_model();
    let template = model
        .chat_template()
        .expect("the tiny model has a template");
    assert_eq!(template.source(), gguf::DEFAULT_CHAT_TEMPLATE);
    let messages = [
        ChatMessage::system("Be brief."),
        ChatMessage::user("Hi"),
        ChatMessage::assistant("Hello!"),
        ChatMessage::new(Role::User, "Bye"),
    ];
    let prompt = template.apply(&messages, true).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n"
    );
    let without = template.apply(&messages[..2], false).unwrap();
    assert!(without.ends_with("Hi<|im_end|>\n"));
    // The markers become their tokens only with special parsing.
    let tokens = model.tokenize_special(&prompt, true).unwrap();
    assert!(tokens.contains(&llama_prebuilt::Token(IM_START_ID)));
    assert!(tokens.contains(&llama_prebuilt::Token(IM_END_ID)));
    // Long conversations grow the buffer.
    let long = vec![ChatMessage::user("word ".repeat(2000)); 3];
    assert!(template.apply(&long, true).unwrap().len() > 30_000);
    assert_eq!(Role::Other("critic".into()).as_str(), "critic");
}

#[test]
fn builtin_and_unknown_templates() {
    let names = ChatTemplate::builtin_names();
    assert!(names.iter().any(|n| n == "chatml"), "{names:?}");
    let chatml = ChatTemplate::new("chatml").unwrap();
    assert!(
        chatml
            .apply(&[ChatMessage::user("x")], true)
            .unwrap()
            .contains("<|im_start|>user")
    );
    let unknown = ChatTemplate::new("{{ this is no template llama.cpp knows }}").unwrap();
    assert!(matches!(
        unknown.apply_builtin(&[ChatMessage::user("x")], true),
        Err(Error::UnsupportedChatTemplate)
    ));
    // Neither Jinja nor the built-in matcher can render it (see tests/chat_jinja.rs).
    assert!(matches!(
        unknown.apply(&[ChatMessage::user("x")], true),
        Err(Error::ChatTemplateRender { .. })
    ));
    assert!(matches!(
        ChatTemplate::new("a\0b"),
        Err(Error::NulByte { position: 1, .. })
    ));
    assert!(matches!(
        chatml.apply(&[ChatMessage::user("nul\0")], true),
        Err(Error::NulByte { .. })
    ));
}

#[test]
fn a_model_without_template_has_none() {
    let spec = TinyModelSpec {
        chat_template: None,
        ..TinyModelSpec::tiny()
    };
    let path = gguf::cached_model(&spec).unwrap();
    let model = Model::load(&path, &ModelParams::default().vocab_only(true)).unwrap();
    assert!(model.chat_template().is_none());
    assert!(tiny_model().named_chat_template(Some("tool_use")).is_none());
}

#[test]
fn embeddings_need_an_embeddings_context() {
    let model = tiny_model();
    let tokens = model.tokenize("hello", true).unwrap();
    let mut plain = model.new_context(&small_ctx()).unwrap();
    plain
        .decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    assert!(matches!(
        plain.embeddings_seq(0),
        Err(Error::EmbeddingsUnavailable { .. })
    ));
    assert!(matches!(
        plain.embeddings_ith(0),
        Err(Error::EmbeddingsUnavailable { .. })
    ));
    assert!(matches!(
        plain.embed(&tokens),
        Err(Error::EmbeddingsUnavailable { .. })
    ));

    let mut ctx = model
        .new_context(&small_ctx().embeddings(true).pooling(Pooling::Mean))
        .unwrap();
    assert_eq!(ctx.pooling(), Pooling::Mean);
    let a = ctx
        .embed(&model.tokenize("the cat sat on the mat", true).unwrap())
        .unwrap();
    let b = ctx
        .embed(&model.tokenize("the cat sat on the mat", true).unwrap())
        .unwrap();
    let c = ctx
        .embed(&model.tokenize("quantum chromodynamics", true).unwrap())
        .unwrap();
    assert_eq!(a.len(), model.n_embd() as usize);
    assert_eq!(
        a, b,
        "embedding is deterministic and independent of earlier calls"
    );
    assert!((cosine_similarity(&a, &b) - 1.0).abs() < 1e-5);
    assert!(cosine_similarity(&a, &c) < 0.9999);
    let mut n = a.clone();
    normalize(&mut n);
    assert!((n.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
    assert!(matches!(
        ctx.embeddings_seq(1),
        Err(Error::SeqIdOutOfRange { .. })
    ));

    // Pooling needs the whole batch in one ubatch (llama.cpp would pool each ubatch).
    let mut small = model
        .new_context(
            &small_ctx()
                .n_ubatch(4)
                .embeddings(true)
                .pooling(Pooling::Mean),
        )
        .unwrap();
    let long = model.tokenize("the quick brown fox jumps", true).unwrap();
    assert!(matches!(
        small.embed(&long),
        Err(Error::BatchTooLarge { n_batch: 4, .. })
    ));
    assert!(small.embed(&long[..4]).is_ok());

    // Several sequences in one batch, each pooled separately.
    let mut multi = model
        .new_context(
            &small_ctx()
                .n_seq_max(2)
                .embeddings(true)
                .pooling(Pooling::Last),
        )
        .unwrap();
    let mut batch = Batch::new(8);
    for (i, t) in model.tokenize("ab", false).unwrap().into_iter().enumerate() {
        batch.add(t, i as i32, &[0], false).unwrap();
    }
    for (i, t) in model
        .tokenize("xyz", false)
        .unwrap()
        .into_iter()
        .enumerate()
    {
        batch.add(t, i as i32, &[1], false).unwrap();
    }
    multi.decode(&batch).unwrap();
    assert_eq!(
        multi.output_indices().len(),
        5,
        "an embeddings context outputs every token"
    );
    let (s0, s1) = (
        multi.embeddings_seq(0).unwrap().to_vec(),
        multi.embeddings_seq(1).unwrap().to_vec(),
    );
    assert_ne!(s0, s1);
}
