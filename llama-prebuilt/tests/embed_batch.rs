//! `Embedder`: many texts per decode equal one text at a time; reranking; its errors.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{
    ContextParams, Embedder, Error, FlashAttention, Model, ModelParams, Pooling, Token,
    cosine_similarity,
};
use llama_prebuilt_test_support::gguf_rerank::{self, RerankModelSpec};

/// Texts of many lengths (2..~128 tokens: multi-byte characters are several tokens).
fn texts(n: usize) -> Vec<String> {
    let words = [
        "cat",
        "mat",
        "the",
        "quantum",
        "sat",
        "on",
        "a",
        "river",
        "bank",
        "money",
        "λόγος",
        "日本",
        "emoji 🦀",
        "and",
        "then",
    ];
    (0..n)
        .map(|i| {
            let len = 1 + (i * 7) % 13;
            (0..len)
                .map(|j| words[(i * 3 + j * 5) % words.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn alone(model: &Model, pooling: Pooling, tokens: &[Token]) -> Vec<f32> {
    let mut ctx = model
        .new_context(
            &small_ctx()
                .n_ctx(512)
                .n_batch(256)
                .n_ubatch(256)
                .embeddings(true)
                .pooling(pooling),
        )
        .unwrap();
    ctx.embed(tokens).unwrap()
}

/// The largest `1 - cosine` between batched and one-at-a-time results.
fn max_delta(batched: &[Vec<f32>], single: &[Vec<f32>]) -> f64 {
    assert_eq!(batched.len(), single.len());
    batched
        .iter()
        .zip(single)
        .map(|(a, b)| {
            assert_eq!(a.len(), b.len());
            1.0 - f64::from(cosine_similarity(a, b))
        })
        .fold(0.0, f64::max)
}

#[test]
fn batches_equal_one_text_at_a_time() {
    let model = tiny_model();
    let texts = texts(70);
    let tokens: Vec<_> = texts
        .iter()
        .map(|t| model.tokenize(t, true).unwrap())
        .collect();
    for pooling in [Pooling::Mean, Pooling::Last, Pooling::Cls] {
        let single: Vec<_> = tokens.iter().map(|t| alone(model, pooling, t)).collect();
        // Several packings: few sequences per decode, few tokens per decode, and roomy.
        for (n_seq_max, n_ubatch) in [(4, 256), (64, 128), (64, 512), (1, 128)] {
            let params = ContextParams::default()
                .n_ctx(512)
                .n_batch(512)
                .n_ubatch(n_ubatch)
                .n_seq_max(n_seq_max)
                .n_threads(2)
                .pooling(pooling);
            let mut embedder = Embedder::new(model, &params).unwrap();
            let batched = embedder.embed_batch(&texts).unwrap();
            let delta = max_delta(&batched, &single);
            eprintln!(
                "{pooling:?} n_seq_max {n_seq_max} n_ubatch {n_ubatch}: max 1-cos {delta:.2e}"
            );
            assert!(delta <= 1e-5, "{pooling:?}: 1 - cosine = {delta}");
            // The same embedder again, and a different order: same vectors, in input order.
            let reversed: Vec<_> = texts.iter().rev().collect();
            let mut again = embedder.embed_batch(&reversed).unwrap();
            again.reverse();
            assert!(max_delta(&again, &single) <= 1e-5);
        }
    }
    let mut embedder =
        Embedder::new(model, &Embedder::params(model).pooling(Pooling::Mean)).unwrap();
    assert_eq!(embedder.embed_batch::<&str>(&[]).unwrap().len(), 0);
    assert_eq!(embedder.max_tokens_per_input(), 2048);
    assert_eq!(embedder.context().n_seq_max(), 64);
}

#[test]
fn reranking_scores_in_input_order() {
    let no_template = RerankModelSpec {
        rerank_template: None,
        ..RerankModelSpec::tiny()
    };
    // With flash attention off, batched scores equal single ones to float rounding. With it
    // on (llama.cpp's default, Auto), llama.cpp's CPU kernel takes another path for a ubatch
    // of a few tokens than for a large one, so a short pair scored alone differs a little
    // from the same pair in a packed batch (seen: 2.5e-4).
    for (spec, flash, tolerance) in [
        (RerankModelSpec::tiny(), FlashAttention::Off, 1e-5),
        (no_template.clone(), FlashAttention::Off, 1e-5),
        (RerankModelSpec::tiny(), FlashAttention::Auto, 1e-3),
        (no_template, FlashAttention::Auto, 1e-3),
    ] {
        let path = gguf_rerank::cached_rerank_model(&spec).unwrap();
        let model = Model::load(&path, &ModelParams::default()).unwrap();
        let params = ContextParams::default()
            .n_ctx(1024)
            .n_batch(512)
            .n_ubatch(512)
            .n_seq_max(8)
            .n_threads(2)
            .flash_attention(flash);
        let mut embedder = Embedder::new(&model, &params).unwrap();
        assert_eq!(
            embedder.context().pooling(),
            Pooling::Rank,
            "the model's pooling"
        );
        let query = "what do cats sit on?";
        let docs = texts(20);
        let scores = embedder.rerank(query, &docs).unwrap();
        assert_eq!(scores.len(), docs.len());
        // One document at a time, in a plain context, gives the same scores.
        let mut ctx = model
            .new_context(
                &small_ctx()
                    .n_ctx(512)
                    .n_batch(512)
                    .n_ubatch(512)
                    .embeddings(true)
                    .pooling(Pooling::Rank)
                    .flash_attention(flash),
            )
            .unwrap();
        let mut max_diff = 0f32;
        for (doc, &score) in docs.iter().zip(&scores) {
            let tokens = embedder.rerank_tokens(query, doc).unwrap();
            let single = ctx.embed(&tokens).unwrap();
            assert_eq!(single.len(), 2, "yes/no probabilities");
            assert!((single[0] + single[1] - 1.0).abs() < 1e-5, "a softmax");
            max_diff = max_diff.max((single[0] - score).abs());
            assert_eq!(embedder.rerank(query, &[doc]).unwrap().len(), 1);
        }
        eprintln!(
            "rerank (template: {}, flash attention {flash:?}): max |batched - alone| = {max_diff:.2e}",
            spec.rerank_template.is_some()
        );
        assert!(max_diff < tolerance, "{max_diff}");
        // The scores depend on the document (random weights still discriminate).
        assert!(scores.iter().any(|&s| (s - scores[0]).abs() > 1e-6));
        // Reversed documents, reversed scores.
        let reversed: Vec<_> = docs.iter().rev().collect();
        let mut back = embedder.rerank(query, &reversed).unwrap();
        back.reverse();
        for (a, b) in back.iter().zip(&scores) {
            assert!((a - b).abs() < tolerance);
        }
        // The prompt follows the template when the model has one.
        let text = model
            .detokenize(&embedder.rerank_tokens("Q?", "D.").unwrap())
            .unwrap();
        if spec.rerank_template.is_some() {
            assert!(text.contains("<Query>: Q?\n<Document>: D."), "{text:?}");
        } else {
            assert!(text.starts_with("Q?") && text.ends_with("D."), "{text:?}");
        }
    }
}

#[test]
fn errors_name_the_input_and_the_fix() {
    let model = tiny_model();
    let params = ContextParams::default()
        .n_ctx(256)
        .n_batch(64)
        .n_ubatch(32)
        .n_seq_max(4)
        .n_threads(2)
        .pooling(Pooling::Mean);
    let mut embedder = Embedder::new(model, &params).unwrap();
    assert_eq!(embedder.max_tokens_per_input(), 32);

    // Too long for one ubatch (llama.cpp would pool a split sequence wrongly, or assert for
    // a non-causal model).
    let long = "word ".repeat(40);
    let err = embedder.embed_batch(&["short", &long]).unwrap_err();
    assert!(matches!(err, Error::EmbedInput { index: 1, .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("input 1 cannot be embedded: it has 161 tokens, more than the 32")
            && msg.contains("n_ubatch 32"),
        "{msg}"
    );

    // An input without tokens.
    let err = embedder
        .embed_tokens(&[vec![Token(1)], vec![]])
        .unwrap_err();
    assert!(matches!(err, Error::EmbedInput { index: 1, .. }), "{err:?}");
    assert!(err.to_string().contains("it has no tokens"), "{err}");
    // An empty text still has the BOS token here: it embeds.
    assert_eq!(embedder.embed_batch(&[""]).unwrap().len(), 1);

    // Tokens outside the vocabulary are refused before any decode.
    let err = embedder
        .embed_tokens(&[vec![Token(1)], vec![Token(1_000_000)]])
        .unwrap_err();
    assert!(matches!(err, Error::TokenOutOfVocab { .. }), "{err:?}");

    // No pooling: no vector per text.
    for pooling in [Pooling::None, Pooling::FromModel] {
        let err = Embedder::new(model, &params.clone().pooling(pooling)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidParam {
                    name: "pooling",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("set ContextParams::pooling"),
            "{err}"
        );
    }

    // Reranking needs Pooling::Rank.
    let err = embedder.rerank("q", &["d"]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidParam {
                name: "pooling",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("rerank needs Pooling::Rank"),
        "{err}"
    );

    // A rerank pair too long names the document.
    let path = gguf_rerank::tiny_rerank_model();
    let reranker = Model::load(&path, &ModelParams::default()).unwrap();
    let mut embedder = Embedder::new(
        &reranker,
        &ContextParams::default()
            .n_ctx(256)
            .n_batch(256)
            .n_ubatch(256)
            .n_seq_max(4),
    )
    .unwrap();
    let err = embedder.rerank("q", &["short", "long ".repeat(100).as_str()]);
    assert!(
        matches!(err, Err(Error::EmbedInput { index: 1, .. })),
        "{err:?}"
    );
}
