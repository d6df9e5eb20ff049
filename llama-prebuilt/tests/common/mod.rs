//! Shared by the integration tests: the generated tiny model, loaded once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use llama_prebuilt::{ContextParams, GenerateOptions, Model, ModelParams, Sampler, Token};
use llama_prebuilt_test_support::gguf;

/// The tiny llama model of test-support (byte-level vocabulary, ChatML template).
pub fn tiny_model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::load(gguf::tiny_model(), &ModelParams::default().n_gpu_layers(0))
            .expect("the tiny model loads")
    })
}

/// Small context parameters for the tiny model.
pub fn small_ctx() -> ContextParams {
    ContextParams::default()
        .n_ctx(256)
        .n_batch(64)
        .n_ubatch(64)
        .n_threads(2)
}

/// A fresh path in a per-test temporary directory (kept alive by the returned guard).
pub fn temp_path(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    (dir, path)
}

/// Writes `bytes` to a fresh temporary file.
pub fn temp_file(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let (dir, path) = temp_path(name);
    std::fs::write(&path, bytes).expect("write temp file");
    (dir, path)
}

pub fn model_bytes() -> Vec<u8> {
    std::fs::read(gguf::tiny_model()).expect("read tiny model")
}

/// Greedy generation with the C reference's context shape (n_ctx = prompt + n_predict,
/// n_batch = n_ubatch = prompt length, `threads` threads): the tokens and the text.
pub fn greedy_like_reference(
    model: &Model,
    prompt: &str,
    n_predict: usize,
    threads: u32,
) -> (Vec<Token>, String) {
    let tokens = model.tokenize(prompt, true).unwrap();
    let n = tokens.len() as u32;
    let params = ContextParams::default()
        .n_ctx(n + n_predict as u32)
        .n_batch(n)
        .n_ubatch(n)
        .n_threads(threads);
    let mut ctx = model.new_context(&params).unwrap();
    let mut sampler = Sampler::chain().greedy();
    let mut generator = ctx.generate(
        &tokens,
        &mut sampler,
        GenerateOptions::default().max_tokens(n_predict),
    );
    let text = generator.collect_text().unwrap();
    (generator.tokens().to_vec(), text)
}
