//! Sampler chains: selection, determinism, penalties, logit bias, grammars.

mod common;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{Batch, Context, Error, Model, ModelParams, Penalties, Sampler, Token};
use llama_prebuilt_test_support::gguf::{self, EOS_ID, N_VOCAB};

fn decoded(text: &str) -> Context<'static> {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let tokens = model.tokenize(text, true).unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    ctx
}

fn argmax(logits: &[f32]) -> Token {
    let (i, _) = logits
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        });
    Token(i as i32)
}

#[test]
fn greedy_picks_the_largest_logit() {
    let ctx = decoded("Hello, world");
    let expected = argmax(ctx.last_logits().unwrap());
    let mut sampler = Sampler::chain().greedy();
    assert_eq!(sampler.steps(), ["greedy"]);
    assert_eq!(sampler.sample_last(&ctx).unwrap(), expected);
    let index = *ctx.output_indices().last().unwrap();
    assert_eq!(sampler.sample(&ctx, index).unwrap(), expected);
    assert!(matches!(
        sampler.sample(&ctx, 0),
        Err(Error::NoOutput { index: 0 })
    ));
    // top-k 1 and temperature 0 reduce any random choice to the maximum.
    assert_eq!(
        Sampler::chain().top_k(1).dist(7).sample_last(&ctx).unwrap(),
        expected
    );
    assert_eq!(
        Sampler::chain()
            .temperature(0.0)
            .dist(7)
            .sample_last(&ctx)
            .unwrap(),
        expected
    );
}

#[test]
fn seeded_dist_is_reproducible() {
    let ctx = decoded("Once upon a time");
    let draw = |seed| {
        let mut s = Sampler::chain()
            .top_k(50)
            .top_p(0.95, 1)
            .min_p(0.01, 1)
            .temperature(1.5)
            .dist(seed);
        assert_eq!(s.seed(), Some(seed));
        (0..20)
            .map(|_| s.sample_last(&ctx).unwrap())
            .collect::<Vec<_>>()
    };
    let a = draw(42);
    assert_eq!(a, draw(42));
    assert_ne!(a, draw(43));
    assert!(a.iter().all(|t| (0..N_VOCAB as i32).contains(&t.0)));
    assert_eq!(Sampler::chain().greedy().seed(), None);
}

#[test]
fn a_chain_without_a_selecting_step_is_an_error() {
    let ctx = decoded("Hi");
    for mut sampler in [Sampler::chain(), Sampler::chain().top_k(5).temperature(0.7)] {
        assert!(matches!(
            sampler.sample_last(&ctx),
            Err(Error::NoTokenSelected)
        ));
    }
}

#[test]
fn penalties_steer_away_from_repeats() {
    let ctx = decoded("Hello, world");
    let best = argmax(ctx.last_logits().unwrap());
    let mut sampler = Sampler::chain()
        .penalties(Penalties {
            last_n: 16,
            repeat: 1.0,
            frequency: 0.0,
            presence: 1000.0,
        })
        .unwrap()
        .greedy();
    sampler.accept(best).unwrap();
    assert_ne!(sampler.sample_last(&ctx).unwrap(), best);
    sampler.reset();
    assert_eq!(
        sampler.sample_last(&ctx).unwrap(),
        best,
        "reset forgets the history"
    );
    assert!(matches!(
        Sampler::chain().penalties(Penalties {
            last_n: -2,
            ..Penalties::default()
        }),
        Err(Error::InvalidParam { .. })
    ));
}

#[test]
fn logit_bias_forces_and_bans_tokens() {
    let model = tiny_model();
    let ctx = decoded("Hello, world");
    let best = argmax(ctx.last_logits().unwrap());
    let mut forced = Sampler::chain()
        .logit_bias(model, &[(Token(EOS_ID), 100.0)])
        .unwrap()
        .greedy();
    assert_eq!(forced.sample_last(&ctx).unwrap(), Token(EOS_ID));
    let mut banned = Sampler::chain()
        .logit_bias(model, &[(best, f32::NEG_INFINITY)])
        .unwrap()
        .greedy();
    assert_ne!(banned.sample_last(&ctx).unwrap(), best);
    let err = Sampler::chain()
        .logit_bias(model, &[(Token(N_VOCAB as i32), 1.0)])
        .unwrap_err();
    assert!(matches!(err, Error::TokenOutOfVocab { .. }), "{err:?}");
}

