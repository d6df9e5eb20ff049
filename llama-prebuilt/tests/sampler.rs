//! Sampler chains: selection, determinism, penalties, logit bias, grammars, and the typical,
//! dynamic temperature, XTC, top-nσ, mirostat, DRY and infill steps (their C parity is in
//! `sampler_parity.rs`); every parameter error is triggered and its message checked.

mod common;
mod patched_gguf;

use common::{small_ctx, tiny_model};
use llama_prebuilt::{Batch, Context, Dry, Error, Model, ModelParams, Penalties, Sampler, Token};
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

/// The tokens ordered by logit, largest first.
fn ranked(logits: &[f32]) -> Vec<Token> {
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    ids.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    ids.into_iter().map(|i| Token(i as i32)).collect()
}

/// The message of an error, which must be `Error::InvalidParam` for `name`.
fn param_error(result: Result<Sampler, Error>, name: &str) -> String {
    match result {
        Err(err @ Error::InvalidParam { name: n, .. }) if n == name => err.to_string(),
        Err(other) => panic!("expected InvalidParam for {name}, got {other:?}"),
        Ok(s) => panic!(
            "expected InvalidParam for {name}, got a chain {:?}",
            s.steps()
        ),
    }
}

#[test]
fn new_steps_are_named_and_seeded() {
    let model = tiny_model();
    let sampler = Sampler::chain()
        .dry(model, &Dry::default())
        .unwrap()
        .typical(0.9, 1)
        .unwrap()
        .top_n_sigma(1.0)
        .unwrap()
        .dynamic_temperature(0.8, 0.2, 1.0)
        .unwrap()
        .xtc(0.5, 0.1, 1, 3)
        .unwrap()
        .mirostat(model, 5.0, 0.1, 100, 77)
        .unwrap();
    assert_eq!(
        sampler.steps(),
        [
            "dry",
            "typical",
            "top-n-sigma",
            "temp-ext",
            "xtc",
            "mirostat"
        ]
    );
    assert_eq!(sampler.seed(), Some(77));
    assert_eq!(
        Sampler::chain().mirostat_v2(5.0, 0.1, 78).unwrap().seed(),
        Some(78)
    );
    let fim = Model::load(
        patched_gguf::fim_model(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    assert_eq!(Sampler::chain().infill(&fim).unwrap().steps(), ["infill"]);
}

#[test]
fn xtc_removes_the_top_choices() {
    let ctx = decoded("Hello, world");
    let ranked = ranked(ctx.last_logits().unwrap());
    // Probability 1 and threshold 0: every candidate passes, all but the least likely of the
    // top five are removed.
    let mut sampler = Sampler::chain()
        .top_k(5)
        .xtc(1.0, 0.0, 1, 7)
        .unwrap()
        .greedy();
    for _ in 0..5 {
        assert_eq!(sampler.sample_last(&ctx).unwrap(), ranked[4]);
    }
    // Unless that would leave fewer than min_keep candidates.
    let mut keep_two = Sampler::chain()
        .top_k(5)
        .xtc(1.0, 0.0, 2, 7)
        .unwrap()
        .greedy();
    assert_eq!(keep_two.sample_last(&ctx).unwrap(), ranked[0]);
    // Probability 0 never removes anything.
    let mut never = Sampler::chain()
        .top_k(5)
        .xtc(0.0, 0.0, 1, 7)
        .unwrap()
        .greedy();
    assert_eq!(never.sample_last(&ctx).unwrap(), ranked[0]);
}

#[test]
fn narrow_settings_reduce_the_new_steps_to_greedy() {
    let ctx = decoded("Once upon a time");
    let best = argmax(ctx.last_logits().unwrap());
    for (what, mut sampler) in [
        (
            "top-n-sigma 0.001",
            Sampler::chain().top_n_sigma(0.001).unwrap().dist(9),
        ),
        (
            "mirostat v2 with tau 0",
            Sampler::chain().mirostat_v2(0.0, 0.0, 9).unwrap(),
        ),
        (
            "dynamic temperature 0 ± 0",
            Sampler::chain()
                .dynamic_temperature(0.0, 0.0, 1.0)
                .unwrap()
                .dist(9),
        ),
        (
            "typical keeping one token after top-k 1",
            Sampler::chain().top_k(1).typical(0.0, 1).unwrap().dist(9),
        ),
    ] {
        for _ in 0..10 {
            assert_eq!(sampler.sample_last(&ctx).unwrap(), best, "{what}");
        }
    }
}

#[test]
fn mirostat_samples_and_resets_reproducibly() {
    let model = tiny_model();
    let ctx = decoded("Once upon a time");
    let draw = |sampler: &mut Sampler| {
        (0..20)
            .map(|_| sampler.sample_last(&ctx).unwrap())
            .collect::<Vec<_>>()
    };
    for mut sampler in [
        Sampler::chain().mirostat(model, 5.0, 0.1, 100, 5).unwrap(),
        Sampler::chain().mirostat_v2(5.0, 0.1, 5).unwrap(),
    ] {
        let first = draw(&mut sampler);
        assert!(first.iter().all(|t| (0..N_VOCAB as i32).contains(&t.0)));
        sampler.reset();
        assert_eq!(draw(&mut sampler), first, "reset restores mu and the seed");
    }
}

#[test]
fn dry_penalises_the_token_that_would_extend_a_repeat() {
    let model = tiny_model();
    let ctx = decoded("Hello, world");
    let ranked = ranked(ctx.last_logits().unwrap());
    let c = ranked[0];
    // Two other tokens, one of them a newline (a sequence breaker below).
    let [a, b] = [Token(b'q' as i32), Token(b'\n' as i32)];
    assert!(c != a && c != b);
    let strong = |allowed_length, breakers: &[&str]| Dry {
        multiplier: 100.0,
        base: 1.75,
        allowed_length,
        penalty_last_n: -1,
        sequence_breakers: breakers.iter().map(|s| s.to_string()).collect(),
    };
    let run = |dry: Dry| {
        let mut sampler = Sampler::chain().dry(model, &dry).unwrap().greedy();
        // History "a b c a b": c would make the repeat "a b c" three tokens long.
        for token in [a, b, c, a, b] {
            sampler.accept(token).unwrap();
        }
        let picked = sampler.sample_last(&ctx).unwrap();
        sampler.reset();
        (picked, sampler.sample_last(&ctx).unwrap())
    };
    let (picked, after_reset) = run(strong(2, &[]));
    assert_ne!(picked, c, "DRY did not penalise the repeat");
    assert_eq!(after_reset, c, "reset forgets the history");
    // A repeat no longer than allowed_length is left alone, and so is one cut by a breaker.
    assert_eq!(run(strong(3, &[])).0, c);
    assert_eq!(run(strong(2, &["\n"])).0, c);
    // A multiplier of 0 or a window of 0 turns DRY off.
    assert_eq!(
        run(Dry {
            multiplier: 0.0,
            ..strong(2, &[])
        })
        .0,
        c
    );
    assert_eq!(
        run(Dry {
            penalty_last_n: 0,
            ..strong(2, &[])
        })
        .0,
        c
    );
}

#[test]
fn infill_prefers_ending_when_the_model_wants_to_end() {
    let fim = Model::load(
        patched_gguf::fim_model(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    let mut ctx = fim.new_context(&small_ctx()).unwrap();
    let tokens = fim.tokenize("def f(x):", true).unwrap();
    ctx.decode(&Batch::for_sequence(&tokens, 0, 0).unwrap())
        .unwrap();
    let mut free = Sampler::chain().top_k(40).infill(&fim).unwrap().dist(1);
    let token = free.sample_last(&ctx).unwrap();
    assert!((0..N_VOCAB as i32).contains(&token.0));
    // An end-of-generation token with most of the probability: infill keeps only EOG tokens.
    let mut ending = Sampler::chain()
        .logit_bias(&fim, &[(Token(EOS_ID), 8.0)])
        .unwrap()
        .infill(&fim)
        .unwrap()
        .dist(1);
    assert!(fim.is_eog(ending.sample_last(&ctx).unwrap()));
    // Bound to its model like grammar and logit bias.
    let other = decoded("Hi");
    assert!(matches!(
        free.sample_last(&other),
        Err(Error::ModelMismatch)
    ));
    assert!(matches!(
        Sampler::chain()
            .infill(&fim)
            .unwrap()
            .dry(tiny_model(), &Dry::default()),
        Err(Error::ModelMismatch)
    ));
    assert!(matches!(
        Sampler::chain()
            .dry(tiny_model(), &Dry::default())
            .unwrap()
            .mirostat(&fim, 5.0, 0.1, 100, 1),
        Err(Error::ModelMismatch)
    ));
}

#[test]
fn infill_refuses_models_it_would_abort_on() {
    let err = Sampler::chain().infill(tiny_model()).unwrap_err();
    assert!(matches!(err, Error::InfillUnsupported { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the infill sampler cannot be used with this model: its vocabulary has no \
         fill-in-the-middle tokens (missing: prefix, suffix, middle; llama.cpp finds them by \
         the tokenizer.ggml.fim_pre/suf/mid_token_id metadata or by names such as \
         <|fim_prefix|> or <fim_prefix>); use a code model trained for infill, e.g. \
         Qwen2.5-Coder, CodeLlama or StarCoder2"
    );
    // A token longer than llama.cpp's 512-byte buffers (it would resize them by a negative
    // length and abort).
    let long = Model::load(
        patched_gguf::long_token_model(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    assert_eq!(
        long.token_piece(Token(patched_gguf::LONG_TOKEN), false)
            .unwrap()
            .len(),
        600
    );
    let err = Sampler::chain().infill(&long).unwrap_err();
    assert!(matches!(err, Error::InfillUnsupported { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the infill sampler cannot be used with this model: token 4 is 600 bytes long, \
         llama.cpp's infill sampler handles tokens of at most 512 bytes"
    );
}

#[test]
fn out_of_range_parameters_are_errors_that_say_what_works() {
    let model = tiny_model();
    let chain = Sampler::chain;
    let cases: Vec<(Result<Sampler, Error>, &str, &str)> = vec![
        (
            chain().typical(1.5, 1),
            "typical.p",
            "invalid parameter typical.p: is 1.5, must be in 0.0..=1.0 (1.0 keeps every token)",
        ),
        (
            chain().typical(f32::NAN, 1),
            "typical.p",
            "invalid parameter typical.p: is NaN, must be in 0.0..=1.0 (1.0 keeps every token)",
        ),
        (
            chain().typical(-0.1, 1),
            "typical.p",
            "invalid parameter typical.p: is -0.1, must be in 0.0..=1.0 (1.0 keeps every token)",
        ),
        (
            chain().dynamic_temperature(f32::INFINITY, 0.5, 1.0),
            "dynamic_temperature.temp",
            "invalid parameter dynamic_temperature.temp: is inf, must be finite (0.0 or less \
             keeps only the most likely token)",
        ),
        (
            chain().dynamic_temperature(0.8, -0.1, 1.0),
            "dynamic_temperature.delta",
            "invalid parameter dynamic_temperature.delta: is -0.1, must be finite and 0.0 or \
             more (0.0 is a fixed temperature)",
        ),
        (
            chain().dynamic_temperature(0.8, 0.5, -1.0),
            "dynamic_temperature.exponent",
            "invalid parameter dynamic_temperature.exponent: is -1, must be finite and 0.0 or \
             more (1.0 maps entropy to temperature linearly)",
        ),
        (
            chain().xtc(1.1, 0.1, 1, 0),
            "xtc.probability",
            "invalid parameter xtc.probability: is 1.1, must be in 0.0..=1.0",
        ),
        (
            chain().xtc(0.5, 0.6, 1, 0),
            "xtc.threshold",
            "invalid parameter xtc.threshold: is 0.6, must be in 0.0..=0.5 (above 0.5 XTC never \
             removes anything)",
        ),
        (
            chain().top_n_sigma(0.0),
            "top_n_sigma.n",
            "invalid parameter top_n_sigma.n: is 0, must be finite and greater than 0.0",
        ),
        (
            chain().top_n_sigma(f32::NAN),
            "top_n_sigma.n",
            "invalid parameter top_n_sigma.n: is NaN, must be finite and greater than 0.0",
        ),
        (
            chain().mirostat(model, -1.0, 0.1, 100, 1),
            "mirostat.tau",
            "invalid parameter mirostat.tau: is -1, must be finite and 0.0 or more (target \
             surprise in bits per token, e.g. 5.0)",
        ),
        (
            chain().mirostat(model, 5.0, f32::INFINITY, 100, 1),
            "mirostat.eta",
            "invalid parameter mirostat.eta: is inf, must be finite and 0.0 or more (learning \
             rate, e.g. 0.1)",
        ),
        (
            chain().mirostat(model, 5.0, 0.1, 1, 1),
            "mirostat.m",
            "invalid parameter mirostat.m: is 1, must be at least 2 (llama.cpp's tools use 100)",
        ),
        (
            chain().mirostat_v2(f32::NAN, 0.1, 1),
            "mirostat_v2.tau",
            "invalid parameter mirostat_v2.tau: is NaN, must be finite and 0.0 or more (target \
             surprise in bits per token, e.g. 5.0)",
        ),
        (
            chain().mirostat_v2(5.0, -0.1, 1),
            "mirostat_v2.eta",
            "invalid parameter mirostat_v2.eta: is -0.1, must be finite and 0.0 or more \
             (learning rate, e.g. 0.1)",
        ),
    ];
    for (result, name, message) in cases {
        assert_eq!(param_error(result, name), message);
    }
}

#[test]
fn bad_dry_parameters_are_errors_not_aborts() {
    let model = tiny_model();
    let dry = |f: fn(&mut Dry)| {
        let mut d = Dry::default();
        f(&mut d);
        Sampler::chain().dry(model, &d)
    };
    let window = "must be -1 (the training context), 0 (disabled) or a token count up to 2048 \
                  (the model's training context is 2048, the largest window is 16777216)";
    let cases: Vec<(Result<Sampler, Error>, &str, String)> = vec![
        (
            dry(|d| d.multiplier = -1.0),
            "dry.multiplier",
            "invalid parameter dry.multiplier: is -1, must be finite and 0.0 or more (0.0 \
             disables DRY, 0.8 is typical)"
                .into(),
        ),
        (
            dry(|d| d.base = 0.5),
            "dry.base",
            "invalid parameter dry.base: is 0.5, must be finite and 1.0 or more (1.75 is typical)"
                .into(),
        ),
        (
            dry(|d| d.allowed_length = u32::MAX),
            "dry.allowed_length",
            "invalid parameter dry.allowed_length: must be at most i32::MAX".into(),
        ),
        // Below -1 llama.cpp would build a zero-capacity history and abort on the first
        // accepted token; beyond the training context it would allocate a useless window.
        (
            dry(|d| d.penalty_last_n = -2),
            "dry.penalty_last_n",
            format!("invalid parameter dry.penalty_last_n: is -2, {window}"),
        ),
        (
            dry(|d| d.penalty_last_n = 4096),
            "dry.penalty_last_n",
            format!("invalid parameter dry.penalty_last_n: is 4096, {window}"),
        ),
        (
            dry(|d| d.penalty_last_n = i32::MAX),
            "dry.penalty_last_n",
            format!("invalid parameter dry.penalty_last_n: is 2147483647, {window}"),
        ),
        (
            dry(|d| d.sequence_breakers = vec!["\n".into(), String::new()]),
            "dry.sequence_breakers",
            "invalid parameter dry.sequence_breakers: breaker 1 (\"\") is 0 bytes long, each \
             must be 1 to 40 bytes"
                .into(),
        ),
        (
            dry(|d| d.sequence_breakers = vec!["é".repeat(21)]),
            "dry.sequence_breakers",
            format!(
                "invalid parameter dry.sequence_breakers: breaker 0 ({:?}) is 42 bytes long, \
                 each must be 1 to 40 bytes",
                "é".repeat(21)
            ),
        ),
    ];
    for (result, name, message) in cases {
        assert_eq!(param_error(result, name), message);
    }
    let err = dry(|d| d.sequence_breakers = vec!["a\0b".into()]).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NulByte {
                what: "DRY sequence breaker",
                position: 1
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "DRY sequence breaker contains a NUL byte at offset 1"
    );
    // The limits themselves work, including breakers that end inside a UTF-8 character of a
    // token (llama.cpp tokenizes the rest of the breaker).
    for ok in [
        Dry {
            penalty_last_n: 2048,
            ..Dry::default()
        },
        Dry {
            sequence_breakers: vec!["x".repeat(40), "é".into(), "🦙".into(), "the".into()],
            allowed_length: i32::MAX as u32,
            ..Dry::default()
        },
        Dry {
            multiplier: 0.0,
            base: 1.0,
            ..Dry::default()
        },
    ] {
        let mut sampler = Sampler::chain().dry(model, &ok).unwrap().greedy();
        let ctx = decoded("é🦙 the");
        for t in model.tokenize("é🦙 the é🦙 the", false).unwrap() {
            sampler.accept(t).unwrap();
        }
        sampler.sample_last(&ctx).unwrap();
    }
}

#[test]
fn a_model_without_vocabulary_is_refused_by_the_vocabulary_bound_steps() {
    // Loadable only vocabulary-only (its weights have rows for 270 tokens), which is enough
    // to build samplers for.
    let model = Model::load(
        patched_gguf::empty_vocab_model(),
        &ModelParams::default().n_gpu_layers(0).vocab_only(true),
    )
    .unwrap();
    assert_eq!(model.n_vocab(), 0);
    let err = Sampler::chain()
        .mirostat(&model, 5.0, 0.1, 100, 1)
        .unwrap_err();
    assert!(matches!(err, Error::EmptyVocabulary), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the model's vocabulary is empty: there is no token to sample"
    );
    let err = Sampler::chain().infill(&model).unwrap_err();
    assert!(matches!(err, Error::InfillUnsupported { .. }), "{err:?}");
    // A vocabulary-only load reports no training context: DRY's default window (-1, the
    // training context) would be an enabled step with no history, which llama.cpp aborts on
    // at the first accepted token.
    let vocab_only =
        Model::load(gguf::tiny_model(), &ModelParams::default().vocab_only(true)).unwrap();
    for model in [&model, &vocab_only] {
        for last_n in [-1, 1] {
            let result = Sampler::chain().dry(
                model,
                &Dry {
                    penalty_last_n: last_n,
                    ..Dry::default()
                },
            );
            assert_eq!(
                param_error(result, "dry.penalty_last_n"),
                format!(
                    "invalid parameter dry.penalty_last_n: is {last_n}, must be 0 (disabled): \
                     the model reports a training context of 0 tokens (loaded \
                     vocabulary-only?), so DRY has no window"
                )
            );
        }
        let mut off = Sampler::chain()
            .dry(
                model,
                &Dry {
                    penalty_last_n: 0,
                    ..Dry::default()
                },
            )
            .unwrap();
        // Token 0 exists only in the tiny model's vocabulary.
        assert_eq!(off.accept(Token(0)).is_err(), model.n_vocab() == 0);
    }
}

#[test]
fn dry_windows_are_capped_whatever_context_the_model_claims() {
    // llama.cpp allocates DRY's history for the whole window when the step is built; for a
    // model claiming 2^25 tokens of context that is 256 MB, and a failed allocation aborts.
    let model = Model::load(
        patched_gguf::huge_context_model(),
        &ModelParams::default().n_gpu_layers(0),
    )
    .unwrap();
    assert_eq!(model.n_ctx_train(), 1 << 25);
    for last_n in [-1, (1 << 24) + 1] {
        let result = Sampler::chain().dry(
            &model,
            &Dry {
                penalty_last_n: last_n,
                ..Dry::default()
            },
        );
        assert_eq!(
            param_error(result, "dry.penalty_last_n"),
            format!(
                "invalid parameter dry.penalty_last_n: is {last_n}, must be -1 (the training \
                 context), 0 (disabled) or a token count up to 16777216 (the model's training \
                 context is 33554432, the largest window is 16777216)"
            )
        );
    }
    Sampler::chain()
        .dry(
            &model,
            &Dry {
                penalty_last_n: 4096,
                ..Dry::default()
            },
        )
        .unwrap();
}
