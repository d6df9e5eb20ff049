//! The macOS link test (`tests/e2e/macos.rs`) and the committed-bindings test
//! (`tests/e2e/committed_bindings.rs`) need the Rust standard library of every target with
//! committed bindings (both darwin targets among them; a few seconds each from rustup). No
//! Debian package: the linker (`zig cc`, from the pinned `ziglang` wheel) and the macOS dylibs
//! (the pinned `llama-cpp-py-sync` wheels) come from PyPI through test-support, at test time,
//! cached after the first run.

use super::ensure_rust_target;
use crate::bindings_cmd;

/// Installs the rust-std of every target in [`bindings_cmd::TARGETS`] that lacks it.
pub(crate) fn ensure() -> Result<(), String> {
    for triple in bindings_cmd::TARGETS {
        ensure_rust_target(triple)?;
    }
    Ok(())
}
