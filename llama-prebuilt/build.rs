//! Selects the llama.cpp ABI the safe crate compiles for, from the tag the sys crate links
//! (`DEP_LLAMA_VERSION`), and says at compile time when that tag is not one it was tested with.
//!
//! The cfg `llama_abi` is `"b10199"` or `"b10605"`: the two tags whose headers, default
//! parameters and sampler signatures the crate was written and tested against. Between them
//! `llama_sampler_init_penalties` gained `n_vocab`, `llama_sampler_init_dry` lost
//! `n_ctx_train`, and `llama_model_default_params()`/`llama_context_default_params()` changed
//! (see `src/abi.rs`); the few call sites differ by `#[cfg(llama_abi = "...")]`.

// `SUPPORTED` and `abi_for`, shared with the crate's unit tests (`src/abi.rs`).
include!("build/abi_select.rs");

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_LLAMA_VERSION");
    let abis: Vec<String> = SUPPORTED.iter().map(|(_, a)| format!("{a:?}")).collect();
    println!(
        "cargo::rustc-check-cfg=cfg(llama_abi, values({}))",
        abis.join(", ")
    );
    // No tag (e.g. a docs build that never ran the sys build script): the oldest ABI.
    let tag = std::env::var("DEP_LLAMA_VERSION").unwrap_or_default();
    let abi = abi_for(&tag);
    println!("cargo::rustc-cfg=llama_abi={abi:?}");
    if tag.is_empty() {
        return;
    }
    // `b10199-<suffix>` is a non-official build of b10199's source (e.g. the test fixture
    // `b10199-fixture`): the same API, so no warning.
    let source_tag = tag.split_once('-').map_or(tag.as_str(), |(n, _)| n);
    if !SUPPORTED.iter().any(|(_, t)| *t == source_tag) {
        let names: Vec<&str> = SUPPORTED.iter().map(|(_, t)| *t).collect();
        println!(
            "cargo::warning=llama-prebuilt supports llama.cpp {}; it is being built against {tag} \
             (compiled for the {abi} ABI). The run-time ABI probe checks the library's default \
             parameters, but APIs that changed between the tags may misbehave",
            names.join(" and ")
        );
    }
}
