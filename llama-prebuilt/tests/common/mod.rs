//! Shared by the integration tests: the generated tiny model, loaded once per test binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use llama_prebuilt::{ContextParams, Model, ModelParams};
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
