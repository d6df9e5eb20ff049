//! A multi-turn chat with the model's own chat template, rendered by the Jinja engine (the
//! path taken — Jinja, or llama.cpp's built-in matcher as the fallback — is printed once).
//!
//! ```text
//! cargo run -p llama-prebuilt --example chat -- [--model PATH] [--system TEXT]
//!     [--message TEXT]... [--interactive] [--max-tokens N] [--seed S]
//! ```
//!
//! With `--message` the turns are scripted; with `--interactive` they are read from stdin,
//! one line per turn; with neither, two demo turns run. Without `--model` it uses the tiny
//! random-weights model of the test support code (ChatML template, gibberish replies).
//!
//! Between turns the context keeps what it has already computed: the whole conversation is
//! formatted again, and only the tokens after the longest prefix already in the memory are
//! decoded.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use llama_prebuilt::{
    ChatMessage, ChatOptions, ContextParams, GenerateOptions, Model, ModelParams, Sampler, Token,
};

struct Args {
    model: Option<PathBuf>,
    system: Option<String>,
    messages: Vec<String>,
    interactive: bool,
    max_tokens: usize,
    seed: u32,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        system: Some("You are a helpful assistant.".into()),
        messages: Vec::new(),
        interactive: false,
        max_tokens: 48,
        seed: 42,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = Some(value()?.into()),
            "--system" => args.system = Some(value()?).filter(|s| !s.is_empty()),
            "--message" => args.messages.push(value()?),
            "--interactive" => args.interactive = true,
            "--max-tokens" => {
                args.max_tokens = value()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--help" | "-h" => {
                return Err(
                    "usage: chat [--model PATH] [--system TEXT] [--message TEXT]... \
                            [--interactive] [--max-tokens N] [--seed S]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if args.messages.is_empty() && !args.interactive {
        args.messages = vec![
            "Hi! Who are you?".into(),
            "Tell me a very short story.".into(),
        ];
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let (path, tiny) = match args.model {
        Some(path) => (path, false),
        None => (llama_prebuilt_test_support::gguf::tiny_model(), true),
    };
    let model = Model::load(&path, &ModelParams::default())?;
    // A model without a template gets llama.cpp's default, ChatML.
    let template = model.chat_template_or_builtin("chatml")?;
    eprintln!("model: {} ({})", path.display(), model.description());
    if tiny {
        eprintln!("(the generated tiny model has random weights: expect gibberish)");
    }
    let n_ctx = match model.n_ctx_train() {
        0 => 2048,
        n => n.min(2048),
    };
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(n_ctx))?;

    let mut sampler = Sampler::chain();
    if tiny {
        let unprintable: Vec<(Token, f32)> = (0..256)
            .filter(|&b| !(0x20..0x7f).contains(&b))
            .map(|b| (Token(b), f32::NEG_INFINITY))
            .collect();
        sampler = sampler.logit_bias(&model, &unprintable)?;
    }
    let mut sampler = sampler
        .top_k(40)
        .min_p(0.05, 1)
        .temperature(0.7)
        .dist(args.seed);

    let mut conversation: Vec<ChatMessage> =
        args.system.into_iter().map(ChatMessage::system).collect();
    let mut in_memory: Vec<Token> = Vec::new();
    let mut path_shown = false;
    let scripted = args.messages.into_iter();
    let mut stdin_lines = std::io::stdin().lock().lines();
    let mut next_turn = {
        let mut scripted = scripted;
        move || -> Option<String> {
            if args.interactive {
                eprint!("> ");
                std::io::stderr().flush().ok();
                stdin_lines.next()?.ok()
            } else {
                scripted.next()
            }
        }
    };

    while let Some(user) = next_turn() {
        if user.trim().is_empty() {
            continue;
        }
        if !args.interactive {
            println!("> {user}");
        }
        conversation.push(ChatMessage::user(user));
        let rendered = template.render(
            &conversation,
            &ChatOptions::default().add_generation_prompt(true),
        )?;
        if !path_shown {
            eprintln!("[chat template: {}]", rendered.path);
            path_shown = true;
        }
        let prompt = rendered.prompt;
        let tokens = model.tokenize_special(&prompt, true)?;
        // Reuse the longest common prefix; drop the rest from the memory.
        let keep = tokens
            .iter()
            .zip(&in_memory)
            .take_while(|(a, b)| a == b)
            .count()
            .min(tokens.len() - 1);
        ctx.seq_rm(Some(0), keep as i32..)?;
        in_memory.truncate(keep);

        let options = GenerateOptions::default()
            .max_tokens(args.max_tokens)
            .stop("<|im_end|>");
        let mut generator = ctx.generate(&tokens[keep..], &mut sampler, options);
        let mut reply = String::new();
        let mut out = std::io::stdout().lock();
        for chunk in &mut generator {
            let chunk = chunk?;
            out.write_all(chunk.as_bytes())?;
            out.flush()?;
            reply.push_str(&chunk);
        }
        writeln!(out)?;
        in_memory.extend_from_slice(&tokens[keep..]);
        in_memory.extend_from_slice(generator.tokens());
        eprintln!(
            "[{} tokens, {} reused from the previous turn]",
            generator.tokens().len(),
            keep
        );
        conversation.push(ChatMessage::assistant(reply.trim()));
    }
    Ok(())
}
