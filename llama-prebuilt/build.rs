//! Says at compile time when the safe crate is built against another llama.cpp tag than the
//! one it was written and tested for (the sys crate reports its tag as `DEP_LLAMA_VERSION`).

/// The tag this crate's API and ABI probe were written against.
const SUPPORTED: &str = "b10199";

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_LLAMA_VERSION");
    if let Ok(tag) = std::env::var("DEP_LLAMA_VERSION") {
        // `b10199-<suffix>` is a non-official build of b10199's source (e.g. the test fixture
        // `b10199-fixture`): the same API, so no warning.
        let source_tag = tag.split_once('-').map_or(tag.as_str(), |(n, _)| n);
        if source_tag != SUPPORTED {
            println!(
                "cargo::warning=llama-prebuilt supports llama.cpp {SUPPORTED}; it is being built against {tag}. \
                 The run-time ABI probe checks the library's default parameters, but APIs that changed between \
                 the tags may misbehave"
            );
        }
    }
}
