//! The windows-gnu test (`tests/e2e/windows_gnu.rs`): the MinGW-w64 toolchain the Rust target
//! links with (gcc as the linker driver, the MinGW C runtime and Windows import libraries) and
//! that compiles the test's `bcryptprimitives.dll` stub. wine comes from [`super::wine`], the
//! Rust target from `ensure_rust_target("x86_64-pc-windows-gnu")`.

use super::Tool;

pub(crate) const WINDOWS_GNU: &[Tool] = &[Tool {
    program: "x86_64-w64-mingw32-gcc",
    package: "gcc-mingw-w64-x86-64",
    probe: &["--version"],
}];
