//! Sentence embeddings and their cosine similarities.
//!
//! ```text
//! cargo run -p llama-prebuilt --example embed -- [--model PATH] [SENTENCE]...
//! cargo run -p llama-prebuilt --example embed -- --rerank QUERY [--model PATH] [DOCUMENT]...
//! ```
//!
//! Without `--model` it uses the tiny random-weights models of the test support code (the
//! similarities and scores are then meaningless, but everything runs): a llama model for
//! embeddings, a `qwen3` reranker for `--rerank`. Embeddings are mean-pooled, all sentences
//! batched by an `Embedder`; `--rerank` scores each document against the query with a reranking
//! model (`Pooling::Rank`).

use std::path::PathBuf;

use llama_prebuilt::{Embedder, Model, ModelParams, Pooling, cosine_similarity, normalize};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model_path: Option<PathBuf> = None;
    let mut query: Option<String> = None;
    let mut sentences = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--model" => model_path = Some(it.next().ok_or("--model needs a value")?.into()),
            "--rerank" => query = Some(it.next().ok_or("--rerank needs a query")?),
            "--help" | "-h" => {
                eprintln!("usage: embed [--model PATH] [--rerank QUERY] [SENTENCE]...");
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
    if let Some(query) = query {
        return rerank(model_path, &query, &sentences);
    }
    let path = model_path.unwrap_or_else(llama_prebuilt_test_support::gguf::tiny_model);
    let model = Model::load(&path, &ModelParams::default())?;
    eprintln!(
        "model: {} ({}, {} dimensions)",
        path.display(),
        model.description(),
        model.n_embd_out()
    );

    // All sentences in as few decodes as the context allows (up to 64 per decode).
    let mut embedder = Embedder::new(&model, &Embedder::params(&model).pooling(Pooling::Mean))?;
    let mut embeddings = embedder.embed_batch(&sentences)?;
    for e in &mut embeddings {
        normalize(e);
    }

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

fn rerank(
    model_path: Option<PathBuf>,
    query: &str,
    documents: &[String],
) -> Result<(), Box<dyn std::error::Error>> {
    let path =
        model_path.unwrap_or_else(llama_prebuilt_test_support::gguf_rerank::tiny_rerank_model);
    let model = Model::load(&path, &ModelParams::default())?;
    eprintln!("reranker: {} ({})", path.display(), model.description());
    let mut embedder = Embedder::new(&model, &Embedder::params(&model).pooling(Pooling::Rank))?;
    let scores = embedder.rerank(query, documents)?;
    let mut order: Vec<usize> = (0..documents.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    println!("query: {query}");
    for i in order {
        println!("{:+.4}  [{i}] {}", scores[i], documents[i]);
    }
    Ok(())
}
