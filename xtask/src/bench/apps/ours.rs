//! The downstream application of `cargo xtask bench` on the safe `llama-prebuilt` crate.
//! NOT a module of xtask: the bench writes it into a fresh crate (see `apps.rs`) and builds it.
//!
//!   bench-app generate MODEL PROMPT N_PREDICT         stream greedy text (what a user's app does)
//!   bench-app infer MODEL PROMPT N_PREDICT THREADS [RPC_ENDPOINT...]
//!                                                     the decode loop of test-support/c/reference.c,
//!                                                     timed the same way (around decodes only); with
//!                                                     endpoints, every layer on those ggml-rpc-servers
//!                                                     (split evenly), nothing but the embeddings local
//!   bench-app count MODEL PROMPT                      number of prompt tokens (BOS included)
//!   bench-app embed MODEL TEXTS_FILE N_SEQ_MAX N_UBATCH THREADS [--one]
//!                                                     mean-pooled embeddings of every line of
//!                                                     TEXTS_FILE: Embedder::embed_tokens packing
//!                                                     (the loop of test-support/c/embed_bench.c),
//!                                                     or with --one Context::embed text by text;
//!                                                     timed after tokenization

use std::io::Write;
use std::time::Instant;

use llama_prebuilt::{
    Batch, ContextParams, Embedder, GenerateOptions, Model, ModelParams, Pooling, Sampler,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match (args.first().map(String::as_str), args.len()) {
        (Some("generate"), 4) => generate(&args[1], &args[2], args[3].parse().expect("N_PREDICT")),
        (Some("infer"), n) if n >= 5 => infer(
            &args[1],
            &args[2],
            args[3].parse().expect("N_PREDICT"),
            args[4].parse().expect("THREADS"),
            &args[5..],
        ),
        (Some("count"), 3) => count(&args[1], &args[2]),
        (Some("embed"), 6 | 7) => embed(
            &args[1],
            &args[2],
            args[3].parse().expect("N_SEQ_MAX"),
            args[4].parse().expect("N_UBATCH"),
            args[5].parse().expect("THREADS"),
            args.get(6).map(String::as_str) == Some("--one"),
        ),
        _ => {
            eprintln!(
                "usage: bench-app generate|infer|count|embed MODEL PROMPT [N_PREDICT [THREADS]]"
            );
            std::process::exit(2)
        }
    };
    if let Err(e) = r {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn generate(model: &str, prompt: &str, n: usize) -> llama_prebuilt::Result<()> {
    let model = Model::load(model, &ModelParams::default())?;
    let mut ctx = model.new_context(&ContextParams::default().n_ctx(512))?;
    let mut sampler = Sampler::chain().greedy();
    let prompt = model.tokenize(prompt, true)?;
    let mut out = std::io::stdout().lock();
    for chunk in ctx.generate(&prompt, &mut sampler, GenerateOptions::default().max_tokens(n)) {
        let _ = out.write_all(chunk?.as_bytes());
    }
    let _ = writeln!(out);
    Ok(())
}

fn count(model: &str, prompt: &str) -> llama_prebuilt::Result<()> {
    let model = Model::load(model, &ModelParams::default().vocab_only(true))?;
    println!("{}", model.tokenize(prompt, true)?.len());
    Ok(())
}

/// Same parameters and the same timed regions as reference.c: n_ctx = prompt + N_PREDICT,
/// n_batch = n_ubatch = prompt, greedy sampling, timing around each decode call.
fn infer(
    model: &str,
    prompt: &str,
    n_predict: u32,
    threads: u32,
    rpc_endpoints: &[String],
) -> llama_prebuilt::Result<()> {
    let backend = llama_prebuilt::Backend::init()?;
    let mut devices = Vec::new();
    for endpoint in rpc_endpoints {
        devices.extend(backend.add_rpc_server(endpoint)?.devices);
    }
    let split = vec![1.0; devices.len()];
    let model = Model::load(
        model,
        &ModelParams::default().devices(&devices).tensor_split(&split),
    )?;
    let prompt = model.tokenize(prompt, true)?;
    let n_prompt = prompt.len() as u32;
    let params = ContextParams::default()
        .n_ctx(n_prompt + n_predict)
        .n_batch(n_prompt)
        .n_ubatch(n_prompt)
        .n_threads(threads);
    let mut ctx = model.new_context(&params)?;
    let batch = Batch::for_sequence(&prompt, 0, 0)?;
    let t0 = Instant::now();
    ctx.decode(&batch)?;
    let t_pp = t0.elapsed().as_secs_f64();
    eprintln!("pp_tokens {n_prompt}\npp_tok_s {:.3}", f64::from(n_prompt) / t_pp);

    let mut sampler = Sampler::chain().greedy();
    let mut pos = n_prompt as i32;
    let mut n_tg = 0u32;
    let mut t_tg = 0.0f64;
    let mut one = Batch::new(1);
    for i in 0..n_predict {
        let tok = sampler.sample_last(&ctx)?;
        if model.is_eog(tok) {
            break;
        }
        println!("tok {}", tok.0);
        if i + 1 < n_predict {
            one.clear();
            one.add(tok, pos, &[0], true)?;
            let t0 = Instant::now();
            ctx.decode(&one)?;
            t_tg += t0.elapsed().as_secs_f64();
            pos += 1;
            n_tg += 1;
        }
    }
    eprintln!(
        "tg_tokens {n_tg}\ntg_tok_s {:.3}",
        if t_tg > 0.0 { f64::from(n_tg) / t_tg } else { 0.0 }
    );
    Ok(())
}

/// Same context and packing as embed_bench.c (n_ctx = n_batch = n_ubatch = N_UBATCH, mean
/// pooling, unified KV cache, N_SEQ_MAX sequences per decode); with `one`, a context for one
/// sequence (n_ctx = n_batch = n_ubatch = N_UBATCH) and `Context::embed` per text. Prints the
/// same lines as the C program.
fn embed(
    model: &str,
    texts: &str,
    n_seq_max: u32,
    n_ubatch: u32,
    threads: u32,
    one: bool,
) -> llama_prebuilt::Result<()> {
    let model = Model::load(model, &ModelParams::default())?;
    let text = std::fs::read_to_string(texts).expect("read TEXTS_FILE");
    let tokens = text
        .lines()
        .map(|l| model.tokenize(l, true))
        .collect::<llama_prebuilt::Result<Vec<_>>>()?;
    let params = ContextParams::default()
        .n_ctx(n_ubatch)
        .n_batch(n_ubatch)
        .n_ubatch(n_ubatch)
        .n_threads(threads)
        .pooling(Pooling::Mean);
    let (vectors, elapsed) = if one {
        let mut ctx = model.new_context(&params.embeddings(true))?;
        let t0 = Instant::now();
        let v = tokens
            .iter()
            .map(|t| ctx.embed(t))
            .collect::<llama_prebuilt::Result<Vec<_>>>()?;
        (v, t0.elapsed())
    } else {
        let mut embedder = Embedder::new(&model, &params.n_seq_max(n_seq_max))?;
        let t0 = Instant::now();
        let v = embedder.embed_tokens(&tokens)?;
        (v, t0.elapsed())
    };
    let checksum: f64 = vectors.iter().flatten().map(|&x| f64::from(x)).sum();
    println!(
        "texts {}\ntokens {}\nchecksum {checksum:.6}",
        tokens.len(),
        tokens.iter().map(Vec::len).sum::<usize>()
    );
    eprintln!("texts_s {:.3}", tokens.len() as f64 / elapsed.as_secs_f64());
    Ok(())
}
