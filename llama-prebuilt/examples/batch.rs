//! Several generations at once in one context (continuous batching with `Batcher`).
//!
//! ```text
//! cargo run -p llama-prebuilt --example batch -- [--model PATH] [--sequences N]
//!     [--max-tokens N] [--threads N] [--quiet]
//! ```
//!
//! Each sequence gets its own prompt and greedy sampler; every step decodes the next token of
//! all of them in one batch. Prints each sequence's text, then the aggregate speed on stderr
//! (`tok_s <x>`: generated tokens per second over all sequences). Without `--model` it uses
//! the tiny random-weights model of the test support code (gibberish; non-ASCII suppressed).

use std::path::PathBuf;
use std::time::Instant;

use llama_prebuilt::{
    BatchEvent, Batcher, ContextParams, GenerateOptions, Model, ModelParams, Sampler,
};

const PROMPTS: [&str; 8] = [
    "The three primary colors are",
    "Once upon a time",
    "The capital of France is",
    "def fibonacci(n):",
    "A haiku about the sea:",
    "The best way to learn Rust is",
    "Water boils at",
    "In 1969, the first",
];

struct Args {
    model: Option<PathBuf>,
    sequences: usize,
    max_tokens: usize,
    threads: Option<u32>,
    quiet: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        sequences: 4,
        max_tokens: 32,
        threads: None,
        quiet: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = Some(value()?.into()),
            "--sequences" => {
                args.sequences = value()?.parse().map_err(|e| format!("--sequences: {e}"))?
            }
            "--max-tokens" => {
                args.max_tokens = value()?.parse().map_err(|e| format!("--max-tokens: {e}"))?
            }
            "--threads" => {
                args.threads = Some(value()?.parse().map_err(|e| format!("--threads: {e}"))?)
            }
            "--quiet" => args.quiet = true,
            "--help" | "-h" => {
                return Err(
                    "usage: batch [--model PATH] [--sequences N] [--max-tokens N] \
                            [--threads N] [--quiet]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    if !(1..=64).contains(&args.sequences) {
        return Err("--sequences must be 1..=64".into());
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
    let n = args.sequences as u32;
    let mut params = ContextParams::default()
        .n_ctx(n * (64 + args.max_tokens as u32))
        .n_seq_max(n);
    if let Some(t) = args.threads {
        params = params.n_threads(t).n_threads_batch(t);
    }
    let mut ctx = model.new_context(&params)?;
    let mut batcher = Batcher::new(&mut ctx);
    for i in 0..args.sequences {
        let prompt = model.tokenize(PROMPTS[i % PROMPTS.len()], true)?;
        batcher.add(
            &prompt,
            Sampler::chain().greedy(),
            GenerateOptions::default().max_tokens(args.max_tokens),
        )?;
    }

    let started = Instant::now();
    let mut texts = vec![String::new(); args.sequences];
    let mut generated = 0;
    for event in &mut batcher {
        match event? {
            BatchEvent::Text { seq, text } => texts[seq as usize].push_str(&text),
            BatchEvent::Finished { tokens, .. } => generated += tokens.len(),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if !args.quiet {
        for (i, text) in texts.iter().enumerate() {
            let text: String = if tiny {
                text.chars().filter(char::is_ascii).collect()
            } else {
                text.clone()
            };
            println!(
                "[{i}] {}{}",
                PROMPTS[i % PROMPTS.len()],
                text.replace('\n', " ")
            );
        }
    }
    eprintln!(
        "[{} sequences, {generated} tokens in {seconds:.2} s]\ntok_s {:.3}",
        args.sequences,
        generated as f64 / seconds
    );
    Ok(())
}
