//! The same downstream application as `ours.rs` (its `generate` mode), written on crates.io's
//! `llama-cpp-2`, which compiles llama.cpp from source. NOT a module of xtask: `cargo xtask
//! bench build-time` writes it into a fresh crate and times its cold build.
//!
//!   bench-app-lc2 generate MODEL PROMPT N_PREDICT

use std::io::Write;
use std::num::NonZeroU32;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{AddBos, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 || args[0] != "generate" {
        eprintln!("usage: bench-app-lc2 generate MODEL PROMPT N_PREDICT");
        std::process::exit(2);
    }
    let n: i32 = args[3].parse().expect("N_PREDICT");
    let backend = LlamaBackend::init().expect("backend");
    let model = LlamaModel::load_from_file(&backend, &args[1], &LlamaModelParams::default())
        .expect("model loads");
    let mut ctx = model
        .new_context(&backend, LlamaContextParams::default().with_n_ctx(NonZeroU32::new(512)))
        .expect("context");
    let prompt = model.str_to_token(&args[2], AddBos::Always).expect("tokenize");
    let mut batch = LlamaBatch::new(512, 1);
    let last = prompt.len() as i32 - 1;
    for (i, t) in (0i32..).zip(prompt.iter()) {
        batch.add(*t, i, &[0], i == last).expect("batch");
    }
    ctx.decode(&mut batch).expect("decode");
    let mut sampler = LlamaSampler::greedy();
    let mut pos = batch.n_tokens();
    let mut out = std::io::stdout().lock();
    for _ in 0..n {
        let tok = sampler.sample(&ctx, batch.n_tokens() - 1);
        if model.is_eog_token(tok) {
            break;
        }
        let bytes = model.token_to_piece_bytes(tok, 256, false, None).expect("piece");
        let _ = out.write_all(&bytes);
        batch.clear();
        batch.add(tok, pos, &[0], true).expect("batch");
        pos += 1;
        ctx.decode(&mut batch).expect("decode");
    }
    let _ = writeln!(out);
}
