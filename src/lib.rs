//! Raw FFI bindings to [llama.cpp](https://github.com/ggml-org/llama.cpp), linked against the
//! official prebuilt release binaries (tag [`VERSION`]) that the build script downloads, verifies
//! against pinned sha256 digests and caches. No C++ toolchain, CMake or GPU SDK is needed.
//!
//! Everything here is `unsafe` and mirrors `llama.h`, `ggml*.h` and `gguf.h` one to one; the
//! `llama-prebuilt` crate is the safe API. With `GGML_BACKEND_DL` release builds, nothing runs
//! until backends are registered: call [`ggml_backend_load_all_from_path`] with [`LIB_DIR`] (or the
//! directory the library was loaded from) first.
#![allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code
)]
#![allow(clippy::all)]

// The bindgen output mirrors the C headers: its items carry the headers' comments where they
// have one, and nothing can be added to those that lack one, nor SAFETY comments to the
// unsafe blocks bindgen writes for bitfield accessors.
#[allow(missing_docs)]
mod generated {
    #![allow(
        unsafe_op_in_unsafe_fn,
        clippy::all,
        clippy::undocumented_unsafe_blocks,
        rustdoc::all
    )]
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}
pub use generated::*;

/// The llama.cpp release tag these bindings and libraries are (`b10199` unless overridden with
/// `LLAMA_PREBUILT_VERSION`).
pub const VERSION: &str = env!("LLAMA_PREBUILT_TAG");

/// The directory the build staged the libraries in (inside `OUT_DIR`), empty on docs.rs. Useful
/// for tests and tools; a shipped program should find its libraries next to itself.
pub const LIB_DIR: &str = env!("LLAMA_PREBUILT_LIB_DIR");
