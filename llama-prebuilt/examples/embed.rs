//! Sentence embeddings and their cosine similarities.
//!
//! ```text
//! cargo run -p llama-prebuilt --example embed -- [--model PATH] [SENTENCE]...
//! ```
//!
//! Without `--model` it uses the tiny random-weights model of the test support code (the
//! similarities are then meaningless, but everything runs). Embeddings are mean-pooled.

use std::path::PathBuf;

use llama_prebuilt::{ContextParams, Model, ModelParams, Pooling, cosine_similarity, normalize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model_path: Option<PathBuf> = None;
    let mut sentences = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--model" => model_path = Some(it.next().ok_or("--model needs a value")?.into()),
            "--help" | "-h" => {
                eprintln!("usage: embed [--model PATH] [SENTENCE]...");
                return Ok(());
            }
            _ => sentences.push(arg),
        }
    }
    if sentences.is_empty() {
        sentences = vec![
            "The cat sits on the mat.".to_string(),
            "A cat is sitting on a mat.".to_string(),
            "Stock markets fell sharply today.".to_string(),
        ];
    }
    let path = model_path.unwrap_or_else(llama_prebuilt_test_support::gguf::tiny_model);
    let model = Model::load(&path, &ModelParams::default())?;
    eprintln!(
        "model: {} ({}, {} dimensions)",
        path.display(),
        model.description(),
        model.n_embd_out()
    );

    let tokenized = sentences
        .iter()
        .map(|s| model.tokenize(s, true))
        .collect::<Result<Vec<_>, _>>()?;
    let longest = tokenized.iter().map(Vec::len).max().unwrap_or(1).max(1) as u32;
    let params = ContextParams::default()
        .n_ctx(longest.max(256))
        .n_batch(longest)
        .n_ubatch(longest)
        .embeddings(true)
        .pooling(Pooling::Mean);
    let mut ctx = model.new_context(&params)?;
    let embeddings = tokenized
        .iter()
        .map(|tokens| {
            let mut e = ctx.embed(tokens)?;
            normalize(&mut e);
            Ok(e)
        })
        .collect::<Result<Vec<_>, llama_prebuilt::Error>>()?;

    for (i, s) in sentences.iter().enumerate() {
        println!("[{i}] {s}");
    }
    print!("\n     ");
    for j in 0..sentences.len() {
        print!("  [{j}]  ");
    }
    println!();
    for (i, a) in embeddings.iter().enumerate() {
        print!("[{i}] ");
        for b in &embeddings {
            print!(" {:+.3} ", cosine_similarity(a, b));
        }
        println!();
    }
    Ok(())
}