#[test]
fn grammar_constrains_the_output() {
    let model = tiny_model();
    let mut ctx = model.new_context(&small_ctx()).unwrap();
    let mut tokens = model.tokenize("Answer:", true).unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    let mut sampler = Sampler::chain()
        .grammar(model, r#"root ::= "yes" | "no""#, "root")
        .unwrap()
        .greedy();
    let mut out = Vec::new();
    loop {
        let token = sampler.sample_last(&ctx).unwrap();
        if model.is_eog(token) {
            break;
        }
        out.extend(model.token_piece(token, false).unwrap());
        tokens.push(token);
        ctx.decode(&Batch::for_sequence(&[token], tokens.len() as i32 - 1, 0).unwrap())
            .unwrap();
        assert!(out.len() <= 3, "{out:?}");
    }
    assert!(
        out == b"yes" || out == b"no",
        "{:?}",
        String::from_utf8_lossy(&out)
    );
}

#[test]
fn invalid_grammars_are_errors_not_aborts() {
    let model = tiny_model();
    for (gbnf, root) in [
        ("root ::= ::=", "root"),
        ("root ::= \"unterminated", "root"),
        ("root ::= [a-", "root"),
        ("root ::= undefined-rule", "root"),
        ("root ::= root \"a\"", "root"),
        ("start ::= \"a\"", "root"),
        ("this is not a grammar", "root"),
    ] {
        let Err(err) = Sampler::chain().grammar(model, gbnf, root) else {
            panic!("{gbnf:?} was accepted");
        };
        assert!(
            matches!(&err, Error::InvalidGrammar { root: r, .. } if r == root),
            "{gbnf:?}: {err:?}"
        );
    }
    assert!(matches!(
        Sampler::chain().grammar(model, "root ::= \"a\0\"", "root"),
        Err(Error::NulByte {
            what: "grammar",
            position: 11
        })
    ));
    // An empty grammar constrains nothing.
    assert!(Sampler::chain().grammar(model, "", "root").is_ok());
}

#[test]
fn tokens_a_grammar_forbids_are_rejected_instead_of_aborting() {
    let model = tiny_model();
    let mut sampler = Sampler::chain()
        .grammar(model, r#"root ::= "ab""#, "root")
        .unwrap()
        .greedy();
    let a = Token(b'a' as i32);
    let b = Token(b'b' as i32);
    assert!(matches!(sampler.accept(b), Err(Error::GrammarRejected { token }) if token == b));
    assert!(
        matches!(
            sampler.accept(Token(EOS_ID)),
            Err(Error::GrammarRejected { .. })
        ),
        "EOS before the grammar is complete"
    );
    assert!(matches!(
        sampler.accept(Token(-5)),
        Err(Error::TokenOutOfVocab { .. })
    ));
    sampler.accept(a).unwrap();
    assert!(sampler.accept(a).is_err());
    sampler.accept(b).unwrap();
    sampler.accept(Token(EOS_ID)).unwrap();

    // Every token masked out (the grammar's choices banned by a bias): the greedy pick
    // among -inf logits is one the grammar forbids, and sampling says so.
    let ctx = decoded("x");
    let mut only_control = Sampler::chain()
        .logit_bias(model, &[(Token(EOS_ID), f32::NEG_INFINITY)])
        .unwrap()
        .grammar(model, r#"root ::= "ab""#, "root")
        .unwrap()
        .logit_bias(
            model,
            &(0..N_VOCAB as i32)
                .map(|i| (Token(i), f32::NEG_INFINITY))
                .collect::<Vec<_>>(),
        )
        .unwrap()
        .greedy();
    let err = only_control.sample_last(&ctx).unwrap_err();
    assert!(matches!(err, Error::GrammarRejected { .. }), "{err:?}");
}

#[test]
fn samplers_bound_to_one_model_refuse_another() {
    let other = Model::load(gguf::tiny_model(), &ModelParams::default().n_gpu_layers(0)).unwrap();
    let ctx = decoded("Hi");
    let mut sampler = Sampler::chain()
        .grammar(&other, "", "root")
        .unwrap()
        .greedy();
    assert!(matches!(
        sampler.sample_last(&ctx),
        Err(Error::ModelMismatch)
    ));
    let err = Sampler::chain()
        .grammar(&other, "", "root")
        .unwrap()
        .logit_bias(tiny_model(), &[])
        .unwrap_err();
    assert!(matches!(err, Error::ModelMismatch));
    // The sampler keeps its model's vocabulary alive on its own.
    let model = Model::load(gguf::tiny_model(), &ModelParams::default().n_gpu_layers(0)).unwrap();
    let mut grammar = Sampler::chain()
        .grammar(&model, r#"root ::= "ab""#, "root")
        .unwrap()
        .greedy();
    drop(model);
    grammar.accept(Token(b'a' as i32)).unwrap();
}

#[test]
fn sampler_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Sampler>();
}
